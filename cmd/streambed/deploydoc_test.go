package main

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streambed/streambed/internal/testenv"
)

// TestDeployDocLocalStack runs docs/deploy.md's local-stack commands as
// written (only the ports change): the broker on MinIO + moto with the
// functions' code, then the produce function under the Lambda Runtime
// Interface Emulator, invoked with a recorded API Gateway event. (Its
// Terraform commands are TestApplyDestroyLocal's.)
func TestDeployDocLocalStack(t *testing.T) {
	testenv.MinIO(t) // the stack must be up (make test brings it up)
	testenv.Moto(t)
	doc, err := os.ReadFile("../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	serve := readmeCommands(t, string(doc), "local-serve")
	rie := readmeCommands(t, string(doc), "local-rie")
	if len(serve) != 1 || len(rie) != 1 || !strings.Contains(serve[0], "serve ") || !strings.Contains(rie[0], "aws-lambda-rie") {
		t.Fatalf("docs/deploy.md's local commands changed shape (%d, %d); update this test with them", len(serve), len(rie))
	}
	addr, rieAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	bash := func(script string) *exec.Cmd {
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir = "../.."
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		return cmd
	}
	// The broker, in the background; its own port, and no Kafka listener
	// (the doc's command serves HTTP only).
	srv := bash(strings.Replace(serve[0], "serve ", "serve --addr "+addr+" ", 1))
	var out syncBuffer
	srv.Stdout, srv.Stderr = &out, &out
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-srv.Process.Pid, syscall.SIGTERM); _ = srv.Wait() })
	for deadline := time.Now().Add(3 * time.Minute); ; {
		if resp, err := http.Get("http://" + addr + "/v1"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the doc's serve command never answered:\n%s", out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if o, err := exec.Command("curl", "-s", "-X", "POST", "http://"+addr+"/v1/topics", "-H", "Content-Type: application/json",
		"-d", `{"name":"orders","partitions":3}`).CombinedOutput(); err != nil || !(strings.Contains(string(o), `"name":"orders"`) || strings.Contains(string(o), "topic_exists")) {
		t.Fatalf("create orders: %v %s", err, o)
	}

	// The emulator and the function it starts stay behind the script (as
	// in the user's shell): the output goes to a file, so waiting for bash
	// does not wait for them, and the process group is killed after.
	f, err := os.Create(t.TempDir() + "/rie.out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	inv := bash("set -e\n" + strings.ReplaceAll(rie[0], "127.0.0.1:9000", rieAddr))
	inv.Stdout, inv.Stderr = f, f
	if err := inv.Start(); err != nil {
		t.Fatal(err)
	}
	err = inv.Wait()
	_ = syscall.Kill(-inv.Process.Pid, syscall.SIGKILL)
	o, _ := os.ReadFile(f.Name())
	if err != nil || !strings.Contains(string(o), `\"failed_record_count\":0`) {
		t.Fatalf("the doc's emulator invocation: %v\n%s", err, o)
	}
}
