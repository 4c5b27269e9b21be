package bench

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
)

//go:embed prices.json
var defaultPrices []byte

// Prices are list prices in USD. One file holds them all (prices.json,
// embedded; --prices replaces it).
type Prices struct {
	Source                string  `json:"_source"`
	S3PutPer1000          float64 `json:"s3_put_per_1000"`
	S3GetPer1000          float64 `json:"s3_get_per_1000"`
	S3ListPer1000         float64 `json:"s3_list_per_1000"`
	S3StorageGBMonth      float64 `json:"s3_storage_gb_month"`
	DynamoWritePerMillion float64 `json:"dynamodb_write_unit_per_million"`
	DynamoReadPerMillion  float64 `json:"dynamodb_read_unit_per_million"`
	DynamoStorageGBMonth  float64 `json:"dynamodb_storage_gb_month"`
	LambdaGBSecond        float64 `json:"lambda_arm64_gb_second"`
	LambdaPerMillion      float64 `json:"lambda_request_per_million"`
	LambdaMemoryMB        float64 `json:"lambda_memory_mb"`
	APIGWPerMillion       float64 `json:"apigw_http_request_per_million"`
	APIGWUnitBytes        float64 `json:"apigw_http_request_unit_bytes"`
	KinesisIngestGB       float64 `json:"kinesis_on_demand_ingest_gb"`
	KinesisRetrievalGB    float64 `json:"kinesis_on_demand_retrieval_gb"`
	KinesisStreamHour     float64 `json:"kinesis_on_demand_stream_hour"`
	MSKIngressGB          float64 `json:"msk_serverless_ingress_gb"`
	MSKEgressGB           float64 `json:"msk_serverless_egress_gb"`
	MSKClusterHour        float64 `json:"msk_serverless_cluster_hour"`
	MSKPartitionHour      float64 `json:"msk_serverless_partition_hour"`
	MSKStorageGBMonth     float64 `json:"msk_serverless_storage_gb_month"`
}

// LoadPrices reads a price file, or the embedded one when path is "".
func LoadPrices(path string) (Prices, error) {
	data := defaultPrices
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return Prices{}, err
		}
	}
	var p Prices
	if err := json.Unmarshal(data, &p); err != nil {
		return Prices{}, fmt.Errorf("prices %s: %w", path, err)
	}
	if p.S3PutPer1000 <= 0 || p.DynamoWritePerMillion <= 0 || p.LambdaGBSecond <= 0 || p.APIGWPerMillion <= 0 || p.APIGWUnitBytes <= 0 || p.LambdaMemoryMB <= 0 {
		return Prices{}, fmt.Errorf("prices %s: every price must be positive", path)
	}
	return p, nil
}
