data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  bucket    = var.bucket_name != "" ? var.bucket_name : "${var.name}-data-${data.aws_caller_identity.current.account_id}"
  functions = toset(["produce", "consume", "admin", "compact"])
  http      = toset(["produce", "consume", "admin"])
  kms       = var.kms_key_arn != ""

  memory  = merge({ produce = 1024, consume = 1024, admin = 512, compact = 2048 }, var.memory_mb)
  timeout = merge({ produce = 30, consume = 30, admin = 60, compact = 120 }, var.timeout_s)

  # Every endpoint of the HTTP API, and the function that serves it. Each
  # function serves only its own routes (STREAMBED route classes), so a
  # route mapped to the wrong function answers 404.
  routes = {
    "GET /v1"                                                        = "admin"
    "GET /v1/openapi.json"                                           = "admin"
    "GET /v1/topics"                                                 = "admin"
    "POST /v1/topics"                                                = "admin"
    "GET /v1/topics/{topic}"                                         = "admin"
    "PATCH /v1/topics/{topic}"                                       = "admin"
    "DELETE /v1/topics/{topic}"                                      = "admin"
    "GET /v1/topics/{topic}/partitions"                              = "consume"
    "GET /v1/topics/{topic}/partitions/{partition}"                  = "consume"
    "GET /v1/topics/{topic}/partitions/{partition}/offsets"          = "consume"
    "POST /v1/topics/{topic}/partitions/{partition}/fence"           = "produce"
    "POST /v1/topics/{topic}/records"                                = "produce"
    "POST /v1/topics/{topic}/partitions/{partition}/records"         = "produce"
    "GET /v1/topics/{topic}/partitions/{partition}/records"          = "consume"
    "POST /v1/fetch"                                                 = "consume"
    "POST /v1/producers"                                             = "produce"
    "GET /v1/groups"                                                 = "admin"
    "GET /v1/groups/{group}"                                         = "admin"
    "DELETE /v1/groups/{group}"                                      = "admin"
    "POST /v1/groups/{group}/heartbeat"                              = "consume"
    "POST /v1/groups/{group}/poll"                                   = "consume"
    "GET /v1/groups/{group}/offsets"                                 = "consume"
    "POST /v1/groups/{group}/offsets"                                = "consume"
    "POST /v1/groups/{group}/offsets/reset"                          = "admin"
    "GET /v1/groups/{group}/lag"                                     = "consume"
    "POST /v1/admin/compact"                                         = "admin"
    "GET /v1/admin/fsck"                                             = "admin"
    "GET /v3/clusters"                                               = "admin"
    "POST /v3/clusters/{cluster}/topics/{topic}/records"             = "produce"
    "POST /v3/clusters/{cluster}/topics/{topic}/records:batch"       = "produce"
    "GET /kafka/v3/clusters"                                         = "admin"
    "POST /kafka/v3/clusters/{cluster}/topics/{topic}/records"       = "produce"
    "POST /kafka/v3/clusters/{cluster}/topics/{topic}/records:batch" = "produce"
  }

  # Only the S3 and DynamoDB actions each function's code paths call.
  s3_actions = {
    produce = ["s3:PutObject", "s3:DeleteObject"] # upload; delete an upload nothing referenced
    consume = ["s3:GetObject"]
    # Compaction streams segments as multipart uploads (PutObject covers
    # their parts; aborting a failed one is its own action).
    admin   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject", "s3:ListBucket"] # compaction and fsck on demand
    compact = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject", "s3:ListBucket"]
  }
  ddb_read  = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"]
  ddb_write = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]
  ddb_actions = {
    produce = concat(local.ddb_read, ["dynamodb:PutItem", "dynamodb:ConditionCheckItem"])
    consume = concat(local.ddb_read, local.ddb_write)
    admin   = concat(local.ddb_read, local.ddb_write)
    compact = concat(local.ddb_read, local.ddb_write)
  }

  # The SSM parameter holding the authorization policy (functions and
  # Kafka tasks read it).
  auth_policy_arn = "arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter/${trimprefix(var.auth_policy_ssm_parameter, "/")}"

  env = merge(
    {
      STREAMBED_S3_BUCKET      = aws_s3_bucket.data.id
      STREAMBED_DYNAMODB_TABLE = aws_dynamodb_table.meta.name
      STREAMBED_LOG_LEVEL      = "info"
    },
    var.local_endpoints.s3 != "" ? { STREAMBED_S3_ENDPOINT = var.local_endpoints.s3, STREAMBED_S3_PATH_STYLE = "true" } : {},
    var.local_endpoints.dynamodb != "" ? { STREAMBED_DYNAMODB_ENDPOINT = var.local_endpoints.dynamodb } : {},
    var.auth_policy_ssm_parameter != "" ? { STREAMBED_AUTH_POLICY_SSM = var.auth_policy_ssm_parameter } : {},
  )
}

# --- Storage -----------------------------------------------------------------

