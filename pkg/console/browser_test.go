package console_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/chromedp/chromedp"

	"github.com/streambed/streambed/internal/authtest"
	"github.com/streambed/streambed/internal/testenv"
	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/auth"
	"github.com/streambed/streambed/pkg/broker"
	"github.com/streambed/streambed/pkg/client"
	"github.com/streambed/streambed/pkg/console"
	"github.com/streambed/streambed/pkg/httpapi"
	"github.com/streambed/streambed/pkg/offsets"
	"github.com/streambed/streambed/pkg/offsets/memtable"
	"github.com/streambed/streambed/pkg/segments/membucket"
)

// browser starts headless Chromium and returns a context for chromedp.
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := testenv.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Headless,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil { // starts the browser
		t.Fatalf("start %s: %v", exe, err)
	}
	return ctx
}

// artifacts is where screenshots go: $STREAMBED_ARTIFACTS or bin/artifacts.
func artifacts(t *testing.T) string {
	dir := os.Getenv("STREAMBED_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "bin", "artifacts")
	}
	dir = filepath.Join(dir, "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(artifacts(t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
}

func apiServer(t *testing.T, opts httpapi.Options) string {
	b := broker.New(offsets.New(memtable.New()), membucket.New(), broker.Config{PollMin: 5 * time.Millisecond, PollMax: 20 * time.Millisecond})
	srv := httptest.NewServer(httpapi.New(b, opts).Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(b.Drain)
	return srv.URL
}

// waitText waits until the element's text contains want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for {
			got, err := chromedp.Text(sel, chromedp.NodeVisible)(ctx, tg)
			if err == nil && strings.Contains(got, want) {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s never showed %q (last: %q, %v)", sel, want, got, err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// changed fires the change event the page listens to (SetValue does not).
// back is the browser's back button.
func back() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`history.back(), true`)(ctx, tg)
		return err
	})
}

func changed(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`document.querySelector(`+strconv.Quote(sel)+`).dispatchEvent(new Event('change'))`)(ctx, tg)
		return err
	})
}

