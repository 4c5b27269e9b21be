// Command admin is the Lambda function that serves the admin routes (topics, groups, offset resets, compaction and fsck on demand) and the web console. It only wires: see internal/lambdafn.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/streambed/streambed/internal/lambdafn"
)

func main() {
	app := lambdafn.Must("admin")
	lambda.Start(lambdafn.HTTPHandler(app.WithConsole().Server("admin", "read", "public").Handler()))
}