resource "aws_s3_bucket" "data" {
  bucket        = local.bucket
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "data" {
  bucket                  = aws_s3_bucket.data.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "data" {
  bucket = aws_s3_bucket.data.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  bucket = aws_s3_bucket.data.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = local.kms ? "aws:kms" : "AES256"
      kms_master_key_id = local.kms ? var.kms_key_arn : null
    }
    bucket_key_enabled = local.kms
  }
}

# Objects are deleted by the compactor once unreferenced (never by lifecycle
# expiry: that could remove live data). The only rule cleans up multipart
# uploads an interrupted client left behind.
resource "aws_s3_bucket_lifecycle_configuration" "data" {
  bucket = aws_s3_bucket.data.id
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "tls_only" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    resources = [aws_s3_bucket.data.arn, "${aws_s3_bucket.data.arn}/*"]
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "data" {
  bucket     = aws_s3_bucket.data.id
  policy     = data.aws_iam_policy_document.tls_only.json
  depends_on = [aws_s3_bucket_public_access_block.data]
}

resource "aws_dynamodb_table" "meta" {
  name                        = "${var.name}-meta"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  ttl {
    attribute_name = "ttl"
    enabled        = true
  }
  point_in_time_recovery {
    enabled = true
  }
  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms ? var.kms_key_arn : null
  }
  tags = var.tags
}

# --- Functions ---------------------------------------------------------------

resource "aws_cloudwatch_log_group" "fn" {
  for_each          = local.functions
  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms ? var.kms_key_arn : null
  tags              = var.tags
}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "fn" {
  for_each           = local.functions
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = var.tags
}

data "aws_iam_policy_document" "fn" {
  for_each = local.functions

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.fn[each.key].arn}:*"]
  }
  statement {
    sid       = "Metadata"
    actions   = local.ddb_actions[each.key]
    resources = [aws_dynamodb_table.meta.arn]
  }
  dynamic "statement" {
    for_each = var.auth_policy_ssm_parameter != "" && each.key != "compact" ? [1] : []
    content {
      sid       = "AuthPolicy"
      actions   = ["ssm:GetParameter"]
      resources = [local.auth_policy_arn]
    }
  }
  dynamic "statement" {
    for_each = [for a in local.s3_actions[each.key] : a if a != "s3:ListBucket"]
    content {
      sid       = "Objects${replace(title(replace(statement.value, "s3:", "")), " ", "")}"
      actions   = [statement.value]
      resources = ["${aws_s3_bucket.data.arn}/l0/*", "${aws_s3_bucket.data.arn}/seg/*"]
    }
  }
  dynamic "statement" {
    for_each = contains(local.s3_actions[each.key], "s3:ListBucket") ? [1] : []
    content {
      sid       = "ListObjects"
      actions   = ["s3:ListBucket"]
      resources = [aws_s3_bucket.data.arn]
      condition {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = ["l0/*", "seg/*"]
      }
    }
  }
  dynamic "statement" {
    for_each = local.kms ? [1] : []
    content {
      sid       = "Encryption"
      actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
      resources = [var.kms_key_arn]
    }
  }
}

resource "aws_iam_role_policy" "fn" {
  for_each = local.functions
  name     = "${var.name}-${each.key}"
  role     = aws_iam_role.fn[each.key].id
  policy   = data.aws_iam_policy_document.fn[each.key].json
}

resource "aws_lambda_function" "fn" {
  for_each         = local.functions
  function_name    = "${var.name}-${each.key}"
  role             = aws_iam_role.fn[each.key].arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = ["arm64"]
  filename         = "${var.lambda_zip_dir}/${each.key}.zip"
  source_code_hash = filebase64sha256("${var.lambda_zip_dir}/${each.key}.zip")
  memory_size      = local.memory[each.key]
  timeout          = local.timeout[each.key]
  # One compactor at a time: runs never overlap (leases would keep
  # overlapping runs safe, but they would only contend).
  reserved_concurrent_executions = each.key == "compact" ? 1 : lookup(var.reserved_concurrency, each.key, -1)

  environment {
    # The compactor's key map gets a quarter of its memory: the Go heap may
    # grow to twice what is live, and the rest is batches and buffers.
    variables = merge(local.env, each.key == "compact" ? {
      STREAMBED_COMPACT_BUDGET    = "${local.timeout.compact - 10}s"
      STREAMBED_COMPACT_MEMORY_MB = tostring(floor(local.memory.compact / 4))
    } : {})
  }
  tracing_config {
    mode = "Active"
  }
  tags       = var.tags
  depends_on = [aws_cloudwatch_log_group.fn, aws_iam_role_policy.fn]
}

# Long Server-Sent Event streams: the consume function answers Function URL
# events as a response stream. IAM auth only; a public URL would bypass the
# API's authorizer.
resource "aws_lambda_function_url" "consume" {
  count              = var.enable_function_url ? 1 : 0
  function_name      = aws_lambda_function.fn["consume"].function_name
  authorization_type = "AWS_IAM"
  invoke_mode        = "RESPONSE_STREAM"
}

