# Streambed on a local AWS stack: every provider endpoint points at one
# local server, moto's (`make localstack-up`; port 5100) or LocalStack's
# (`docker compose -f localstack/docker-compose.yml up`; port 4566).
#
#   terraform init && terraform apply -var endpoint=http://127.0.0.1:5100
#
# moto creates the resources but does not run functions; LocalStack runs
# them (pass data_endpoint so they reach S3/DynamoDB from inside it).
terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
  }
}

variable "endpoint" {
  description = "The local stack's AWS endpoint."
  type        = string
  default     = "http://127.0.0.1:5100"
}

variable "data_endpoint" {
  description = "S3/DynamoDB endpoint as seen by the functions (empty: AWS defaults)."
  type        = string
  default     = ""
}

variable "name" {
  type    = string
  default = "streambed"
}

variable "auth" {
  description = "none (plain curl), iam or jwt."
  type        = string
  default     = "none"
}

variable "lambda_zip_dir" {
  type    = string
  default = "../../../../dist"
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true

  endpoints {
    apigatewayv2           = var.endpoint
    cloudwatch             = var.endpoint
    dynamodb               = var.endpoint
    ec2                    = var.endpoint
    ecs                    = var.endpoint
    elbv2                  = var.endpoint
    applicationautoscaling = var.endpoint
    ssm                    = var.endpoint
    iam                    = var.endpoint
    kms                    = var.endpoint
    lambda                 = var.endpoint
    logs                   = var.endpoint
    s3                     = var.endpoint
    scheduler              = var.endpoint
    sts                    = var.endpoint
  }
}

variable "kafka" {
  description = "Also create the Kafka service (ECS, load balancer, autoscaling) with a VPC of its own."
  type        = bool
  default     = true
}

# A network for the Kafka service, and its authorization policy: an admin
# token (the hash of "sbt_local-admin-token-0000000000", for local use only).
resource "aws_vpc" "kafka" {
  count      = var.kafka ? 1 : 0
  cidr_block = "10.42.0.0/16"
}

resource "aws_subnet" "kafka" {
  count             = var.kafka ? 2 : 0
  vpc_id            = aws_vpc.kafka[0].id
  cidr_block        = cidrsubnet("10.42.0.0/16", 8, count.index)
  availability_zone = ["us-east-1a", "us-east-1b"][count.index]
}

resource "aws_ssm_parameter" "policy" {
  count = var.kafka ? 1 : 0
  name  = "/${var.name}/auth-policy"
  type  = "SecureString"
  value = jsonencode({
    principals = { admin = { grants = [{ ops = ["admin", "produce", "consume"], topics = ["*"], groups = ["*"] }] } }
    tokens     = [{ principal = "admin", sha256 = sha256("sbt_local-admin-token-0000000000") }]
  })
}

module "streambed" {
  # This example runs from a checkout. In a configuration of your own:
  #   source = "github.com/streambed/streambed//infra/terraform?ref=<tag or commit>"
  source              = "../.."
  name                = var.name
  lambda_zip_dir      = var.lambda_zip_dir
  auth                = var.auth
  jwt_issuer          = var.auth == "jwt" ? "https://issuer.example.com" : ""
  jwt_audience        = var.auth == "jwt" ? ["streambed"] : []
  deletion_protection = false
  force_destroy       = true
  local_endpoints     = { s3 = var.data_endpoint, dynamodb = var.data_endpoint }

  auth_policy_ssm_parameter = var.kafka ? aws_ssm_parameter.policy[0].name : ""
  kafka = {
    enabled      = var.kafka
    image        = "streambed:local"
    vpc_id       = var.kafka ? aws_vpc.kafka[0].id : ""
    subnet_ids   = aws_subnet.kafka[*].id
    client_cidrs = ["10.42.0.0/16"]
    min_tasks    = 1
    # moto's Application Auto Scaling lacks ListTagsForResource, which the
    # provider reads after creating a target: not applied locally.
    autoscaling = false
  }
}

output "kafka_bootstrap" {
  value = module.streambed.kafka_bootstrap
}

output "api_url" {
  value = module.streambed.api_url
}

output "bucket_name" {
  value = module.streambed.bucket_name
}

output "table_name" {
  value = module.streambed.table_name
}

output "function_names" {
  value = module.streambed.function_names
}

output "api_id" {
  value = module.streambed.api_id
}

output "schedule_name" {
  value = module.streambed.schedule_name
}
