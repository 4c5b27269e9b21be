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

provider "aws" {
  region = var.region
}

module "streambed" {
  source         = "../.."
  name           = var.name
  lambda_zip_dir = "${path.root}/../../../../dist"
  auth           = var.auth
  jwt_issuer     = var.jwt_issuer
  jwt_audience   = var.jwt_audience
  alarm_actions  = var.alarm_email_topic != "" ? [var.alarm_email_topic] : []
  tags           = { project = "streambed" }
}

output "api_url" {
  value = module.streambed.api_url
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
