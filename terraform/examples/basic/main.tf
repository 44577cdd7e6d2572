# Example: both services in an existing cluster with KEDA installed, and optionally the topics.
#   tofu init && tofu apply -var api_image=registry.example.com/tracking-api:0.1.0 ...

terraform {
  required_version = ">= 1.6"

  required_providers {
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.23, < 4.0"
    }
    kafka = {
      source  = "Mongey/kafka"
      version = ">= 0.7, < 1.0"
    }
  }
}

variable "kubeconfig_path" {
  description = "Kubeconfig of the target cluster."
  type        = string
  default     = "~/.kube/config"
}

variable "api_image" {
  description = "Image built from the Dockerfile's api target."
  type        = string
  default     = "registry.example.com/tracking-api:0.1.0"
}

variable "forwarder_image" {
  description = "Image built from the Dockerfile's forwarder target."
  type        = string
  default     = "registry.example.com/tracking-forwarder:0.1.0"
}

variable "kafka_bootstrap_servers" {
  description = "Kafka bootstrap servers."
  type        = string
  default     = "kafka-0.kafka.svc:9092,kafka-1.kafka.svc:9092,kafka-2.kafka.svc:9092"
}

variable "collector_url" {
  description = "The Snowplow collector."
  type        = string
  default     = "https://collector.example.com"
}

variable "events_partitions" {
  description = "Partitions of the events topic (also the forwarder's replica ceiling)."
  type        = number
  default     = 12
}

variable "manage_topics" {
  description = "Create the topics with the Kafka provider (false: they exist already)."
  type        = bool
  default     = false
}

provider "kubernetes" {
  config_path = var.kubeconfig_path
}

provider "kafka" {
  bootstrap_servers = split(",", var.kafka_bootstrap_servers)
  tls_enabled       = true
}

module "topics" {
  source = "../../modules/kafka_topics"
  count  = var.manage_topics ? 1 : 0

  partitions = var.events_partitions
}

module "pipeline" {
  source = "../../modules/tracking_pipeline"

  # docs/deploy.md creates the namespace (and the API keys' Secret in it) before the first
  # apply, so the module must not create it again.
  namespace               = "tracking"
  create_namespace        = false
  api_image               = var.api_image
  forwarder_image         = var.forwarder_image
  kafka_bootstrap_servers = var.kafka_bootstrap_servers
  collector_url           = var.collector_url

  # Created beforehand, e.g. kubectl -n tracking create secret generic tracking-api-keys \
  #   --from-literal=API_KEYS=key1,key2
  api_keys_secret = { name = "tracking-api-keys" }

  api_scaling = { min_replicas = 2, max_replicas = 8, cpu_utilization = 70 }
  forwarder_scaling = {
    partitions    = var.manage_topics ? module.topics[0].events_partitions : var.events_partitions
    min_replicas  = 1
    max_replicas  = var.events_partitions
    lag_threshold = 50000
  }

  # The API's memory limit is sized from api_limits (see the module's README).
  api_limits          = { max_concurrent_requests = 64 }
  api_resources       = { cpu_request = "250m", memory_request = "256Mi", cpu_limit = "1" }
  forwarder_resources = { cpu_request = "250m", memory_request = "384Mi", cpu_limit = "1", memory_limit = "768Mi" }

  otel = {
    exporter_otlp_endpoint = "http://otel-collector.observability.svc:4318"
    resource_attributes    = "deployment.environment=example"
  }

  # Egress only to these (plus DNS, and the collector's port: it is outside the cluster).
  network_policy = {
    kafka = [{ namespace_labels = { "kubernetes.io/metadata.name" = "kafka" } }]
    otlp  = [{ namespace_labels = { "kubernetes.io/metadata.name" = "observability" } }]
  }
}

output "api_service" {
  description = "The API's Service name."
  value       = module.pipeline.api_service_name
}

output "forwarder_grace_period_s" {
  description = "The forwarder's termination grace period."
  value       = module.pipeline.forwarder_termination_grace_period_s
}
