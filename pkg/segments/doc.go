// Package segments defines how Streambed stores records and where it stores them.
//
// Two halves live here because every reader and writer needs both:
//
//   - The format: records are kept as Kafka RecordBatch v2 batches (magic 2,
//     CRC-32C, optional gzip/snappy/lz4/zstd), so a future Kafka-protocol front
//     end can serve stored bytes as they are. Batches of one or more partitions
//     are grouped into a segment object with a versioned header and a footer
//     that maps every partition to its byte range; any object can be decoded on
//     its own and a reader can range-read just one partition's slice. The batch
//     base offset is stored as 0 and assigned on read from the index (the CRC
//     does not cover it). docs/format.md is the byte-level reference.
//
//   - The object-store port: Bucket, a deliberately small interface
//     (create-only put, ranged get, stat, idempotent delete, list) with
//     adapters in the subpackages fsbucket (the embedded default), s3bucket
//     (AWS S3, MinIO, moto, LocalStack) and membucket (unit tests). Every
//     adapter passes the acceptance suite in segmentstest.
//
// Decoders never panic on input: corrupt or truncated bytes come back as a
// *FormatError naming what is wrong and where.
package segments
