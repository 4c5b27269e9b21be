# --- The Kafka listener: an ECS service on Fargate behind a Network Load Balancer
#
# Lambda cannot hold Kafka clients' long-lived connections, so the Kafka
# listener runs as stateless tasks (`streambed serve` in Kafka-only mode)
# over the same bucket and table as the functions. Tasks register
# themselves in the table (the node registry) and any task serves any
# partition and any group. Off unless var.kafka.enabled.

locals {
  kafka_on   = var.kafka.enabled
  kafka_task = jsondecode(file("${path.module}/kafka-task.json"))
  kafka_port = local.kafka_task.port
  kafka_tls  = var.kafka.tls_secret_arn != ""
  # An ECR image's repository, for a pull permission scoped to it.
  kafka_ecr = regex("^(?:(\\d{12})\\.dkr\\.ecr\\.([a-z0-9-]+)\\.amazonaws\\.com/([^:@]+))?", var.kafka.image)
}

data "aws_vpc" "kafka" {
  count = local.kafka_on ? 1 : 0
  id    = var.kafka.vpc_id
}

resource "aws_cloudwatch_log_group" "kafka" {
  count             = local.kafka_on ? 1 : 0
  name              = "/ecs/${var.name}-kafka"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms ? var.kms_key_arn : null
  tags              = var.tags
}

resource "aws_ecs_cluster" "kafka" {
  count = local.kafka_on ? 1 : 0
  name  = "${var.name}-kafka"
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
  tags = var.tags
}

data "aws_iam_policy_document" "assume_ecs_tasks" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# The execution role starts the task: pulls the image, writes logs, reads
# the TLS secret.
resource "aws_iam_role" "kafka_execution" {
  count              = local.kafka_on ? 1 : 0
  name               = "${var.name}-kafka-execution"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks.json
  tags               = var.tags
}

data "aws_iam_policy_document" "kafka_execution" {
  count = local.kafka_on ? 1 : 0
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.kafka[0].arn}:*"]
  }
  dynamic "statement" {
    for_each = local.kafka_ecr[0] != null ? [1] : []
    content {
      sid       = "PullImage"
      actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
      resources = ["arn:${data.aws_partition.current.partition}:ecr:${local.kafka_ecr[1]}:${local.kafka_ecr[0]}:repository/${local.kafka_ecr[2]}"]
    }
  }
  dynamic "statement" {
    for_each = local.kafka_ecr[0] != null ? [1] : []
    content {
      # ECR's registry token has no resource to scope it to.
      sid       = "RegistryToken"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }
  dynamic "statement" {
    for_each = local.kafka_tls ? [1] : []
    content {
      sid       = "TLSSecret"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [var.kafka.tls_secret_arn]
    }
  }
  dynamic "statement" {
    for_each = local.kms ? [1] : []
    content {
      sid       = "Encryption"
      actions   = ["kms:Decrypt"]
      resources = [var.kms_key_arn]
    }
  }
}

resource "aws_iam_role_policy" "kafka_execution" {
  count  = local.kafka_on ? 1 : 0
  name   = "start"
  role   = aws_iam_role.kafka_execution[0].id
  policy = data.aws_iam_policy_document.kafka_execution[0].json
}

# The task role is what streambed itself may do: the functions' produce,
# consume and group rights together (a node serves all of them), never
# compaction's listing.
resource "aws_iam_role" "kafka_task" {
  count              = local.kafka_on ? 1 : 0
  name               = "${var.name}-kafka-task"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks.json
  tags               = var.tags
}

