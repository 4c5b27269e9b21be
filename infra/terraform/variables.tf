variable "name" {
  description = "Prefix of every resource name (functions, table, API, roles)."
  type        = string
  default     = "streambed"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "bucket_name" {
  description = "S3 bucket for record data. Empty: \"<name>-data-<account id>\"."
  type        = string
  default     = ""
  validation {
    condition     = var.bucket_name == "" || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)."
  }
}

variable "lambda_zip_dir" {
  description = "Directory holding produce.zip, consume.zip, admin.zip and compact.zip (`make lambda` writes them to dist/)."
  type        = string
}

variable "memory_mb" {
  description = "Memory per function (MB). More memory is more CPU: compression and JSON encoding are CPU-bound."
  type        = map(number)
  default     = { produce = 1024, consume = 1024, admin = 512, compact = 2048 }
  validation {
    condition     = alltrue([for k, v in var.memory_mb : contains(["produce", "consume", "admin", "compact"], k) && v >= 128 && v <= 10240])
    error_message = "memory_mb keys must be produce, consume, admin or compact, values 128-10240."
  }
}

variable "timeout_s" {
  description = "Timeout per function (seconds). API Gateway gives up after 30 s; a streaming Function URL allows up to 900 s; the compactor's budget is its timeout minus 10 s."
  type        = map(number)
  default     = { produce = 30, consume = 30, admin = 60, compact = 120 }
  validation {
    condition     = alltrue([for k, v in var.timeout_s : contains(["produce", "consume", "admin", "compact"], k) && v >= 3 && v <= 900])
    error_message = "timeout_s keys must be produce, consume, admin or compact, values 3-900."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrency per function (-1: unreserved). Reserving caps cost and protects the table from a runaway producer. The compact function always has 1: runs never overlap."
  type        = map(number)
  default     = {}
  validation {
    condition     = alltrue([for k, v in var.reserved_concurrency : contains(["produce", "consume", "admin"], k) && v >= -1])
    error_message = "reserved_concurrency keys must be produce, consume or admin, values -1 or more (compact is always 1)."
  }
}

variable "auth" {
  description = "How the API authenticates: \"iam\" (SigV4), \"jwt\" (a JWT authorizer), or \"none\" (local tests only)."
  type        = string
  default     = "iam"
  validation {
    condition     = contains(["iam", "jwt", "none"], var.auth)
    error_message = "auth must be iam, jwt or none."
  }
}

variable "jwt_issuer" {
  description = "JWT issuer URL (auth = \"jwt\"), e.g. https://cognito-idp.<region>.amazonaws.com/<pool id>."
  type        = string
  default     = ""
}

variable "jwt_audience" {
  description = "Accepted JWT audiences (auth = \"jwt\")."
  type        = list(string)
  default     = []
}

variable "auth_policy_ssm_parameter" {
  description = "Name of an SSM parameter (String or SecureString) holding the Streambed authorization policy (docs/auth.md). The functions apply it to the principal API Gateway verified; empty: API Gateway's authorization alone."
  type        = string
  default     = ""
  validation {
    condition     = var.auth_policy_ssm_parameter == "" || can(regex("^/?[A-Za-z0-9_.\\-/]+$", var.auth_policy_ssm_parameter))
    error_message = "auth_policy_ssm_parameter must be an SSM parameter name."
  }
}

variable "throttle_rate_limit" {
  description = "API Gateway steady-state requests per second."
  type        = number
  default     = 1000
  validation {
    condition     = var.throttle_rate_limit > 0
    error_message = "throttle_rate_limit must be positive."
  }
}

variable "throttle_burst_limit" {
  description = "API Gateway burst size."
  type        = number
  default     = 2000
  validation {
    condition     = var.throttle_burst_limit > 0
    error_message = "throttle_burst_limit must be positive."
  }
}

variable "enable_function_url" {
  description = "Give the consume function a Function URL in RESPONSE_STREAM mode (IAM auth) for long Server-Sent Event streams."
  type        = bool
  default     = true
}

variable "compact_rate" {
  description = "How often the compactor runs, as an EventBridge Scheduler rate, e.g. \"5 minutes\"."
  type        = string
  default     = "1 minute"
  validation {
    condition     = can(regex("^[1-9][0-9]* (minute|minutes|hour|hours|day|days)$", var.compact_rate))
    error_message = "compact_rate must look like \"1 minute\" or \"5 minutes\"."
  }
}

variable "log_retention_days" {
  description = "Retention of the functions' and the API's log groups."
  type        = number
  default     = 30
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ...)."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for S3, DynamoDB and logs. Empty: AWS-managed encryption."
  type        = string
  default     = ""
  validation {
    condition     = var.kms_key_arn == "" || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "deletion_protection" {
  description = "Protect the DynamoDB table (offsets and the segment index) from deletion."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Let terraform destroy delete a non-empty bucket (tests and throwaway stacks only)."
  type        = bool
  default     = false
}

variable "alarm_actions" {
  description = "SNS topic ARNs notified by the alarms."
  type        = list(string)
  default     = []
}

variable "lag_alarms" {
  description = "Consumer groups to alarm on, with the lag (records) that triggers it."
  type        = map(number)
  default     = {}
}

variable "local_endpoints" {
  description = "S3 and DynamoDB endpoints the functions use instead of AWS (local stacks only)."
  type = object({
    s3       = optional(string, "")
    dynamodb = optional(string, "")
  })
  default = {}
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "kafka" {
  description = <<-EOT
    The Kafka listener as an ECS service on Fargate (arm64) behind a Network Load Balancer; off unless enabled.
    image: the container image URI (`make image`, pushed to ECR). vpc_id, subnet_ids: where tasks and the load
    balancer run (private subnets with routes to S3, DynamoDB, SSM, Secrets Manager, ECR and CloudWatch Logs).
    client_cidrs: who may connect. addressing: "load_balancer" (every task advertises the load balancer's address;
    clients see one broker) or "per_task" (each task advertises its own address; clients must reach task IPs).
    autoscaling: target tracking on CPU (cpu_target %) between min_tasks and max_tasks.
    tls_secret_arn: a Secrets Manager secret with JSON keys "cert" and "key" (PEM) for TLS in the task; empty:
    plaintext (only for trusted networks). The auth policy comes from auth_policy_ssm_parameter.
  EOT
  type = object({
    enabled        = optional(bool, false)
    image          = optional(string, "")
    vpc_id         = optional(string, "")
    subnet_ids     = optional(list(string), [])
    client_cidrs   = optional(list(string), [])
    addressing     = optional(string, "load_balancer")
    tls_secret_arn = optional(string, "")
    internal       = optional(bool, true)
    cpu            = optional(number, 1024)
    memory_mb      = optional(number, 2048)
    min_tasks      = optional(number, 2)
    max_tasks      = optional(number, 10)
    cpu_target     = optional(number, 60)
    autoscaling    = optional(bool, true)
  })
  default = {}
  validation {
    condition     = !var.kafka.enabled || (var.kafka.image != "" && var.kafka.vpc_id != "" && length(var.kafka.subnet_ids) > 0 && length(var.kafka.client_cidrs) > 0)
    error_message = "kafka.enabled needs kafka.image, kafka.vpc_id, kafka.subnet_ids and kafka.client_cidrs."
  }
  validation {
    condition     = contains(["load_balancer", "per_task"], var.kafka.addressing)
    error_message = "kafka.addressing must be load_balancer or per_task."
  }
  validation {
    condition     = var.kafka.min_tasks >= 1 && var.kafka.max_tasks >= var.kafka.min_tasks
    error_message = "kafka.min_tasks must be at least 1 and kafka.max_tasks at least kafka.min_tasks."
  }
  validation {
    condition     = alltrue([for c in var.kafka.client_cidrs : c != "0.0.0.0/0" && c != "::/0"])
    error_message = "kafka.client_cidrs must name the clients' networks, not the whole internet."
  }
}

variable "console" {
  description = "Serve the web console at <api_url>/ui/ from the admin function (its assets are public; the API calls it makes are authorized like any other)."
  type        = bool
  default     = true
}
