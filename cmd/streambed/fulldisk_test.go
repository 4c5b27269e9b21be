package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// smallDisk mounts a tmpfs of size bytes for the test: a disk that really
// fills up. It needs root (CI runs as root; elsewhere it skips loudly).
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("this test mounts a tmpfs and needs root")
		}
		t.Skip("SKIPPED: mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

func freeBytes(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// TestFullDiskTopicDeletionFreesSpace: on a disk that filled up, produce
// is refused (507, nothing written) while metadata still works; deleting
// the topic and one compaction run give the space back at once (no grace
// period for a deleted topic's objects, no lease left held), and
// producing works again.
func TestFullDiskTopicDeletionFreesSpace(t *testing.T) {
	const size = 48 << 20
	dir := smallDisk(t, size)
	p := startServe(t, nil, "--data", dir, "--min-free-disk", "4MiB", "--compact-interval", "0", "--compression", "none")
	call(t, "POST", p.url+"/v1/topics", map[string]any{"name": "big", "partitions": 2}, 201)
	blob := make([]byte, 96<<10)
	record := func() map[string]any {
		_, _ = rand.Read(blob)
		return map[string]any{"value_b64": base64.StdEncoding.EncodeToString(blob)}
	}
	full := false
	for i := 0; i < 100 && !full; i++ {
		recs := make([]any, 10)
		for j := range recs {
			recs[j] = record()
		}
		status, body := post(t, p.url+"/v1/topics/big/records", map[string]any{"records": recs})
		switch status {
		case 200:
		case 507:
			if body["code"] != "insufficient_storage" || body["side_effect"] != "none" || body["retryable"] != true {
				t.Fatalf("a full disk: %v", body)
			}
			full = true
		default:
			t.Fatalf("produce: %d %v", status, body)
		}
	}
	if !full {
		t.Fatal("the disk never filled")
	}
	before := freeBytes(t, dir)
	// Metadata still works: a topic can be created and deleted.
	call(t, "POST", p.url+"/v1/topics", map[string]any{"name": "small", "partitions": 1}, 201)
	call(t, "DELETE", p.url+"/v1/topics/big", nil, 204)
	call(t, "POST", p.url+"/v1/admin/compact", nil, 200)
	after := freeBytes(t, dir)
	if after < before+30<<20 {
		t.Fatalf("free space %d MiB before deleting, %d MiB after one compaction run", before>>20, after>>20)
	}
	status, body := post(t, p.url+"/v1/topics/small/records", map[string]any{"records": []any{record()}})
	if status != 200 {
		t.Fatalf("produce after freeing space: %d %v", status, body)
	}
	p.stop()
}

// post sends JSON and returns the status and decoded answer.
func post(t *testing.T, url string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}
