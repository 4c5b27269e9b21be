package terraform_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/streambed/streambed/internal/awsconf"
	"github.com/streambed/streambed/internal/testenv"
)

// tf runs terraform in dir with the CLI configuration of the local mirror.
type tf struct {
	t   *testing.T
	bin string
	dir string
	env []string
}

func (x tf) run(args ...string) string {
	x.t.Helper()
	cmd := exec.Command(x.bin, args...)
	cmd.Dir = x.dir
	cmd.Env = append(os.Environ(), x.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		x.t.Fatalf("terraform %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// copyModule copies infra/terraform (without local state) to a temp dir, so
// tests never write .terraform or state files into the repository.
func copyModule(t *testing.T) string {
	dst := t.TempDir()
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".terraform" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, p), 0o755)
		}
		if !strings.HasSuffix(p, ".tf") && !strings.HasSuffix(p, ".json") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, p), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// buildZips builds the real function zips, as `make lambda` does.
func buildZips(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	root, _ := filepath.Abs("../..")
	for _, fn := range []string{"produce", "consume", "admin", "compact"} {
		bin := filepath.Join(dir, fn, "bootstrap")
		build := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", bin, "./functions/"+fn)
		build.Dir = root
		build.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", fn, err, out)
		}
		zip := exec.Command("go", "run", "./internal/cmd/lambdazip", bin, filepath.Join(dir, fn+".zip"))
		zip.Dir = root
		if out, err := zip.CombinedOutput(); err != nil {
			t.Fatalf("zip %s: %v\n%s", fn, err, out)
		}
	}
	return dir
}

func randomName() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "sb-" + hex.EncodeToString(b[:])
}

// TestApplyDestroyLocal applies examples/local against the moto server,
// checks with the AWS APIs that the bucket, table, functions, API routes
// and schedule exist as configured, checks the applied state and the plan
// of an IAM-authenticated deployment for wildcard grants, open routes and
// public URLs, then destroys everything.
func TestApplyDestroyLocal(t *testing.T) {
	bin := testenv.Require(t, "STREAMBED_TEST_TERRAFORM")
	moto := testenv.Moto(t)
	env := []string{"TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1"}
	if rc := os.Getenv("TF_CLI_CONFIG_FILE"); rc != "" {
		env = append(env, "TF_CLI_CONFIG_FILE="+rc)
	}
	zips := buildZips(t)
	mod := copyModule(t)
	name := randomName()
	x := tf{t: t, bin: bin, dir: filepath.Join(mod, "examples", "local"), env: env}
	vars := []string{"-var", "endpoint=" + moto, "-var", "name=" + name, "-var", "lambda_zip_dir=" + zips}
	x.run("init", "-input=false", "-no-color")

	// The IAM-authenticated plan: no open route, no wildcard, no public URL.
	x.run(append([]string{"plan", "-input=false", "-no-color", "-out=iam.plan", "-var", "auth=iam"}, vars...)...)
	if f := findings(t, x.run("show", "-json", "iam.plan")); len(f) != 0 {
		t.Fatalf("IAM-authenticated plan: %+v", f)
	}

	x.run(append([]string{"apply", "-input=false", "-no-color", "-auto-approve"}, vars...)...)
	destroyed := false
	t.Cleanup(func() {
		if !destroyed {
			x.run(append([]string{"destroy", "-input=false", "-no-color", "-auto-approve"}, vars...)...)
		}
	})
	var outs map[string]struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal([]byte(x.run("output", "-json")), &outs); err != nil {
		t.Fatal(err)
	}
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(outs[k].Value, &s)
		return s
	}
	verifyDeployed(t, moto, name, str("bucket_name"), str("table_name"), str("api_id"), str("schedule_name"))

	state := x.run("show", "-json")
	verifyKafkaService(t, state)

	// The applied state (every value known): the only findings are the
	// routes left open by auth = "none", which is what examples/local uses.
	for _, f := range findings(t, state) {
		if !strings.Contains(f.Problem, "has no authorizer") {
			t.Fatalf("applied state: %+v", f)
		}
	}

	x.run(append([]string{"destroy", "-input=false", "-no-color", "-auto-approve"}, vars...)...)
	destroyed = true
	if _, err := s3Client(t, moto).HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String(str("bucket_name"))}); err == nil {
		t.Fatal("the bucket survived terraform destroy")
	}
}

