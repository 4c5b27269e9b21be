# Streambed on AWS. Build the functions first (`make lambda`), then:
#
#   terraform init && terraform apply
#
# See docs/deploy.md for a first produce/consume with SigV4 or a JWT.
terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
  }
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "name" {
  type    = string
  default = "streambed"
}

variable "auth" {
  description = "iam (SigV4) or jwt."
  type        = string
  default     = "iam"
}

variable "jwt_issuer" {
  type    = string
  default = ""
}

variable "jwt_audience" {
  type    = list(string)
  default = []
}

variable "alarm_email_topic" {
  description = "An SNS topic ARN for alarms (optional)."
  type        = string
  default     = ""
}

variable "admin_token_sha256" {
  description = "SHA-256 (hex) of a Streambed token for the operator (`streambed token` makes one and prints its hash); empty: no token principal."
  type        = string
  default     = ""
}

variable "kafka_image" {
  description = "Container image URI of `make image` pushed to ECR; set it (with the network below) to run the Kafka service."
  type        = string
  default     = ""
}

variable "vpc_id" {
  type    = string
  default = ""
}

variable "subnet_ids" {
  description = "Private subnets for the Kafka tasks and their load balancer."
  type        = list(string)
  default     = []
}

variable "kafka_client_cidrs" {
  description = "Networks Kafka clients connect from."
  type        = list(string)
  default     = []
}

variable "kafka_tls_secret_arn" {
  description = "Secrets Manager secret with JSON keys cert and key (PEM) for TLS in the Kafka tasks."
  type        = string
  default     = ""
}

provider "aws" {
  region = var.region
}

data "aws_caller_identity" "current" {}

# The authorization policy, in SSM where functions and tasks read it. The
# default is least privilege: only the identity that deployed (and the
# operator's token, when given) may do anything; add principals and grants
# with `aws ssm put-parameter --overwrite`.
resource "aws_ssm_parameter" "policy" {
  name = "/${var.name}/auth-policy"
  type = "SecureString"
  value = jsonencode({
    principals = merge(
      { (data.aws_caller_identity.current.arn) = { grants = [{ ops = ["admin", "produce", "consume"], topics = ["*"], groups = ["*"] }] } },
      var.admin_token_sha256 != "" ? { ops = { grants = [{ ops = ["admin", "produce", "consume"], topics = ["*"], groups = ["*"] }] } } : {},
    )
    tokens = var.admin_token_sha256 != "" ? [{ principal = "ops", sha256 = var.admin_token_sha256 }] : []
  })
  lifecycle {
    ignore_changes = [value] # edited by operators after the first apply
  }
}

module "streambed" {
  # This example runs from a checkout. In a configuration of your own:
  #   source = "github.com/streambed/streambed//infra/terraform?ref=<tag or commit>"
  source         = "../.."
  name           = var.name
  lambda_zip_dir = "${path.root}/../../../../dist"
  auth           = var.auth
  jwt_issuer     = var.jwt_issuer
  jwt_audience   = var.jwt_audience
  alarm_actions  = var.alarm_email_topic != "" ? [var.alarm_email_topic] : []
  tags           = { project = "streambed" }

  auth_policy_ssm_parameter = aws_ssm_parameter.policy.name
  kafka = {
    enabled        = var.kafka_image != ""
    image          = var.kafka_image
    vpc_id         = var.vpc_id
    subnet_ids     = var.subnet_ids
    client_cidrs   = var.kafka_client_cidrs
    tls_secret_arn = var.kafka_tls_secret_arn
  }
}

output "region" {
  value = var.region
}

output "kafka_bootstrap" {
  value = module.streambed.kafka_bootstrap
}

output "api_url" {
  value = module.streambed.api_url
}

output "console_url" {
  value = module.streambed.console_url
}

output "function_urls" {
  value = module.streambed.function_urls
}

output "bucket_name" {
  value = module.streambed.bucket_name
}

output "table_name" {
  value = module.streambed.table_name
}
