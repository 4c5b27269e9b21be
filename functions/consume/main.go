// Command consume is the Lambda function that serves the consume routes (records as JSON, NDJSON or a Server-Sent Events stream over a RESPONSE_STREAM Function URL, fetch, and consumer groups). It only wires: see internal/lambdafn.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/streambed/streambed/internal/lambdafn"
)

func main() {
	app := lambdafn.Must("consume")
	lambda.Start(lambdafn.HTTPHandler(app.Server("consume", "read", "public").Handler()))
}
