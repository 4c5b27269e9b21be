package terraform_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/streambed/streambed/internal/testenv"
	"github.com/streambed/streambed/pkg/auth"
)

// TestImageRunsAsTheTask builds the container image as `make image` does
// (for this machine's architecture, so it can run here), takes the binary
// out of the OCI archive, and starts it with the Kafka task's command
// (kafka-task.json, which the task definition is built from; only the port
// differs) and environment names, against MinIO + moto with the policy in
// SSM and TLS from PEM variables, as on ECS. A Kafka client authenticates
// with SASL over TLS and round-trips records through it.
func TestImageRunsAsTheTask(t *testing.T) {
	minio, user, password := testenv.MinIO(t)
	moto := testenv.Moto(t)
	_, _, name := testenv.MinIOMoto(t, "image", 0)
	root, _ := filepath.Abs("../..")
	dir := t.TempDir()

	bin := filepath.Join(dir, "streambed")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", bin, "./cmd/streambed")
	build.Dir = root
	build.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	archive := filepath.Join(dir, "image.tar")
	img := exec.Command("go", "run", "./internal/cmd/ociimage", "-binary", bin, "-arch", runtime.GOARCH, "-o", archive)
	img.Dir = root
	if out, err := img.CombinedOutput(); err != nil {
		t.Fatalf("ociimage: %v\n%s", err, out)
	}
	entry, cmdline := fromImage(t, archive, filepath.Join(dir, "rootfs"))
	if entry != "/streambed" || len(cmdline) != 1 || cmdline[0] != "serve" {
		t.Fatalf("entrypoint %q, command %q", entry, cmdline)
	}

	var task struct {
		Command []string `json:"command"`
		Port    int      `json:"port"`
	}
	data, err := os.ReadFile("kafka-task.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &task); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	args := make([]string, len(task.Command))
	for i, a := range task.Command {
		args[i] = strings.ReplaceAll(a, fmt.Sprint(task.Port), fmt.Sprint(port))
	}

	// The policy, in SSM as the module's auth_policy_ssm_parameter.
	const token = "sbt_image-test-token-000000000000"
	policy := fmt.Sprintf(`{"principals":{"ops":{"grants":[{"ops":["admin","produce","consume"],"topics":["*"],"groups":["*"]}]}},"tokens":[{"principal":"ops","sha256":%q}]}`, auth.HashToken(token))
	param := "/" + name + "/auth-policy"
	ssmc := ssm.NewFromConfig(awsConfig(t, moto))
	if _, err := ssmc.PutParameter(context.Background(), &ssm.PutParameterInput{Name: &param, Value: &policy, Type: ssmtypes.ParameterTypeSecureString}); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := selfSigned(t)

	cmd := exec.Command(filepath.Join(dir, "rootfs", "streambed"), args...)
	cmd.Env = []string{
		// What the task definition sets (local.env and the Kafka service's own).
		"STREAMBED_S3_BUCKET=" + name, "STREAMBED_DYNAMODB_TABLE=" + name, "STREAMBED_LOG_LEVEL=info",
		"STREAMBED_AUTH_POLICY_SSM=" + param,
		fmt.Sprintf("STREAMBED_KAFKA_ADVERTISED_ADDR=auto:%d", port),
		"GOMEMLIMIT=1638MiB",
		"STREAMBED_KAFKA_TLS_CERT_PEM=" + string(certPEM), "STREAMBED_KAFKA_TLS_KEY_PEM=" + string(keyPEM),
		// The local stack's endpoints (on AWS: the task role and the SDK defaults).
		"STREAMBED_S3_ENDPOINT=" + minio, "STREAMBED_S3_PATH_STYLE=true", "STREAMBED_DYNAMODB_ENDPOINT=" + moto, "STREAMBED_SSM_ENDPOINT=" + moto,
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=" + user, "AWS_SECRET_ACCESS_KEY=" + password,
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("streambed's log:\n%s", logs.String())
		}
	})

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	cl, err := kgo.NewClient(kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", port)),
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool, ServerName: "streambed.test", MinVersion: tls.VersionTLS12}),
		kgo.SASL(plain.Auth{User: "ops", Pass: token}.AsMechanism()),
		kgo.RetryTimeout(30*time.Second), kgo.DefaultProduceTopic("through-the-image"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(cl)
	for {
		if _, err := adm.CreateTopic(ctx, 2, -1, nil, "through-the-image"); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("create topic: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // the process is still starting
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("through the task")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.AddConsumeTopics("through-the-image")
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{"through-the-image": {0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart()}})
	for {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		if recs := fs.Records(); len(recs) > 0 {
			if string(recs[0].Value) != "through the task" {
				t.Fatalf("read %q", recs[0].Value)
			}
			break
		}
	}
}

// fromImage unpacks an OCI image layout archive's single layer into dir
// and returns its entrypoint and command.
func fromImage(t *testing.T, archive, dir string) (string, []string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
	blob := func(digest string) []byte {
		b, ok := files["blobs/sha256/"+strings.TrimPrefix(digest, "sha256:")]
		if !ok {
			t.Fatalf("blob %s missing", digest)
		}
		return b
	}
	var index struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	var manifest struct {
		Config struct{ Digest string }   `json:"config"`
		Layers []struct{ Digest string } `json:"layers"`
	}
	var config struct {
		Config struct {
			Entrypoint []string
			Cmd        []string
		} `json:"config"`
	}
	if json.Unmarshal(files["index.json"], &index) != nil || len(index.Manifests) != 1 ||
		json.Unmarshal(blob(index.Manifests[0].Digest), &manifest) != nil || len(manifest.Layers) != 1 ||
		json.Unmarshal(blob(manifest.Config.Digest), &config) != nil || len(config.Config.Entrypoint) != 1 {
		t.Fatalf("not the image layout expected: %s", files["index.json"])
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob(manifest.Layers[0].Digest)))
	if err != nil {
		t.Fatal(err)
	}
	lr := tar.NewReader(zr)
	for {
		h, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		if h.Typeflag == tar.TypeDir {
			_ = os.MkdirAll(p, 0o755)
			continue
		}
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		b, _ := io.ReadAll(lr)
		if err := os.WriteFile(p, b, os.FileMode(h.Mode)); err != nil {
			t.Fatal(err)
		}
	}
	return config.Config.Entrypoint[0], config.Config.Cmd
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "streambed.test"}, DNSNames: []string{"streambed.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
