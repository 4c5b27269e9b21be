package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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

	run("partitions", chromedp.Reload(), waitText(`#partitions`, "22"))
	run("browse text",
		chromedp.SetValue(`#browse input[name=at]`, "0"),
		chromedp.Click(`#browse button`),
		waitText(`#records`, "order-00"), waitText(`#records`, "order-19"), waitText(`#records`, `{"sku":"A-1","qty":3}`))
	screenshot(t, ctx, "02-messages-text")
	run("browse json", chromedp.SetValue(`#browse select[name=decode]`, "json"),
		changed(`#browse select[name=decode]`),
		waitText(`#records`, "\"qty\": 3"))
	screenshot(t, ctx, "03-messages-json")
	run("browse hex", chromedp.SetValue(`#browse select[name=decode]`, "hex"),
		changed(`#browse select[name=decode]`),
		waitText(`#records`, "ff 00 41"))
	run("browse by tail", chromedp.SetValue(`#browse select[name=mode]`, "tail"),
		chromedp.SetValue(`#browse input[name=at]`, "1"),
		chromedp.Click(`#browse button`), waitText(`#messages`, "1 records; next offset 22"))

	run("grow partitions", chromedp.SetValue(`#grow-partitions input[name=partitions]`, "4"),
		chromedp.Click(`#grow-partitions button`), waitText(`#partition-count`, "4"))
	screenshot(t, ctx, "04-topic")

	// A group that read 5 of partition 0's 22 records: lag 17.
	if err := c.CommitGroupOffsets(context.Background(), "billing", []api.OffsetCommit{{Topic: "orders", Partition: 0, Offset: 5}}); err != nil {
		t.Fatal(err)
	}
	run("groups", chromedp.Navigate(base+"/ui/?lag_interval_ms=300#/groups"), waitText(`#groups`, "billing"))
	screenshot(t, ctx, "05-groups")
	run("group", chromedp.Click(`#groups a`), waitText(`#group-name`, "billing"), waitText(`#total-lag`, "17"))
	if err := c.CommitGroupOffsets(context.Background(), "billing", []api.OffsetCommit{{Topic: "orders", Partition: 0, Offset: 20}}); err != nil {
		t.Fatal(err)
	}
	run("lag drops", waitText(`#total-lag`, "2"))
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
