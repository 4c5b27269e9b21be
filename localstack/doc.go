// Package localstack holds the scripts that run the local AWS stack without
// Docker (MinIO and a serialized moto server) and the emulator gate test:
// proof, on every run, that the DynamoDB emulator is atomic under concurrent
// conflicting writes before any concurrency test trusts it.
package localstack
