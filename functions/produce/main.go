// Command produce is the Lambda function that serves the produce routes (POST .../records, producer ids, fencing). It only wires: see internal/lambdafn.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/streambed/streambed/internal/lambdafn"
)

func main() {
	app := lambdafn.Must("produce")
	lambda.Start(lambdafn.HTTPHandler(app.Server("produce", "public").Handler()))
}