// TestConsoleInChromium drives the console as a user would: create a
// topic in the browser, produce through the API, browse the records in
// three decodings, grow the partitions, and watch a group's lag change.
func TestConsoleInChromium(t *testing.T) {
	ctx := browser(t)
	base := apiServer(t, httpapi.Options{Console: console.Handler("/ui/")})
	c, err := client.New(base)
	if err != nil {
		t.Fatal(err)
	}
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			screenshot(t, ctx, "failed-"+step)
			t.Fatalf("%s: %v", step, err)
		}
	}

	run("load", chromedp.Navigate(base+"/ui/?lag_interval_ms=300"), chromedp.WaitVisible(`#create-topic`),
		waitText(`#topics`, "No topics yet"))
	screenshot(t, ctx, "01-empty")

	run("create topic",
		chromedp.SetValue(`#create-topic input[name=name]`, "orders"),
		chromedp.SetValue(`#create-topic input[name=partitions]`, "2"),
		chromedp.Click(`#create-topic button`),
		waitText(`#topic-name`, "orders"), waitText(`#partition-count`, "2"))
	if topic, err := c.Topic(context.Background(), "orders"); err != nil || topic.Partitions != 2 {
		t.Fatalf("the console's topic: %+v, %v", topic, err)
	}

	var recs []client.Record
	for i := range 20 {
		recs = append(recs, client.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "order-%02d", i)}.InPartition(0))
	}
	recs = append(recs, client.Record{Key: []byte("json"), Value: []byte(`{"sku":"A-1","qty":3}`)}.InPartition(0),
		client.Record{Key: []byte("bin"), Value: []byte{0xff, 0x00, 0x41}}.InPartition(0))
	if _, err := c.Produce(context.Background(), "orders", recs); err != nil {
		t.Fatal(err)
	}

	// Partition 1 holds three records an hour apart, for the jump to a time.
	hour := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	var timed []client.Record
	for i := range 3 {
		timed = append(timed, client.Record{Timestamp: hour.Add(time.Duration(i) * time.Hour), Value: fmt.Appendf(nil, "at-%d", 10+i)}.InPartition(1))
	}
	if _, err := c.Produce(context.Background(), "orders", timed); err != nil {
		t.Fatal(err)
	}

	// The browser opens on the partition's latest records, unasked.
	run("opens on the latest", chromedp.Reload(), waitText(`#partitions`, "22"),
		waitText(`#records`, "order-19"), waitText(`#records`, `{"sku":"A-1","qty":3}`))
	run("browse text",
		chromedp.SetValue(`#browse select[name=mode]`, "offset"),
		chromedp.SetValue(`#browse input[name=at]`, "0"),
		chromedp.SetValue(`#browse input[name=max]`, "10"),
		chromedp.Click(`#browse button[type=submit]`),
		waitText(`#page-info`, "10 records; next offset 10"), waitText(`#records`, "order-00"), waitText(`#records`, "order-09"))
	screenshot(t, ctx, "02-messages-text")
	run("newer page", chromedp.Click(`#newer`), waitText(`#page-info`, "next offset 20"), waitText(`#records`, "order-10"))
	run("newest page", chromedp.Click(`#newer`), waitText(`#page-info`, "2 records; next offset 22"))
	run("older page", chromedp.Click(`#older`), waitText(`#page-info`, "10 records; next offset 20"), waitText(`#records`, "order-10"))
	// Every page is a history entry: back returns to the one before.
	run("back button", back(), waitText(`#page-info`, "2 records; next offset 22"))
	run("back again", back(), waitText(`#page-info`, "next offset 20"), waitText(`#records`, "order-10"))
	run("browse json", chromedp.SetValue(`#browse select[name=decode]`, "json"),
		changed(`#browse select[name=decode]`),
		chromedp.Click(`#newer`), waitText(`#records`, "\"qty\": 3"))
	screenshot(t, ctx, "03-messages-json")
	// The view is a link: opened afresh, it shows the same page, decoded
	// the same way.
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(loc, "from=offset") || !strings.Contains(loc, "at=20") || !strings.Contains(loc, "decode=json") {
		t.Fatalf("the page's state is not in its address: %s", loc)
	}
	run("open the link", chromedp.Navigate("about:blank"), chromedp.Navigate(loc), waitText(`#records`, "\"qty\": 3"),
		waitText(`#page-info`, "2 records; next offset 22"))
	run("browse hex", chromedp.SetValue(`#browse select[name=decode]`, "hex"),
		changed(`#browse select[name=decode]`),
		waitText(`#records`, "ff 00 41"))
	run("browse by tail", chromedp.SetValue(`#browse select[name=mode]`, "tail"),
		chromedp.SetValue(`#browse input[name=at]`, "1"),
		chromedp.Click(`#browse button[type=submit]`), waitText(`#messages`, "1 records; next offset 22"))
	run("jump to a time", chromedp.SetValue(`#browse select[name=partition]`, "1"),
		chromedp.SetValue(`#browse select[name=mode]`, "timestamp"),
		chromedp.SetValue(`#browse input[name=at]`, "2026-01-02T10:30:00Z"),
		chromedp.SetValue(`#browse select[name=decode]`, "text"),
		chromedp.Click(`#browse button[type=submit]`), waitText(`#page-info`, "2 records; next offset 3"), waitText(`#records`, "at-11"))
	if got, err := chromedp.Run(ctx, chromedp.Text(`#records tbody tr:first-child td:nth-child(4)`)); err != nil || got != "at-11" {
		t.Fatalf("after a jump to 10:30 the first record is %q (%v), want at-11", got, err)
	}

	run("grow partitions", chromedp.SetValue(`#grow-partitions input[name=partitions]`, "4"),
		chromedp.Click(`#grow-partitions button`), waitText(`#partition-count`, "4"))
	screenshot(t, ctx, "04-topic")

	// A group that read 5 of partition 0's 22 records and all of partition 1: lag 17.
	if err := c.CommitGroupOffsets(context.Background(), "billing", []api.OffsetCommit{{Topic: "orders", Partition: 0, Offset: 5}, {Topic: "orders", Partition: 1, Offset: 3}}); err != nil {
		t.Fatal(err)
	}
	run("groups", chromedp.Navigate(base+"/ui/?lag_interval_ms=300#/groups"), waitText(`#groups`, "billing"))
	screenshot(t, ctx, "05-groups")
	run("group", chromedp.Click(`#groups a`), waitText(`#group-name`, "billing"), waitText(`#total-lag`, "17"))
	if err := c.CommitGroupOffsets(context.Background(), "billing", []api.OffsetCommit{{Topic: "orders", Partition: 0, Offset: 20}}); err != nil {
		t.Fatal(err)
	}
	run("lag drops", waitText(`#total-lag`, "2"))
	// Time lag reads as people say it, as in the CLI.
	human, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[0, 850, 1500, 350930, 7380000, 90061000].map(lagTime)`))
	if err != nil || strings.Join(human, " ") != "0s 850ms 1.5s 5m50.9s 2h3m 25h1m" {
		t.Fatalf("time lag shown as %q (%v)", human, err)
	}
	cell, err := chromedp.Run(ctx, chromedp.Text(`#lag tbody tr:first-child td:nth-child(6)`))
	if err != nil || !regexp.MustCompile(`^(\d+ms|[\d.]+s|\d+m[\d.]*s?|\d+h\d*m?)$`).MatchString(cell) {
		t.Fatalf("time lag cell %q (%v)", cell, err)
	}
	points, err := chromedp.Run(ctx, chromedp.AttributeValue(`#lag-chart polyline`, "points"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(points.Value)); n < 2 {
		t.Fatalf("lag chart has %d points", n)
	}
	screenshot(t, ctx, "06-group-lag")
}

