// Command burst measures what a burst of large produce requests costs a
// running server: its peak and settled resident memory, and how slow a
// health probe gets meanwhile. It is how docs/benchmarks.md's memory
// figures are made:
//
//	go run ./internal/cmd/burst -url http://127.0.0.1:8080 -pid $(pgrep -f 'streambed serve') -n 128 -size 5242880
package main

import (
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "server")
	pid := flag.Int("pid", 0, "server process id (for its memory)")
	n := flag.Int("n", 128, "concurrent requests")
	size := flag.Int("size", 5<<20, "request body bytes (about)")
	settle := flag.Duration("settle", 60*time.Second, "how long after the burst to measure memory again")
	flag.Parse()
	if *pid == 0 {
		fmt.Fprintln(os.Stderr, "burst: -pid is required")
		os.Exit(2)
	}
	topic := fmt.Sprintf("burst-%d", time.Now().UnixNano())
	if _, err := http.Post(*url+"/v1/topics", "application/json", strings.NewReader(`{"name":"`+topic+`","partitions":4}`)); err != nil {
		fmt.Fprintln(os.Stderr, "burst:", err)
		os.Exit(1)
	}
	// Records of 768 KiB of random bytes (1 MiB as base64), as many as fit.
	raw := make([]byte, 768<<10)
	for i := range raw {
		raw[i] = byte(rand.Uint32())
	}
	rec := `{"value_b64":"` + base64.StdEncoding.EncodeToString(raw) + `"}`
	var recs []string
	for len(recs)*len(rec) < *size-len(rec) {
		recs = append(recs, rec)
	}
	body := []byte(`{"records":[` + strings.Join(recs, ",") + `]}`)

	base := rss(*pid, "VmRSS")
	stop := make(chan struct{})
	var probes []time.Duration
	var pmu sync.Mutex
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			start := time.Now()
			if resp, err := http.Get(*url + "/v1"); err == nil {
				resp.Body.Close()
			}
			pmu.Lock()
			probes = append(probes, time.Since(start))
			pmu.Unlock()
		}
	}()
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range *n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(*url+"/v1/topics/"+topic+"/records", "application/json", bytes.NewReader(body))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				codes[0]++
				return
			}
			resp.Body.Close()
			codes[resp.StatusCode]++
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(stop)
	peak := rss(*pid, "VmHWM")
	after := rss(*pid, "VmRSS")
	time.Sleep(*settle)
	settled := rss(*pid, "VmRSS")
	pmu.Lock()
	slices.Sort(probes)
	p50, p99 := pct(probes, 50), pct(probes, 99)
	pmu.Unlock()
	fmt.Printf("requests=%d body=%.1fMiB took=%s answers=%v\n", *n, float64(len(body))/(1<<20), took.Round(time.Millisecond), codes)
	fmt.Printf("rss_before=%dMiB rss_peak=%dMiB rss_after=%dMiB rss_after_%s=%dMiB\n", base>>10, peak>>10, after>>10, *settle, settled>>10)
	fmt.Printf("health_probe p50=%s p99=%s (%d probes)\n", p50.Round(time.Millisecond), p99.Round(time.Millisecond), len(probes))
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, len(d)*p/100)]
}

// rss reads a memory figure of /proc/PID/status, in KiB.
func rss(pid int, field string) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return -1
}