data "aws_iam_policy_document" "kafka_task" {
  count = local.kafka_on ? 1 : 0
  statement {
    sid       = "Metadata"
    actions   = concat(local.ddb_read, local.ddb_write)
    resources = [aws_dynamodb_table.meta.arn]
  }
  statement {
    sid       = "Objects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.data.arn}/l0/*", "${aws_s3_bucket.data.arn}/seg/*"]
  }
  dynamic "statement" {
    for_each = var.auth_policy_ssm_parameter != "" ? [1] : []
    content {
      sid       = "AuthPolicy"
      actions   = ["ssm:GetParameter"]
      resources = [local.auth_policy_arn]
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

resource "aws_iam_role_policy" "kafka_task" {
  count  = local.kafka_on ? 1 : 0
  name   = "streambed"
  role   = aws_iam_role.kafka_task[0].id
  policy = data.aws_iam_policy_document.kafka_task[0].json
}

resource "aws_security_group" "kafka" {
  count       = local.kafka_on ? 1 : 0
  name        = "${var.name}-kafka"
  description = "Streambed Kafka tasks: clients and load balancer health checks in, AWS APIs out"
  vpc_id      = var.kafka.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "kafka_clients" {
  for_each          = local.kafka_on ? toset(var.kafka.client_cidrs) : toset([])
  security_group_id = aws_security_group.kafka[0].id
  description       = "Kafka clients"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = local.kafka_port
  to_port           = local.kafka_port
}

# Health checks come from the load balancer's addresses in the VPC: a group
# of their own, so a client range that covers the VPC is no duplicate rule.
resource "aws_security_group" "kafka_health" {
  count       = local.kafka_on ? 1 : 0
  name        = "${var.name}-kafka-health"
  description = "Streambed Kafka tasks: load balancer health checks from the VPC"
  vpc_id      = var.kafka.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "kafka_health" {
  count             = local.kafka_on ? 1 : 0
  security_group_id = aws_security_group.kafka_health[0].id
  description       = "Load balancer health checks (from the VPC)"
  cidr_ipv4         = data.aws_vpc.kafka[0].cidr_block
  ip_protocol       = "tcp"
  from_port         = local.kafka_port
  to_port           = local.kafka_port
}

# trivy:ignore:AVD-AWS-0104 Tasks call S3, DynamoDB, SSM and CloudWatch over HTTPS; without VPC endpoints those are public addresses.
resource "aws_vpc_security_group_egress_rule" "kafka_https" {
  count             = local.kafka_on ? 1 : 0
  security_group_id = aws_security_group.kafka[0].id
  description       = "AWS APIs over HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_lb" "kafka" {
  count                            = local.kafka_on ? 1 : 0
  name                             = "${var.name}-kafka"
  load_balancer_type               = "network"
  internal                         = var.kafka.internal
  subnets                          = var.kafka.subnet_ids
  enable_deletion_protection       = var.deletion_protection
  enable_cross_zone_load_balancing = true
  tags                             = var.tags
}

resource "aws_lb_target_group" "kafka" {
  count                = local.kafka_on ? 1 : 0
  name                 = "${var.name}-kafka"
  port                 = local.kafka_port
  protocol             = "TCP"
  target_type          = "ip"
  vpc_id               = var.kafka.vpc_id
  deregistration_delay = 30
  health_check {
    protocol            = "TCP"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
  tags = var.tags
}

resource "aws_lb_listener" "kafka" {
  count             = local.kafka_on ? 1 : 0
  load_balancer_arn = aws_lb.kafka[0].arn
  port              = local.kafka_port
  protocol          = "TCP"
  # Kafka clients close idle connections after 540 s
  # (connections.max.idle.ms); the balancer must not do it first.
  tcp_idle_timeout_seconds = 600
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.kafka[0].arn
  }
  tags = var.tags
}

resource "aws_ecs_task_definition" "kafka" {
  count                    = local.kafka_on ? 1 : 0
  family                   = "${var.name}-kafka"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.kafka.cpu
  memory                   = var.kafka.memory_mb
  execution_role_arn       = aws_iam_role.kafka_execution[0].arn
  task_role_arn            = aws_iam_role.kafka_task[0].arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "ARM64"
  }
  container_definitions = jsonencode([{
    name                   = "streambed"
    image                  = var.kafka.image
    essential              = true
    command                = local.kafka_task.command
    readonlyRootFilesystem = true
    portMappings           = [{ containerPort = local.kafka_port, protocol = "tcp" }]
    environment = [for k, v in merge(local.env, {
      STREAMBED_KAFKA_ADVERTISED_ADDR = var.kafka.addressing == "load_balancer" ? "${aws_lb.kafka[0].dns_name}:${local.kafka_port}" : "auto:${local.kafka_port}"
      # Go's soft memory limit, below the task's, so memory a burst used
      # is given back before the task is killed.
      GOMEMLIMIT = "${floor(var.kafka.memory_mb * 0.8)}MiB"
    }) : { name = k, value = v }]
    secrets = local.kafka_tls ? [
      { name = "STREAMBED_KAFKA_TLS_CERT_PEM", valueFrom = "${var.kafka.tls_secret_arn}:cert::" },
      { name = "STREAMBED_KAFKA_TLS_KEY_PEM", valueFrom = "${var.kafka.tls_secret_arn}:key::" },
    ] : []
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.kafka[0].name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = "kafka"
      }
    }
  }])
  lifecycle {
    precondition {
      condition     = var.auth_policy_ssm_parameter != ""
      error_message = "The Kafka service listens beyond loopback, so it needs an authorization policy: set auth_policy_ssm_parameter."
    }
  }
  tags = var.tags
}

resource "aws_ecs_service" "kafka" {
  count                             = local.kafka_on ? 1 : 0
  name                              = "${var.name}-kafka"
  cluster                           = aws_ecs_cluster.kafka[0].id
  task_definition                   = aws_ecs_task_definition.kafka[0].arn
  launch_type                       = "FARGATE"
  desired_count                     = var.kafka.min_tasks
  health_check_grace_period_seconds = 30
  network_configuration {
    subnets          = var.kafka.subnet_ids
    security_groups  = [aws_security_group.kafka[0].id, aws_security_group.kafka_health[0].id]
    assign_public_ip = false
  }
  load_balancer {
    target_group_arn = aws_lb_target_group.kafka[0].arn
    container_name   = "streambed"
    container_port   = local.kafka_port
  }
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  lifecycle {
    ignore_changes = [desired_count] # autoscaling owns it
  }
  depends_on = [aws_lb_listener.kafka]
  tags       = var.tags
}

resource "aws_appautoscaling_target" "kafka" {
  count              = local.kafka_on && var.kafka.autoscaling ? 1 : 0
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.kafka[0].name}/${aws_ecs_service.kafka[0].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.kafka.min_tasks
  max_capacity       = var.kafka.max_tasks
}

resource "aws_appautoscaling_policy" "kafka_cpu" {
  count              = local.kafka_on && var.kafka.autoscaling ? 1 : 0
  name               = "${var.name}-kafka-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.kafka[0].service_namespace
  resource_id        = aws_appautoscaling_target.kafka[0].resource_id
  scalable_dimension = aws_appautoscaling_target.kafka[0].scalable_dimension
  target_tracking_scaling_policy_configuration {
    target_value = var.kafka.cpu_target
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
  }
}

resource "aws_cloudwatch_metric_alarm" "kafka_unhealthy" {
  count               = local.kafka_on ? 1 : 0
  alarm_name          = "${var.name}-kafka-unhealthy-tasks"
  alarm_description   = "A Kafka task fails the load balancer's health check."
  namespace           = "AWS/NetworkELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = { LoadBalancer = aws_lb.kafka[0].arn_suffix, TargetGroup = aws_lb_target_group.kafka[0].arn_suffix }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "kafka_tasks" {
  count               = local.kafka_on ? 1 : 0
  alarm_name          = "${var.name}-kafka-running-tasks"
  alarm_description   = "Fewer Kafka tasks run than the minimum."
  namespace           = "ECS/ContainerInsights"
  metric_name         = "RunningTaskCount"
  dimensions          = { ClusterName = aws_ecs_cluster.kafka[0].name, ServiceName = aws_ecs_service.kafka[0].name }
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 3
  threshold           = var.kafka.min_tasks
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
  tags                = var.tags
}