// TestConsoleAsStaticFiles serves the console from another origin, as a
// static deployment would, pointed at the API with ?api=.
func TestConsoleAsStaticFiles(t *testing.T) {
	ctx := browser(t)
	static := httptest.NewServer(http.FileServerFS(console.Files()))
	t.Cleanup(static.Close)
	base := apiServer(t, httpapi.Options{CORSOrigins: []string{static.URL}})
	c, _ := client.New(base)
	if _, err := c.CreateTopic(context.Background(), "remote", 3, nil); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(static.URL+"/index.html?api="+base), waitText(`#topics`, "remote"), waitText(`#endpoint`, base)); err != nil {
		screenshot(t, ctx, "failed-static")
		t.Fatal(err)
	}
	screenshot(t, ctx, "07-static-deployment")
}

// TestConsoleAsksForToken: with authentication on, the console asks for a
// token when the API answers 401, then shows what the token may see.
func TestConsoleAsksForToken(t *testing.T) {
	ctx := browser(t)
	pol, _ := authtest.Policy(t)
	authz, err := auth.New(context.Background(), pol)
	if err != nil {
		t.Fatal(err)
	}
	base := apiServer(t, httpapi.Options{Console: console.Handler("/ui/"), Auth: authz})
	admin, _ := client.New(base, client.WithBearerToken(authtest.AdminToken))
	for _, name := range []string{"orders", "secret"} {
		if _, err := admin.CreateTopic(context.Background(), name, 1, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(`#login`)); err != nil {
		screenshot(t, ctx, "failed-login")
		t.Fatal(err)
	}
	screenshot(t, ctx, "08-token-prompt")
	if err := chromedp.Do(ctx, chromedp.SetValue(`#token`, authtest.WriterToken), chromedp.Click(`#login-submit`),
		waitText(`#topics`, "orders")); err != nil {
		screenshot(t, ctx, "failed-login-submit")
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(`#topics`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, "secret") {
		t.Fatalf("the writer's console lists a topic it may not read: %q", text)
	}
	screenshot(t, ctx, "09-after-login")
}

// sigv4Gate stands in for API Gateway with IAM authorization: the
// console's assets are public; every API request must carry a SigV4
// signature for service execute-api that the AWS SDK's own signer,
// given the same request, credentials and time, reproduces exactly.
// Anything else is 403, as API Gateway answers.
type sigv4Gate struct {
	next    http.Handler
	creds   aws.Credentials
	region  string
	signed  atomic.Int64
	refused atomic.Int64
}

func (g *sigv4Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/ui") || r.Method == http.MethodOptions {
		g.next.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/favicon.ico" { // the browser's own request, not the console's
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err := g.verify(r, body); err != nil {
		g.refused.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"message":%q}`, err.Error())
		return
	}
	g.signed.Add(1)
	g.next.ServeHTTP(w, r)
}

func (g *sigv4Gate) verify(r *http.Request, body []byte) error {
	got := r.Header.Get("Authorization")
	if got == "" {
		return fmt.Errorf("Missing Authentication Token")
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("bad X-Amz-Date: %v", err)
	}
	// The same request as the SDK would send it: no headers but those the
	// signer adds itself (host, content-length, x-amz-date, the token).
	req, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), g.creds, req, hex.EncodeToString(sum[:]), "execute-api", g.region, at); err != nil {
		return err
	}
	if want := req.Header.Get("Authorization"); got != want || r.Header.Get("X-Amz-Security-Token") != g.creds.SessionToken {
		return fmt.Errorf("signature mismatch: got %s, want %s", got, want)
	}
	return nil
}

// TestConsoleSignsWithSigV4: behind IAM authorization the console asks
// for AWS credentials, then signs every call (reads with queries, writes
// with bodies) as the AWS SDK would.
func TestConsoleSignsWithSigV4(t *testing.T) {
	ctx := browser(t)
	b := broker.New(offsets.New(memtable.New()), membucket.New(), broker.Config{})
	t.Cleanup(b.Drain)
	gate := &sigv4Gate{next: httpapi.New(b, httpapi.Options{Console: console.Handler("/ui/")}).Handler(), region: "eu-west-1",
		creds: aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: "session/token+=="}}
	srv := httptest.NewServer(gate)
	t.Cleanup(srv.Close)
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			screenshot(t, ctx, "failed-sigv4-"+step)
			t.Fatalf("%s: %v (signed %d, refused %d)", step, err, gate.signed.Load(), gate.refused.Load())
		}
	}
	run("asks", chromedp.Navigate(srv.URL+"/ui/"), chromedp.WaitVisible(`#login`))
	run("signs in", chromedp.SetValue(`#aws-key`, gate.creds.AccessKeyID), chromedp.SetValue(`#aws-secret`, gate.creds.SecretAccessKey),
		chromedp.SetValue(`#aws-session`, gate.creds.SessionToken), chromedp.SetValue(`#aws-region`, gate.region),
		chromedp.Click(`#login-submit`), waitText(`#topics`, "No topics yet"))
	refusedAtLogin := gate.refused.Load()
	if refusedAtLogin == 0 {
		t.Fatal("the gate never refused an unsigned request: the test proves nothing")
	}
	run("creates a topic (a signed body)", chromedp.SetValue(`#create-topic input[name=name]`, "signed"),
		chromedp.Click(`#create-topic button`), waitText(`#topic-name`, "signed"), waitText(`#page-info`, "0 records"))
	if tp, err := b.Topic(context.Background(), "signed"); err != nil || tp.Partitions != 1 {
		t.Fatalf("the topic the console created: %+v %v", tp, err)
	}
	if n := gate.refused.Load() - refusedAtLogin; n != 0 || gate.signed.Load() < 4 {
		t.Fatalf("after signing in: %d requests signed, %d refused", gate.signed.Load(), n)
	}
	screenshot(t, ctx, "10-sigv4")
}
