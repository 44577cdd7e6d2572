variable "namespace" {
  description = "Namespace to deploy into."
  type        = string
  default     = "tracking"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.namespace)) && var.namespace != "default"
    error_message = "namespace must be a DNS label other than \"default\"."
  }
}

variable "create_namespace" {
  description = "Create the namespace (false: it already exists)."
  type        = bool
  default     = false
}

variable "name_prefix" {
  description = "Prefix of every object's name."
  type        = string
  default     = "tracking"
}

variable "labels" {
  description = "Extra labels on every object."
  type        = map(string)
  default     = {}
}

variable "api_image" {
  description = "Image of the Dockerfile's `api` target, pinned by tag or digest."
  type        = string

  validation {
    condition     = !endswith(var.api_image, ":latest") && length(regexall(":|@", var.api_image)) > 0
    error_message = "api_image must be pinned by a tag other than latest, or by a digest."
  }
}

variable "forwarder_image" {
  description = "Image of the Dockerfile's `forwarder` target, pinned by tag or digest."
  type        = string

  validation {
    condition     = !endswith(var.forwarder_image, ":latest") && length(regexall(":|@", var.forwarder_image)) > 0
    error_message = "forwarder_image must be pinned by a tag other than latest, or by a digest."
  }
}

variable "image_pull_policy" {
  description = "Pull policy of both containers."
  type        = string
  default     = "Always"

  validation {
    condition     = contains(["Always", "IfNotPresent", "Never"], var.image_pull_policy)
    error_message = "image_pull_policy must be Always, IfNotPresent or Never."
  }
}

variable "image_pull_secrets" {
  description = "Names of image pull secrets in the namespace."
  type        = list(string)
  default     = []
}

variable "kafka_bootstrap_servers" {
  description = "KAFKA_BOOTSTRAP_SERVERS: comma-separated host:port list."
  type        = string

  validation {
    condition     = alltrue([for s in split(",", var.kafka_bootstrap_servers) : can(regex("^[^:,\\s]+:[0-9]{1,5}$", trimspace(s)))])
    error_message = "kafka_bootstrap_servers must be a comma-separated host:port list."
  }
}

variable "topics" {
  description = "EVENTS_TOPIC, BAD_EVENTS_TOPIC and DLQ_TOPIC."
  type = object({
    events     = optional(string, "events")
    bad_events = optional(string, "events_bad")
    dlq        = optional(string, "events_dlq")
  })
  default = {}
}

variable "collector_url" {
  description = "COLLECTOR_URL: the Snowplow collector the forwarder posts to."
  type        = string

  validation {
    condition     = can(regex("^https?://[^/@]+", var.collector_url))
    error_message = "collector_url must be an http(s) URL without credentials."
  }
}

variable "api_keys_secret" {
  description = "Secret holding API_KEYS (comma-separated keys); the module only references it."
  type = object({
    name = string
    key  = optional(string, "API_KEYS")
  })
}

variable "log_level" {
  description = "LOG_LEVEL of both services."
  type        = string
  default     = "INFO"
}

variable "otel" {
  description = "OpenTelemetry export (standard OTEL_* variables); endpoint null = no OTLP export."
  type = object({
    exporter_otlp_endpoint = optional(string)
    exporter_otlp_protocol = optional(string, "http/protobuf")
    resource_attributes    = optional(string, "")
    traces_sampler         = optional(string, "parentbased_traceidratio")
    traces_sampler_arg     = optional(string, "0.05")
  })
  default = {}
}

variable "api_env" {
  description = "Extra environment of the API (API_* settings, OTEL_* overrides). No secrets."
  type        = map(string)
  default     = {}
}

variable "forwarder_env" {
  description = "Extra environment of the forwarder (FORWARDER_* settings). No secrets."
  type        = map(string)
  default     = {}
}

variable "api_scaling" {
  description = "API replicas: the HPA keeps average CPU at cpu_utilization percent of requests."
  type = object({
    min_replicas    = optional(number, 2)
    max_replicas    = optional(number, 10)
    cpu_utilization = optional(number, 70)
  })
  default = {}

  validation {
    condition     = var.api_scaling.min_replicas >= 1 && var.api_scaling.max_replicas >= var.api_scaling.min_replicas
    error_message = "api_scaling needs 1 <= min_replicas <= max_replicas."
  }
  validation {
    condition     = var.api_scaling.cpu_utilization > 0 && var.api_scaling.cpu_utilization <= 100
    error_message = "api_scaling.cpu_utilization is a percentage in (0, 100]."
  }
}

