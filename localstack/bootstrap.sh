#!/usr/bin/env bash
# Create the default bucket and table on the local stack (idempotent), so
# `streambed serve --s3-bucket streambed --dynamodb-table streambed` with the
# endpoints from bin/localstack.env works against it (see the README). Tests create their own, uniquely named.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
set -a; . "$root/bin/localstack.env"; set +a
PYTHON=${PYTHON:-$root/bin/localstack/venv/bin/python}
BUCKET=${STREAMBED_BUCKET:-streambed}
"$PYTHON" - "$STREAMBED_TEST_MINIO_ENDPOINT" "$STREAMBED_TEST_MINIO_ACCESS_KEY" "$STREAMBED_TEST_MINIO_SECRET_KEY" "$BUCKET" <<'PY'
import sys
import boto3
from botocore.exceptions import ClientError
endpoint, key, secret, bucket = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
                  aws_secret_access_key=secret, region_name="us-east-1")
try:
    s3.create_bucket(Bucket=bucket)
except ClientError as e:
    if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
        raise
PY
