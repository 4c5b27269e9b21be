// Package awsconf builds the aws.Config every Streambed AWS adapter uses:
// the default credential chain, an optional endpoint override for local
// stacks, and a retryer tuned for a server: a few attempts with package
// retry's full-jitter backoff (the callers above retry races with their
// own budget from the same policy, so the two multiply to a known bound),
// and no client-side retry quota, so throttling slows the broker down
// instead of failing it fast. Errors no retry can fix (validation, access,
// missing resources) are never retried.
package awsconf

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"

	sbretry "github.com/streambed/streambed/pkg/retry"
)

// Config selects the endpoint and retry behaviour.
type Config struct {
	// Endpoint overrides the AWS endpoint (MinIO, moto, LocalStack).
	Endpoint string
	// Region defaults to AWS_REGION / the shared config, then us-east-1.
	Region string
	// MaxAttempts per request, first try included (default 3).
	MaxAttempts int
	// MaxBackoff caps the wait between attempts (default 1s; the first
	// wait is at most 50 ms).
	MaxBackoff time.Duration
	// Backoff replaces the SDK's backoff (tests use a fast one).
	Backoff retry.BackoffDelayer
	// RetryCodes are extra error codes worth retrying.
	RetryCodes []string
	// HTTPClient replaces the default HTTP client.
	HTTPClient *http.Client
	// Credentials replace the default credential chain (local stacks, tests).
	Credentials aws.CredentialsProvider
}

// DefaultAttempts is how many times an AWS call is tried by default.
const DefaultAttempts = 3

// jitter draws the SDK's delays from package retry's policy.
type jitter struct{ p sbretry.Policy }

func (j jitter) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	return j.p.Delay(attempt), nil
}

// Load returns an aws.Config for cfg.
func Load(ctx context.Context, cfg Config) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, config.WithHTTPClient(cfg.HTTPClient))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	attempts, backoff := cfg.MaxAttempts, cfg.MaxBackoff
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	if backoff <= 0 {
		backoff = time.Second
	}
	delayer := cfg.Backoff
	if delayer == nil {
		delayer = jitter{sbretry.Policy{Attempts: attempts, Base: 50 * time.Millisecond, Max: backoff}}
	}
	awsCfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts
			o.MaxBackoff = backoff
			o.RateLimiter = ratelimit.None
			o.Backoff = delayer
			if len(cfg.RetryCodes) > 0 {
				codes := map[string]struct{}{}
				for _, c := range cfg.RetryCodes {
					codes[c] = struct{}{}
				}
				o.Retryables = append(o.Retryables, retry.RetryableErrorCode{Codes: codes})
			}
		})
	}
	return awsCfg, nil
}
