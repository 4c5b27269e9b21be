// Command lambdazip packages a Lambda bootstrap binary as a reproducible
// zip: one entry named "bootstrap", mode 0755, a fixed timestamp and no
// extra fields, so the same binary always yields the same bytes (and the
// same source_code_hash in Terraform).
//
//	go run ./internal/cmd/lambdazip dist/produce/bootstrap dist/produce.zip
package main

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// epoch is the zip format's earliest date: a fixed, honest "no time".
var epoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Zip returns the archive for a bootstrap binary.
func Zip(binary []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	hdr := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate, Modified: epoch}
	hdr.SetMode(fs.FileMode(0o755))
	w, err := zw.CreateHeader(hdr)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(binary); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: lambdazip <bootstrap> <out.zip>")
		os.Exit(2)
	}
	bin, err := os.ReadFile(os.Args[1])
	if err == nil {
		var out []byte
		if out, err = Zip(bin); err == nil {
			err = os.WriteFile(os.Args[2], out, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lambdazip:", err)
		os.Exit(1)
	}
}
