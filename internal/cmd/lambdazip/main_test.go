package main

import (
	"archive/zip"
	"bytes"
	"io"
	"testing"
)

func TestReproducible(t *testing.T) {
	bin := bytes.Repeat([]byte("\x7fELF fake bootstrap "), 1000)
	a, err := Zip(bin)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Zip(append([]byte(nil), bin...))
	if !bytes.Equal(a, b) {
		t.Fatal("the same binary zipped twice differs")
	}
	zr, err := zip.NewReader(bytes.NewReader(a), int64(len(a)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" || zr.File[0].Mode().Perm() != 0o755 || !zr.File[0].Modified.Equal(epoch) {
		t.Fatalf("entry %+v", zr.File[0].FileHeader)
	}
	rc, _ := zr.File[0].Open()
	got, _ := io.ReadAll(rc)
	if !bytes.Equal(got, bin) {
		t.Fatal("content differs")
	}
}
