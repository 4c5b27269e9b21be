package chaos

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/testenv"
	"github.com/streambed/streambed/pkg/client"
)

// servedProcess is `streambed serve` running as a real child process.
type servedProcess struct {
	t    *testing.T
	bin  string
	args []string
	env  []string
	url  string
	cmd  *exec.Cmd
	done chan error
}

func (s *servedProcess) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Env = append(os.Environ(), s.env...)
	s.cmd.Stdout, s.cmd.Stderr = nil, nil
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.cmd.Wait() }()
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, err := http.Get(s.url + "/v1")
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case err := <-s.done:
			s.t.Fatalf("serve exited at start: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatal("serve did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *servedProcess) kill9() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// stop ends serve gracefully (SIGTERM); a no-op once it has exited.
func (s *servedProcess) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		s.cmd = nil
	case <-time.After(40 * time.Second):
		s.kill9()
	}
}

// buildServe builds the streambed binary once per test run.
func buildServe(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "streambed")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/streambed/streambed/cmd/streambed").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestKillNineUnderLoad kills `streambed serve` with SIGKILL three times
// while idempotent and plain producers, group consumers and the serve's own
// compactor work, restarts it on the same storage each time, and checks
// the history like the main run: nothing acknowledged lost, nothing twice,
// order kept, nothing read vanished, commits never back, fsck clean.
func TestKillNineUnderLoad(t *testing.T) {
	bin := buildServe(t)
	type setup struct {
		name string
		args func(t *testing.T) ([]string, []string, func() backend)
	}
	for _, st := range []setup{
		{"embedded", func(t *testing.T) ([]string, []string, func() backend) {
			dir := t.TempDir()
			return []string{"--data", dir}, nil, func() backend {
				bt, fb := testenv.Embedded(t, dir)
				return backend{name: "embedded", table: bt, bucket: fb}
			}
		}},
		{"minio+moto", func(t *testing.T) ([]string, []string, func() backend) {
			be := minioMoto(t) // creates the bucket and table serve will use
			minio, user, password := testenv.MinIO(t)
			name := be.resource
			return []string{"--s3-bucket", name, "--s3-endpoint", minio, "--s3-path-style", "--dynamodb-table", name, "--dynamodb-endpoint", testenv.Moto(t), "--region", "us-east-1"},
				[]string{"AWS_ACCESS_KEY_ID=" + user, "AWS_SECRET_ACCESS_KEY=" + password},
				func() backend { return be }
		}},
	} {
		t.Run(st.name, func(t *testing.T) {
			args, env, storage := st.args(t)
			addr := testenv.FreeAddr(t)
			s := &servedProcess{t: t, bin: bin, url: "http://" + addr, env: env,
				args: append([]string{"serve", "--addr", addr, "--log-level", "error", "--compact-interval", "500ms"}, args...)}
			s.start()
			defer s.stop()
			run := killRun(t, s)
			s.stop()
			v := run(storage())
			t.Log(v.String())
			if !v.ok() {
				for i, p := range v.problems {
					if i == 30 {
						break
					}
					t.Log(p)
				}
				t.Fatalf("consistency violated after kill -9: %s", v)
			}
		})
	}
}

// killRun drives the load, kills and restarts serve, reads the final state
// through serve, and returns the check to finish once serve has stopped
// (fsck opens the storage directly, which bolt allows to one process).
func killRun(t *testing.T, s *servedProcess) func(backend) verdict {
	const topic, partitions = "kill", int32(4)
	cl, err := client.New(s.url, client.WithRetry(20, 50*time.Millisecond, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cl.CreateTopic(ctx, topic, partitions, nil); err != nil {
		t.Fatal(err)
	}
	h := newHistory()
	runCtx, stop := context.WithCancel(ctx)
	var wg, cwg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		if i%2 == 0 {
			go func() { defer wg.Done(); idempotentProducer(runCtx, t, cl, topic, i, h) }()
		} else {
			go func() { defer wg.Done(); plainProducer(runCtx, cl, topic, i, h) }()
		}
	}
	for i := range 2 {
		cwg.Add(1)
		go func() { defer cwg.Done(); consumer(runCtx, cl, topic, i, h) }()
	}
	cwg.Add(1)
	go func() { defer cwg.Done(); watchCommits(runCtx, cl, h) }()
	kills := int64(0)
	for range 3 {
		time.Sleep(1500 * time.Millisecond)
		s.kill9()
		s.start()
		kills++
	}
	time.Sleep(time.Second)
	stop()
	wg.Wait()
	cwg.Wait()
	reads := h.readAll(ctx, t, cl, topic, partitions)
	return func(be backend) verdict {
		v := h.judge(reads, floors{acked: 500, crashes: 3}, nil, kills)
		v.fsck = fsckVerdict(ctx, be, &v)
		return v
	}
}
