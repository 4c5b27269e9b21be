// Package testenv finds the local services integration tests run against.
//
// Endpoints come from environment variables, which `make test` (via
// localstack/up.sh) writes to bin/localstack.env. A developer without the
// stack gets a loud skip; when CI is set a missing service fails the test,
// so CI can never pass by skipping.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Variables naming the local services.
const (
	MinIOEndpoint = "STREAMBED_TEST_MINIO_ENDPOINT" // e.g. http://127.0.0.1:9100
	MinIOUser     = "STREAMBED_TEST_MINIO_ACCESS_KEY"
	MinIOPassword = "STREAMBED_TEST_MINIO_SECRET_KEY"
	MotoEndpoint  = "STREAMBED_TEST_MOTO_ENDPOINT" // e.g. http://127.0.0.1:5100
)

// InCI reports whether the tests run in CI, where nothing may be skipped.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "0" && v != "false"
}

// Require returns the value of the environment variable name, or stops the
// test: Fatal in CI, Skip (with how to get the service) elsewhere.
func Require(t testing.TB, name string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	msg := name + " is not set: this integration test needs the local stack. " +
		"Run `make localstack-up` and `set -a; . bin/localstack.env; set +a`, or just `make test`."
	if InCI() {
		t.Fatal("CI is set and a service is missing: " + msg)
	}
	t.Skip("SKIPPED (no local stack): " + msg)
	return ""
}

// MinIO returns the MinIO endpoint and its credentials.
func MinIO(t testing.TB) (endpoint, user, password string) {
	t.Helper()
	endpoint = Require(t, MinIOEndpoint)
	user, password = os.Getenv(MinIOUser), os.Getenv(MinIOPassword)
	if user == "" {
		user, password = "minioadmin", "minioadmin"
	}
	return endpoint, user, password
}

// Moto returns the moto server endpoint; any credentials work there.
func Moto(t testing.TB) string {
	t.Helper()
	return Require(t, MotoEndpoint)
}

// Name returns a unique, DNS-safe resource name with the given prefix, so
// parallel tests and repeated runs never share buckets or tables.
func Name(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// Chromium returns the path of a Chromium binary for browser tests: the
// STREAMBED_TEST_CHROMIUM variable, else chromium on the PATH.
func Chromium(t testing.TB) string {
	t.Helper()
	if v := os.Getenv("STREAMBED_TEST_CHROMIUM"); v != "" {
		return v
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found (set STREAMBED_TEST_CHROMIUM or `apt-get install chromium`; `make test` installs it)"
	if InCI() {
		t.Fatal("CI is set and a service is missing: " + msg)
	}
	t.Skip("SKIPPED: " + msg)
	return ""
}

// FreeAddr is a loopback address nothing listens on, for a server the
// test is about to start (another process could take it meanwhile; tests
// accept that small chance).
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
