// Package awsauth signs Streambed client requests with AWS Signature
// Version 4, for endpoints behind IAM authorization: an API Gateway HTTP
// API route with AWS_IAM auth (service "execute-api") or a Lambda function
// URL with auth type AWS_IAM (service "lambda").
//
// It lives apart from package client so that programs which do not use
// IAM do not link the AWS SDK.
package awsauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/streambed/streambed/pkg/client"
)

// Services a Streambed endpoint may be signed for.
const (
	ServiceAPIGateway  = "execute-api"
	ServiceFunctionURL = "lambda"
)

// Signer implements client.Signer. Credentials come from the provider and
// are cached and refreshed by it (the SDK's default chain: environment,
// shared config/SSO, web identity, ECS/EC2 roles).
type Signer struct {
	creds   aws.CredentialsProvider
	region  string
	service string
	signer  *v4.Signer
	now     func() time.Time
}

var _ client.Signer = (*Signer)(nil)

// Option configures a Signer.
type Option func(*Signer)

// WithCredentials replaces the default credential chain.
func WithCredentials(p aws.CredentialsProvider) Option { return func(s *Signer) { s.creds = p } }

// WithRegion sets the region (default: the SDK's configuration, AWS_REGION).
func WithRegion(r string) Option { return func(s *Signer) { s.region = r } }

// WithClock fixes the signing time (tests).
func WithClock(now func() time.Time) Option { return func(s *Signer) { s.now = now } }

// New returns a signer for service ("execute-api" or "lambda").
func New(ctx context.Context, service string, opts ...Option) (*Signer, error) {
	if service != ServiceAPIGateway && service != ServiceFunctionURL {
		return nil, fmt.Errorf("awsauth: service must be %q or %q, got %q", ServiceAPIGateway, ServiceFunctionURL, service)
	}
	s := &Signer{service: service, signer: v4.NewSigner(), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	if s.creds == nil || s.region == "" {
		var lo []func(*config.LoadOptions) error
		if s.region != "" {
			lo = append(lo, config.WithRegion(s.region))
		}
		cfg, err := config.LoadDefaultConfig(ctx, lo...)
		if err != nil {
			return nil, fmt.Errorf("awsauth: load AWS config: %w", err)
		}
		if s.creds == nil {
			s.creds = cfg.Credentials
		}
		if s.region == "" {
			s.region = cfg.Region
		}
	}
	if s.region == "" {
		return nil, errors.New("awsauth: no region: set AWS_REGION or pass WithRegion")
	}
	if s.creds == nil {
		return nil, errors.New("awsauth: no AWS credentials found")
	}
	return s, nil
}

// Sign adds the SigV4 headers to req. The payload hash is sent as
// X-Amz-Content-Sha256 too, which function URLs require for POSTs.
func (s *Signer) Sign(req *http.Request, body []byte) error {
	ctx := req.Context()
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("awsauth: retrieve credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	if err := s.signer.SignHTTP(ctx, creds, req, hash, s.service, s.region, s.now().UTC()); err != nil {
		return fmt.Errorf("awsauth: sign: %w", err)
	}
	return nil
}
