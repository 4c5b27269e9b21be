# examples/aws with the Kafka service on, for make tf-check's Trivy scan
# (nothing is applied with it).
kafka_image          = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/streambed:1"
vpc_id               = "vpc-0123456789abcdef0"
subnet_ids           = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
kafka_client_cidrs   = ["203.0.113.0/24"]
kafka_tls_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:streambed-tls"
