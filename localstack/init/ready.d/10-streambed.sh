#!/bin/bash
# LocalStack init hook: the default bucket and metadata table, with the same
# schema `streambed setup` creates (docs/metadata.md).
set -euo pipefail
awslocal s3api create-bucket --bucket streambed >/dev/null 2>&1 || true
awslocal dynamodb create-table --table-name streambed \
  --billing-mode PAY_PER_REQUEST \
  --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=S \
  --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE >/dev/null 2>&1 || true
awslocal dynamodb update-time-to-live --table-name streambed \
  --time-to-live-specification Enabled=true,AttributeName=ttl >/dev/null 2>&1 || true
echo "streambed: bucket and table ready"
