// Command ociimage writes a container image holding one static binary as
// an OCI image layout archive (a tar of oci-layout, index.json and the
// blobs), without a container daemon and without a base image: the layer
// is the binary at /streambed, the process runs as an unprivileged user.
// The output is reproducible: the same binary gives the same bytes (fixed
// timestamps, sorted entries, gzip without a name or time).
//
//	go run ./internal/cmd/ociimage -binary dist/image/streambed -arch arm64 -o dist/streambed-image.tar
//
// Push it with any OCI tool, e.g. `skopeo copy oci-archive:dist/streambed-image.tar
// docker://ACCOUNT.dkr.ecr.REGION.amazonaws.com/streambed:TAG`.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

// epoch is every timestamp in the image, for reproducibility.
var epoch = time.Unix(0, 0).UTC()

// uid is the user the process runs as (nobody-like, no home).
const uid = 65532

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func run(args []string) error {
	fs := flag.NewFlagSet("ociimage", flag.ContinueOnError)
	binary := fs.String("binary", "", "the static binary to put at /streambed")
	arch := fs.String("arch", "arm64", "the image's architecture (linux)")
	out := fs.String("o", "", "the OCI image layout archive to write")
	tag := fs.String("tag", "latest", "the reference name recorded in index.json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *binary == "" || *out == "" {
		return fmt.Errorf("-binary and -o are required")
	}
	bin, err := os.ReadFile(*binary)
	if err != nil {
		return err
	}
	layer, diffID, err := layerOf(bin)
	if err != nil {
		return err
	}
	cfg, err := json.Marshal(map[string]any{
		"created":      epoch.Format(time.RFC3339),
		"architecture": *arch,
		"os":           "linux",
		"config": map[string]any{
			"Entrypoint": []string{"/streambed"},
			"Cmd":        []string{"serve"},
			"User":       fmt.Sprintf("%d:%d", uid, uid),
			"Env":        []string{"STREAMBED_LOG_FORMAT=json"},
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{diffID}},
		"history": []map[string]any{{"created": epoch.Format(time.RFC3339), "created_by": "ociimage: /streambed"}},
	})
	if err != nil {
		return err
	}
	blobs := map[string][]byte{}
	add := func(media string, b []byte) descriptor {
		d := digest(b)
		blobs[d] = b
		return descriptor{MediaType: media, Digest: d, Size: int64(len(b))}
	}
	cfgDesc := add("application/vnd.oci.image.config.v1+json", cfg)
	layerDesc := add("application/vnd.oci.image.layer.v1.tar+gzip", layer)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        cfgDesc,
		"layers":        []descriptor{layerDesc},
	})
	if err != nil {
		return err
	}
	manDesc := add("application/vnd.oci.image.manifest.v1+json", manifest)
	manDesc.Annotations = map[string]string{"org.opencontainers.image.ref.name": *tag}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []descriptor{manDesc}})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	file := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	if err := file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := file("index.json", index); err != nil {
		return err
	}
	for _, d := range []descriptor{cfgDesc, layerDesc, manDesc} { // a fixed order
		if err := file("blobs/sha256/"+d.Digest[len("sha256:"):], blobs[d.Digest]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: linux/%s image, manifest %s\n", *out, *arch, manDesc.Digest)
	return nil
}

// layerOf is the gzipped tar layer holding the binary and a passwd entry
// for the user, and the digest of the uncompressed tar (its diff id).
func layerOf(bin []byte) ([]byte, string, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	entries := []struct {
		name string
		mode int64
		body []byte
		dir  bool
	}{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, body: fmt.Appendf(nil, "streambed:x:%d:%d::/nonexistent:/sbin/nologin\n", uid, uid)},
		{name: "streambed", mode: 0o755, body: bin},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: epoch, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, "", err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, "", err
	}
	zw.ModTime = epoch // gzip's header time: fixed
	if _, err := io.Copy(zw, bytes.NewReader(raw.Bytes())); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return gz.Bytes(), digest(raw.Bytes()), nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
