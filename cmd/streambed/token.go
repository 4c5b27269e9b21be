package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/streambed/streambed/pkg/auth"
)

// runToken makes a random bearer token and the policy entry that stores
// it hashed: the policy file never holds the token itself.
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token", "token PRINCIPAL\n\nPrints a new random bearer token and the \"tokens\" entry for the policy\nfile (which stores only its SHA-256). Give the token to the principal; it is\nnot stored anywhere.", stderr)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) != 1 {
		return badArgs(fs, "need the principal the token is for")
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	tok := "sbt_" + base64.RawURLEncoding.EncodeToString(b[:])
	_, err = fmt.Fprintf(stdout, "token:  %s\npolicy: {\"principal\": %q, \"sha256\": %q}\n", tok, pos[0], auth.HashToken(tok))
	return err
}
