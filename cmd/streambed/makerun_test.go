package main

import (
	"bytes"
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/testenv"
)

// TestMakeRunEndsQuietlyOnInterrupt starts `make run` (on free ports and a
// temporary data directory) in a process group of its own and interrupts
// the group, as Ctrl-C in a terminal does: make must end without
// reporting an error.
func TestMakeRunEndsQuietlyOnInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if _, err := exec.LookPath("make"); err != nil {
		if testenv.InCI() {
			t.Fatal("make is required in CI")
		}
		t.Skip("SKIPPED: make is not installed")
	}
	addr, kafka := testenv.FreeAddr(t), testenv.FreeAddr(t)
	var out bytes.Buffer
	cmd := exec.Command("make", "--no-print-directory", "run", "ADDR="+addr, "KAFKA_ADDR="+kafka, "DATA="+t.TempDir())
	cmd.Dir = "../.."
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(2 * time.Minute) // the first run builds the binary
	for {
		resp, err := http.Get("http://" + addr + "/v1")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("make run ended before serving: %v\n%s", err, out.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Fatalf("make run did not serve within 2m:\n%s", out.String())
		}
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		// make re-raises the interrupt on itself (the shell shows ^C and
		// nothing else); what must not appear is make reporting the
		// recipe as failed.
		var ee *exec.ExitError
		interrupted := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGINT
		if (err != nil && !interrupted) || strings.Contains(out.String(), "make: ***") {
			t.Fatalf("make run after Ctrl-C: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("make run did not end within 30s of Ctrl-C:\n%s", out.String())
	}
}
