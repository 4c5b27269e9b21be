package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// disk is the floor under every durable system: one writer appending
// writeBytes to a file and fdatasync-ing each write.
func disk(writeBytes int, d time.Duration) ([]row, error) {
	dir, err := os.MkdirTemp("", "peers-disk-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	f, err := os.OpenFile(filepath.Join(dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, writeBytes)
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		if _, err := f.Write(buf); err != nil {
			return nil, err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return nil, err
		}
		n++
	}
	elapsed := time.Since(start).Seconds()
	return []row{{System: "disk (append + fdatasync)", Clients: 1, RecordsPerS: float64(n) / elapsed, MBPerS: float64(n*writeBytes) / elapsed / 1e6,
		Note: fmt.Sprintf("%d-byte writes; records/s is writes/s", writeBytes)}}, nil
}