// verifyKafkaService checks the Kafka service's resources in the applied
// state: the task starts streambed as kafka-task.json says, the listener
// outlasts clients' idle connections, the service sits behind the load
// balancer. moto cannot apply Application Auto Scaling (no
// ListTagsForResource), so examples/local turns it off; validate and the
// AWS example cover it.
func verifyKafkaService(t *testing.T, show string) {
	t.Helper()
	var doc struct {
		Values struct {
			RootModule tfModule `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal([]byte(show), &doc); err != nil {
		t.Fatal(err)
	}
	byType := map[string]map[string]any{}
	var walk func(m tfModule)
	walk = func(m tfModule) {
		for _, r := range m.Resources {
			byType[r.Type] = r.Values
		}
		for _, c := range m.ChildModules {
			walk(c)
		}
	}
	walk(doc.Values.RootModule)
	for _, typ := range []string{"aws_ecs_cluster", "aws_ecs_service", "aws_ecs_task_definition", "aws_lb", "aws_lb_target_group", "aws_lb_listener", "aws_security_group", "aws_iam_role_policy"} {
		if byType[typ] == nil {
			t.Errorf("the Kafka service's %s was not applied", typ)
		}
	}
	if t.Failed() {
		return
	}
	t.Log("not applied against moto (its Application Auto Scaling lacks ListTagsForResource): aws_appautoscaling_target, aws_appautoscaling_policy")
	if v := byType["aws_lb_listener"]["tcp_idle_timeout_seconds"]; v != float64(600) {
		t.Errorf("listener idle timeout %v, want 600", v)
	}
	task, err := os.ReadFile("kafka-task.json")
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Command []string `json:"command"`
	}
	_ = json.Unmarshal(task, &want)
	var containers []struct {
		Command []string `json:"command"`
		Image   string   `json:"image"`
	}
	if err := json.Unmarshal([]byte(byType["aws_ecs_task_definition"]["container_definitions"].(string)), &containers); err != nil {
		t.Fatal(err)
	}
	if len(containers) != 1 || !slices.Equal(containers[0].Command, want.Command) {
		t.Errorf("task command %+v, want %v", containers, want.Command)
	}
}

func findings(t *testing.T, show string) []Finding {
	t.Helper()
	f, err := checkPolicies([]byte(show))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func awsConfig(t *testing.T, endpoint string) aws.Config {
	cfg, err := awsconf.Load(context.Background(), awsconf.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	if err != nil {
		t.Fatal(err)
	}
	cfg.BaseEndpoint = aws.String(endpoint)
	return cfg
}

func s3Client(t *testing.T, endpoint string) *s3.Client {
	return s3.NewFromConfig(awsConfig(t, endpoint), func(o *s3.Options) { o.UsePathStyle = true })
}

func verifyDeployed(t *testing.T, endpoint, name, bucket, table, apiID, schedule string) {
	ctx := context.Background()
	cfg := awsConfig(t, endpoint)
	s3c := s3Client(t, endpoint)
	if _, err := s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("bucket %s: %v", bucket, err)
	}
	pab, err := s3c.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: &bucket})
	if err != nil || !aws.ToBool(pab.PublicAccessBlockConfiguration.BlockPublicAcls) || !aws.ToBool(pab.PublicAccessBlockConfiguration.RestrictPublicBuckets) {
		t.Fatalf("public access block %+v %v", pab, err)
	}
	enc, err := s3c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: &bucket})
	if err != nil || len(enc.ServerSideEncryptionConfiguration.Rules) == 0 {
		t.Fatalf("bucket encryption %+v %v", enc, err)
	}
	pol, err := s3c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: &bucket})
	if err != nil || !strings.Contains(aws.ToString(pol.Policy), "aws:SecureTransport") {
		t.Fatalf("bucket policy %v %v", pol, err)
	}

	ddb := dynamodb.NewFromConfig(cfg)
	desc, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
	if err != nil || desc.Table.BillingModeSummary == nil || desc.Table.BillingModeSummary.BillingMode != "PAY_PER_REQUEST" {
		t.Fatalf("table %s: %+v %v", table, desc, err)
	}
	ttl, err := ddb.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &table})
	if err != nil || aws.ToString(ttl.TimeToLiveDescription.AttributeName) != "ttl" {
		t.Fatalf("table TTL %+v %v", ttl, err)
	}
	pitr, err := ddb.DescribeContinuousBackups(ctx, &dynamodb.DescribeContinuousBackupsInput{TableName: &table})
	if err != nil || pitr.ContinuousBackupsDescription.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus != "ENABLED" {
		t.Fatalf("point-in-time recovery %+v %v", pitr, err)
	}

	lc := lambda.NewFromConfig(cfg)
	for _, fn := range []string{"produce", "consume", "admin", "compact"} {
		got, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name + "-" + fn)})
		if err != nil {
			t.Fatalf("function %s: %v", fn, err)
		}
		c := got.Configuration
		if string(c.Runtime) != "provided.al2023" || len(c.Architectures) != 1 || c.Architectures[0] != "arm64" || aws.ToString(c.Handler) != "bootstrap" {
			t.Fatalf("function %s: runtime %s arch %v handler %s", fn, c.Runtime, c.Architectures, aws.ToString(c.Handler))
		}
		if c.Environment == nil || c.Environment.Variables["STREAMBED_DYNAMODB_TABLE"] != table {
			t.Fatalf("function %s environment %+v", fn, c.Environment)
		}
	}
	// One compactor at a time, its key map a quarter of its memory.
	conc, err := lc.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String(name + "-compact")})
	if err != nil || aws.ToInt32(conc.ReservedConcurrentExecutions) != 1 {
		t.Fatalf("compact function concurrency %+v %v", conc, err)
	}
	compact, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name + "-compact")})
	if err != nil || compact.Configuration.Environment.Variables["STREAMBED_COMPACT_MEMORY_MB"] != "512" {
		t.Fatalf("compact function environment %+v %v", compact.Configuration.Environment, err)
	}
	url, err := lc.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String(name + "-consume")})
	if err != nil || url.AuthType != "AWS_IAM" || url.InvokeMode != "RESPONSE_STREAM" {
		t.Fatalf("function URL %+v %v", url, err)
	}

	routes, err := apigatewayv2.NewFromConfig(cfg).GetRoutes(ctx, &apigatewayv2.GetRoutesInput{ApiId: &apiID})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range routes.Items {
		keys = append(keys, aws.ToString(r.RouteKey))
	}
	for _, want := range []string{"POST /v1/topics/{topic}/records", "GET /v1/topics/{topic}/partitions/{partition}/records", "POST /v1/groups/{group}/poll", "POST /v3/clusters/{cluster}/topics/{topic}/records:batch",
		"GET /ui/{proxy+}"} {
		if !slices.Contains(keys, want) {
			t.Fatalf("route %q missing from %v", want, keys)
		}
	}
	// The API's 33 and the console's 3 (its assets, on the admin function).
	if len(keys) != 36 {
		t.Fatalf("%d routes, want 36", len(keys))
	}
	// (That only the console's routes are open under IAM authorization is
	// the IAM plan's check above.)

	sc, err := scheduler.NewFromConfig(cfg).GetSchedule(ctx, &scheduler.GetScheduleInput{Name: &schedule})
	if err != nil || !strings.HasPrefix(aws.ToString(sc.ScheduleExpression), "rate(") || !strings.HasSuffix(aws.ToString(sc.Target.Arn), name+"-compact") {
		t.Fatalf("schedule %+v %v", sc, err)
	}
}
