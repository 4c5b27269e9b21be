package httpapi

import (
	"github.com/streambed/streambed/pkg/api"
	"github.com/streambed/streambed/pkg/broker"
)

func decodeProduceForBench(body []byte) ([]broker.ProduceRecord, *api.Problem) {
	in, p := decodeProduce(body, false, 1000)
	return in.records, p
}