# --- HTTP API ----------------------------------------------------------------

resource "aws_cloudwatch_log_group" "api" {
  name              = "/aws/apigateway/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms ? var.kms_key_arn : null
  tags              = var.tags
}

resource "aws_apigatewayv2_api" "http" {
  name          = var.name
  protocol_type = "HTTP"
  description   = "Streambed HTTP API v1 (and Confluent REST v3 produce)"
  tags          = var.tags
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = "$default"
  auto_deploy = true
  default_route_settings {
    throttling_rate_limit  = var.throttle_rate_limit
    throttling_burst_limit = var.throttle_burst_limit
  }
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api.arn
    format = jsonencode({
      requestId     = "$context.requestId", ip = "$context.identity.sourceIp", time = "$context.requestTime",
      method        = "$context.httpMethod", route = "$context.routeKey", status = "$context.status",
      bytes         = "$context.responseLength", latencyMs = "$context.responseLatency",
      integrationMs = "$context.integrationLatency", error = "$context.integrationErrorMessage",
      principal     = "$context.identity.userArn"
    })
  }
  tags = var.tags
}

resource "aws_apigatewayv2_integration" "fn" {
  for_each               = local.http
  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.fn[each.key].invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 30000
}

resource "aws_apigatewayv2_authorizer" "jwt" {
  count            = var.auth == "jwt" ? 1 : 0
  api_id           = aws_apigatewayv2_api.http.id
  name             = "${var.name}-jwt"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]
  jwt_configuration {
    issuer   = var.jwt_issuer
    audience = var.jwt_audience
  }
  lifecycle {
    precondition {
      condition     = var.jwt_issuer != "" && length(var.jwt_audience) > 0
      error_message = "auth = \"jwt\" needs jwt_issuer and jwt_audience."
    }
  }
}

resource "aws_apigatewayv2_route" "r" {
  for_each           = local.routes
  api_id             = aws_apigatewayv2_api.http.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.fn[each.value].id}"
  authorization_type = var.auth == "iam" ? "AWS_IAM" : (var.auth == "jwt" ? "JWT" : "NONE")
  authorizer_id      = var.auth == "jwt" ? aws_apigatewayv2_authorizer.jwt[0].id : null
}

# The web console, served by the admin function. Its assets carry no data,
# so their routes need no authorization; the API calls the console makes go
# through the routes above (a token, or SigV4 with credentials the user
# types into the console).
resource "aws_apigatewayv2_route" "console" {
  for_each           = var.console ? toset(["GET /", "GET /ui", "GET /ui/{proxy+}"]) : toset([])
  api_id             = aws_apigatewayv2_api.http.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.fn["admin"].id}"
  authorization_type = "NONE"
}

resource "aws_lambda_permission" "api" {
  for_each      = local.http
  statement_id  = "AllowAPIGateway"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn[each.key].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/*/*"
}

# --- Compaction schedule -----------------------------------------------------

data "aws_iam_policy_document" "assume_scheduler" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.assume_scheduler.json
  tags               = var.tags
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.fn["compact"].arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "${var.name}-scheduler"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

resource "aws_scheduler_schedule" "compact" {
  name                = "${var.name}-compact"
  schedule_expression = "rate(${var.compact_rate})"
  flexible_time_window {
    mode = "OFF"
  }
  target {
    arn      = aws_lambda_function.fn["compact"].arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode({ source = "streambed.scheduler", action = "compact" })
    retry_policy {
      maximum_retry_attempts = 0 # the next run resumes; retries would overlap it
    }
  }
}

# --- Alarms ------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "errors" {
  for_each            = local.functions
  alarm_name          = "${var.name}-${each.key}-errors"
  alarm_description   = "The ${each.key} function failed invocations."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.fn[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "throttles" {
  for_each            = local.functions
  alarm_name          = "${var.name}-${each.key}-throttles"
  alarm_description   = "The ${each.key} function was throttled (concurrency limits)."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = aws_lambda_function.fn[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "table_throttles" {
  for_each            = toset(["ReadThrottleEvents", "WriteThrottleEvents"])
  alarm_name          = "${var.name}-meta-${each.key}"
  alarm_description   = "DynamoDB throttled the metadata table (${each.key})."
  namespace           = "AWS/DynamoDB"
  metric_name         = each.key
  dimensions          = { TableName = aws_dynamodb_table.meta.name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}

# Consumer lag, published by the compact function in the "Streambed"
# namespace (embedded metric format) each run.
resource "aws_cloudwatch_metric_alarm" "lag" {
  for_each            = var.lag_alarms
  alarm_name          = "${var.name}-lag-${each.key}"
  alarm_description   = "Consumer group ${each.key} is more than ${each.value} records behind."
  namespace           = "Streambed"
  metric_name         = "ConsumerLag"
  dimensions          = { Group = each.key }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  threshold           = each.value
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}
