package bench

import "github.com/streambed/streambed/internal/faults"

// Cost is USD per GB of record data that went through the system: written
// once and read once by the consumer group, as the run did.
type Cost struct {
	S3Requests       float64 `json:"s3_requests"`
	DynamoDB         float64 `json:"dynamodb"`
	Lambda           float64 `json:"lambda"`
	APIGateway       float64 `json:"api_gateway"`
	Total            float64 `json:"total"`
	S3StorageGBMonth float64 `json:"s3_storage_per_gb_month"`
	// Peers at the same volume (per-hour charges excluded; see docs/cost.md).
	KinesisOnDemand float64 `json:"kinesis_on_demand"`
	MSKServerless   float64 `json:"msk_serverless"`
}

// costOf prices the run's requests. Lambda duration is the clients'
// measured request time (a function is billed while it answers, long polls
// included) at the configured memory size.
func costOf(r *Result, oc faults.BucketCounts, mc faults.TableCounts, p Prices) *Cost {
	gb := float64(r.ProducedBytes) / 1e9
	if gb == 0 {
		return nil
	}
	requests := float64(r.HTTP.ProduceRequests + r.HTTP.ConsumeRequests + r.HTTP.OtherRequests)
	c := &Cost{
		S3Requests: (float64(oc.Put)*p.S3PutPer1000 + float64(oc.Get)*p.S3GetPer1000 + float64(oc.List)*p.S3ListPer1000) / 1000 / gb,
		DynamoDB:   (float64(writeUnits(mc))*p.DynamoWritePerMillion + float64(mc.ItemsRead)*p.DynamoReadPerMillion) / 1e6 / gb,
		Lambda: (requests*p.LambdaPerMillion/1e6 +
			(r.HTTP.ProduceSeconds+r.HTTP.ConsumeSeconds)*p.LambdaMemoryMB/1024*p.LambdaGBSecond) / gb,
		APIGateway:       float64(r.HTTP.APIGWUnits) * p.APIGWPerMillion / 1e6 / gb,
		S3StorageGBMonth: p.S3StorageGBMonth,
		KinesisOnDemand:  p.KinesisIngestGB + p.KinesisRetrievalGB,
		MSKServerless:    p.MSKIngressGB + p.MSKEgressGB,
	}
	c.Total = c.S3Requests + c.DynamoDB + c.Lambda + c.APIGateway
	return c
}
