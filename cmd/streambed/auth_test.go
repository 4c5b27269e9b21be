package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streambed/streambed/pkg/auth"
)

func TestServeRefusesOpenAddressWithoutAuth(t *testing.T) {
	for _, args := range [][]string{{"--addr", "0.0.0.0:0"}, {"--addr", "", "--kafka-addr", "0.0.0.0:0"}} {
		var stdout, stderr bytes.Buffer
		data := filepath.Join(t.TempDir(), "data")
		code := run(context.Background(), append([]string{"serve", "--data", data}, args...), &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "refusing to listen on 0.0.0.0:0 without --auth") {
			t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
		}
		// Flags are checked before storage is touched.
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Fatalf("%v: a refused start created the data directory (%v)", args, err)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"serve", "--addr", "", "--data", t.TempDir()}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "nothing to serve") {
		t.Fatalf("no listener: exit %d: %s", code, stderr.String())
	}
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "localhost:1": true, "[::1]:80": true, ":8080": false, "0.0.0.0:80": false, "10.0.0.1:80": false} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v", addr, got)
		}
	}
}

// TestServeWithAuth runs serve with a policy file and uses the CLI with
// and without the token `streambed token` made.
func TestServeWithAuth(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"token", "ops"}, &out, &errb); code != 0 {
		t.Fatalf("token: %s", errb.String())
	}
	var tok, entry string
	for _, line := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "token:  "); ok {
			tok = v
		}
		if v, ok := strings.CutPrefix(line, "policy: "); ok {
			entry = v
		}
	}
	var te auth.Token
	if err := json.Unmarshal([]byte(entry), &te); err != nil || te.SHA256 != auth.HashToken(tok) {
		t.Fatalf("token output %q: %v", out.String(), err)
	}
	policy := filepath.Join(t.TempDir(), "policy.json")
	doc, _ := json.Marshal(auth.Policy{Principals: map[string]auth.Principal{"ops": {Grants: []auth.Grant{{Ops: []auth.Op{auth.Admin, auth.Produce, auth.Consume}, Topics: []string{"*"}, Groups: []string{"*"}}}}}, Tokens: []auth.Token{te}})
	if err := os.WriteFile(policy, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, nil, "--data", t.TempDir(), "--auth", policy, "--addr", "0.0.0.0:0")
	cli := func(env string, args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		if env != "" {
			t.Setenv("STREAMBED_TOKEN", env)
		} else {
			t.Setenv("STREAMBED_TOKEN", "")
		}
		code := run(context.Background(), append(args, "--url", p.url), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	if code, msg := cli("", "topics", "create", "audit"); code != 1 || !strings.Contains(msg, "401 unauthenticated") {
		t.Fatalf("without a token: %d %s", code, msg)
	}
	if code, msg := cli("sbt_wrong", "topics", "list"); code != 1 || !strings.Contains(msg, "401") {
		t.Fatalf("with a wrong token: %d %s", code, msg)
	}
	if code, msg := cli(tok, "topics", "create", "audit"); code != 0 {
		t.Fatalf("with the token: %d %s", code, msg)
	}
	if code, msg := cli(tok, "topics", "list"); code != 0 || !strings.Contains(msg, "audit") {
		t.Fatalf("list: %d %s", code, msg)
	}
	if strings.Contains(p.stderr.String(), tok) {
		t.Fatal("serve logged the token")
	}
	// Removing the token from the policy file revokes it, without a restart.
	doc, _ = json.Marshal(auth.Policy{Principals: map[string]auth.Principal{"ops": {Grants: []auth.Grant{{Ops: []auth.Op{auth.Admin}, Topics: []string{"*"}}}}}})
	if err := os.WriteFile(policy, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, msg := cli(tok, "topics", "list")
		if code == 1 && strings.Contains(msg, "401") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the removed token still works: %d %s", code, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.stop()
}
