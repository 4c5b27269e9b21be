output "api_url" {
  description = "Base URL of the HTTP API (append /v1/...)."
  value       = aws_apigatewayv2_stage.default.invoke_url
}

output "function_urls" {
  description = "Function URLs (RESPONSE_STREAM, IAM auth): the consume function's, for long SSE streams."
  value       = { for k, u in aws_lambda_function_url.consume : "consume" => u.function_url }
}

output "bucket_name" {
  description = "S3 bucket holding record data."
  value       = aws_s3_bucket.data.id
}

output "table_name" {
  description = "DynamoDB table holding offsets, the index and group state."
  value       = aws_dynamodb_table.meta.name
}

output "function_names" {
  description = "Lambda function names by role."
  value       = { for k, f in aws_lambda_function.fn : k => f.function_name }
}

output "api_id" {
  description = "API Gateway HTTP API id."
  value       = aws_apigatewayv2_api.http.id
}

output "schedule_name" {
  description = "EventBridge Scheduler schedule that runs the compactor."
  value       = aws_scheduler_schedule.compact.name
}

output "kafka_bootstrap" {
  description = "Kafka bootstrap address (the load balancer's), when the Kafka service is enabled."
  value       = local.kafka_on ? "${aws_lb.kafka[0].dns_name}:${local.kafka_port}" : null
}

output "console_url" {
  description = "The web console (sign in with a token, or with AWS credentials for SigV4 when auth = \"iam\")."
  value       = var.console ? "${trimsuffix(aws_apigatewayv2_stage.default.invoke_url, "/")}/ui/" : null
}
