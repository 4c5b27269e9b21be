// Command compact is the Lambda function the EventBridge Scheduler invokes
// to run the compactor (retention, key compaction, merges, GC, orphan
// sweep) and publish compaction and consumer-lag metrics. It only wires:
// see internal/lambdafn.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/streambed/streambed/internal/lambdafn"
)

func main() {
	lambda.Start(lambdafn.Must("compact").CompactHandler())
}