variable "forwarder_scaling" {
  description = <<-EOT
    Forwarder replicas, scaled by KEDA on the consumer group's lag. A consumer beyond the
    events topic's partition count would sit idle, so max_replicas <= partitions.
    keda = false: a fixed min_replicas and no ScaledObject.
  EOT
  type = object({
    partitions       = number
    min_replicas     = optional(number, 1)
    max_replicas     = optional(number)
    lag_threshold    = optional(number, 5000)
    activation_lag   = optional(number, 0)
    polling_interval = optional(number, 15)
    cooldown_period  = optional(number, 300)
    keda             = optional(bool, true)
    keda_auth_ref    = optional(string)
  })

  validation {
    condition     = var.forwarder_scaling.partitions >= 1 && var.forwarder_scaling.min_replicas >= 1
    error_message = "forwarder_scaling needs partitions >= 1 and min_replicas >= 1."
  }
  validation {
    condition = (
      coalesce(var.forwarder_scaling.max_replicas, var.forwarder_scaling.partitions) <= var.forwarder_scaling.partitions
      && coalesce(var.forwarder_scaling.max_replicas, var.forwarder_scaling.partitions) >= var.forwarder_scaling.min_replicas
    )
    error_message = "forwarder_scaling.max_replicas must be between min_replicas and the partition count."
  }
}

variable "forwarder_shutdown_timeout_s" {
  description = "FORWARDER_SHUTDOWN_TIMEOUT_S: how long SIGTERM waits for in-flight events to drain."
  type        = number
  default     = 30

  validation {
    condition     = var.forwarder_shutdown_timeout_s > 0
    error_message = "forwarder_shutdown_timeout_s must be positive."
  }
}

variable "api_drain_grace_s" {
  description = "API_DRAIN_GRACE_S: after SIGTERM, seconds the API keeps serving with /readyz failing, so endpoints drop it."
  type        = number
  default     = 5

  validation {
    condition     = var.api_drain_grace_s >= 0
    error_message = "api_drain_grace_s must not be negative."
  }
}

variable "api_shutdown_timeout_s" {
  description = "API_SHUTDOWN_TIMEOUT_S: deadline for in-flight requests and the producer's flush after the drain."
  type        = number
  default     = 20

  validation {
    condition     = var.api_shutdown_timeout_s > 0
    error_message = "api_shutdown_timeout_s must be positive."
  }
}

variable "termination_grace_margin_s" {
  description = "Seconds the kubelet waits beyond a service's own shutdown deadline before SIGKILL."
  type        = number
  default     = 15

  validation {
    condition     = var.termination_grace_margin_s >= 5
    error_message = "termination_grace_margin_s must be at least 5 seconds."
  }
}

variable "api_resources" {
  description = "API container requests and limits."
  type = object({
    cpu_request    = optional(string, "250m")
    memory_request = optional(string, "256Mi")
    cpu_limit      = optional(string, "1")
    memory_limit   = optional(string, "512Mi")
  })
  default = {}
}

variable "forwarder_resources" {
  description = "Forwarder container requests and limits (memory: see docs/operations.md)."
  type = object({
    cpu_request    = optional(string, "250m")
    memory_request = optional(string, "256Mi")
    cpu_limit      = optional(string, "1")
    memory_limit   = optional(string, "512Mi")
  })
  default = {}
}

variable "api_port" {
  description = "API_PORT."
  type        = number
  default     = 8080
}

variable "api_admin_port" {
  description = "API_ADMIN_PORT (/metrics)."
  type        = number
  default     = 9464
}

variable "forwarder_admin_port" {
  description = "FORWARDER_ADMIN_PORT (/healthz, /readyz, /metrics)."
  type        = number
  default     = 9465
}

variable "service_type" {
  description = "Type of the API's Service."
  type        = string
  default     = "ClusterIP"
}
