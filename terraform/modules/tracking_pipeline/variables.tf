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
  description = "Extra environment of the API (API_* settings, OTEL_* overrides). No secrets; none of the names the module sets itself."
  type        = map(string)
  default     = {}

  # Each of these follows from a module input (ports, drain, grace period, forwarded-header
  # trust, memory sizing, Kafka connection and credentials): overriding it here would put the
  # probes, the grace period, the NetworkPolicy or the memory limit out of step.
  validation {
    condition = length(setintersection(keys(var.api_env), [
      "API_HOST", "API_PORT", "API_ADMIN_HOST", "API_ADMIN_PORT", "API_DRAIN_GRACE_S",
      "API_SHUTDOWN_TIMEOUT_S", "API_KEYS", "API_TRUST_FORWARDED_FOR", "API_TRUSTED_PROXIES",
      "API_TRUSTED_PROXY_HOPS", "API_MAX_CONCURRENT_REQUESTS", "API_MAX_INFLATED_BYTES",
      "API_PRODUCER_BUFFER_BYTES", "KAFKA_BOOTSTRAP_SERVERS", "EVENTS_TOPIC", "BAD_EVENTS_TOPIC",
      "DLQ_TOPIC", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME",
      "KAFKA_SASL_PASSWORD", "KAFKA_SSL_CA_FILE", "KAFKA_SSL_CERT_FILE", "KAFKA_SSL_KEY_FILE",
    ])) == 0
    error_message = "api_env must not set a variable the module sets from its own inputs (ports, drain and shutdown timeouts, API_KEYS, forwarded-header trust, concurrency and memory sizing, Kafka connection and credentials): use the matching module input."
  }
}

variable "forwarder_env" {
  description = "Extra environment of the forwarder (FORWARDER_* settings). No secrets; none of the names the module sets itself."
  type        = map(string)
  default     = {}

  # The grace period, the probes, the KEDA trigger (group id, lag threshold) and the
  # NetworkPolicy are derived from these; a static FORWARDER_GROUP_INSTANCE_ID would give
  # every replica the same static member id, and the group would fence all but one.
  validation {
    condition = length(setintersection(keys(var.forwarder_env), [
      "COLLECTOR_URL", "FORWARDER_GROUP_ID", "FORWARDER_GROUP_INSTANCE_ID", "FORWARDER_ADMIN_HOST",
      "FORWARDER_ADMIN_PORT", "FORWARDER_SHUTDOWN_TIMEOUT_S", "FORWARDER_MAX_BACKLOG_EVENTS",
      "FORWARDER_COMMIT_INTERVAL_S", "KAFKA_BOOTSTRAP_SERVERS", "EVENTS_TOPIC", "BAD_EVENTS_TOPIC",
      "DLQ_TOPIC", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME",
      "KAFKA_SASL_PASSWORD", "KAFKA_SSL_CA_FILE", "KAFKA_SSL_CERT_FILE", "KAFKA_SSL_KEY_FILE",
    ])) == 0
    error_message = "forwarder_env must not set a variable the module sets from its own inputs (collector URL, group id and instance id, admin port, shutdown timeout, backlog and commit interval, Kafka connection and credentials): use the matching module input."
  }
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
    lag_threshold    = optional(number, 50000)
    activation_lag   = optional(number, 0)
    polling_interval = optional(number, 15)
    cooldown_period  = optional(number, 300)
    keda             = optional(bool, true)
    keda_auth_ref    = optional(string)
    # Events per second one replica delivers when healthy: sizes what it holds between commits.
    replica_events_per_s = optional(number, 2000)
    # HPA behaviour: each scaling step is a group rebalance, so steps are small and slow.
    scale_up_pods       = optional(number, 2)
    scale_up_period_s   = optional(number, 60)
    scale_up_window_s   = optional(number, 60)
    scale_down_pods     = optional(number, 1)
    scale_down_period_s = optional(number, 120)
    scale_down_window_s = optional(number, 600)
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
  validation {
    condition = alltrue([
      var.forwarder_scaling.scale_up_pods >= 1, var.forwarder_scaling.scale_down_pods >= 1,
      var.forwarder_scaling.scale_up_period_s >= 15, var.forwarder_scaling.scale_down_period_s >= 15,
      var.forwarder_scaling.scale_up_window_s >= 0, var.forwarder_scaling.scale_down_window_s >= 60,
      var.forwarder_scaling.replica_events_per_s > 0,
    ])
    error_message = "forwarder_scaling: scale_*_pods >= 1, scale_*_period_s >= 15, scale_up_window_s >= 0, scale_down_window_s >= 60 and replica_events_per_s > 0."
  }
}

variable "forwarder_max_backlog_events" {
  description = "FORWARDER_MAX_BACKLOG_EVENTS: events a replica takes from Kafka before it has delivered them (fetching pauses above it)."
  type        = number
  default     = 20000

  validation {
    condition     = var.forwarder_max_backlog_events >= 1
    error_message = "forwarder_max_backlog_events must be at least 1."
  }
}

variable "forwarder_commit_interval_s" {
  description = "FORWARDER_COMMIT_INTERVAL_S: how often a replica commits what it has delivered."
  type        = number
  default     = 5

  validation {
    condition     = var.forwarder_commit_interval_s > 0 && var.forwarder_commit_interval_s <= 300
    error_message = "forwarder_commit_interval_s must be in (0, 300]."
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
  description = "API_DRAIN_GRACE_S: after SIGTERM, seconds the API keeps serving with /readyz failing, so endpoints drop it. Must exceed the readiness window (period x failure threshold, 10 s)."
  type        = number
  default     = 15

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
  description = "API container requests and limits; memory_limit null = sized from api_limits (see README)."
  type = object({
    cpu_request    = optional(string, "250m")
    memory_request = optional(string, "256Mi")
    cpu_limit      = optional(string, "1")
    memory_limit   = optional(string)
  })
  default = {}

  validation {
    condition     = var.api_resources.memory_limit == null || can(regex("^[0-9]+(Mi|Gi)$", coalesce(var.api_resources.memory_limit, "0Mi")))
    error_message = "api_resources.memory_limit must be null (sized by the module) or a whole number of Mi or Gi."
  }
}

variable "api_limits" {
  description = <<-EOT
    What bounds the API's memory: API_MAX_CONCURRENT_REQUESTS (beyond it, 503 with Retry-After),
    API_MAX_INFLATED_BYTES (the largest body after gzip inflation), API_PRODUCER_BUFFER_BYTES
    (bytes awaiting Kafka's acknowledgement) and the process's baseline_mib without traffic.
    The memory limit is baseline + buffer + concurrency x inflated body.
  EOT
  type = object({
    max_concurrent_requests = optional(number, 64)
    max_inflated_bytes      = optional(number, 4194304)
    producer_buffer_bytes   = optional(number, 67108864)
    baseline_mib            = optional(number, 192)
  })
  default = {}

  validation {
    condition = alltrue([
      var.api_limits.max_concurrent_requests >= 1,
      var.api_limits.max_inflated_bytes >= 1024,
      var.api_limits.producer_buffer_bytes >= 1048576,
      var.api_limits.baseline_mib >= 64,
    ])
    error_message = "api_limits needs max_concurrent_requests >= 1, max_inflated_bytes >= 1024, producer_buffer_bytes >= 1 MiB and baseline_mib >= 64."
  }
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
  description = "Type of the API's Service (it carries only the API port; /metrics stays on the pods' admin port)."
  type        = string
  default     = "ClusterIP"

  validation {
    condition     = contains(["ClusterIP", "NodePort", "LoadBalancer"], var.service_type)
    error_message = "service_type must be ClusterIP, NodePort or LoadBalancer."
  }
}

variable "kafka_security" {
  description = <<-EOT
    How both services and the KEDA scaler reach a secured Kafka cluster. protocol is
    KAFKA_SECURITY_PROTOCOL; SASL_* protocols need sasl_mechanism (KAFKA_SASL_MECHANISM) and
    sasl_secret (an existing Secret holding the username and password: passed as
    KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD through secret references). tls_secret (an
    existing Secret with the CA and optionally a client certificate and key) is mounted as files
    whose paths go in KAFKA_SSL_CA_FILE, KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE; without it
    the system trust store is used.
  EOT
  type = object({
    protocol       = optional(string, "PLAINTEXT")
    sasl_mechanism = optional(string)
    sasl_secret = optional(object({
      name         = string
      username_key = optional(string, "username")
      password_key = optional(string, "password")
    }))
    tls_secret = optional(object({
      name     = string
      ca_key   = optional(string, "ca.crt")
      cert_key = optional(string)
      key_key  = optional(string)
    }))
  })
  default = {}

  validation {
    condition     = contains(["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], var.kafka_security.protocol)
    error_message = "kafka_security.protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
  }
  validation {
    condition = (
      startswith(var.kafka_security.protocol, "SASL_")
      == (var.kafka_security.sasl_mechanism != null && var.kafka_security.sasl_secret != null)
      && (var.kafka_security.sasl_mechanism == null) == (var.kafka_security.sasl_secret == null)
    )
    error_message = "kafka_security: SASL_PLAINTEXT and SASL_SSL need sasl_mechanism and sasl_secret; the other protocols take neither."
  }
  validation {
    condition     = contains(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], coalesce(var.kafka_security.sasl_mechanism, "PLAIN"))
    error_message = "kafka_security.sasl_mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."
  }
  validation {
    condition = (
      var.kafka_security.tls_secret == null
      || contains(["SSL", "SASL_SSL"], var.kafka_security.protocol)
    )
    error_message = "kafka_security.tls_secret needs protocol SSL or SASL_SSL."
  }
  validation {
    condition     = (try(var.kafka_security.tls_secret.cert_key, null) == null) == (try(var.kafka_security.tls_secret.key_key, null) == null)
    error_message = "kafka_security.tls_secret: cert_key and key_key go together (a client certificate needs its key)."
  }
}

variable "ingress" {
  description = <<-EOT
    Optional Ingress in front of the API's Service. The API believes X-Forwarded-For only from
    trusted_proxies (CIDRs of the ingress controller's pods, API_TRUSTED_PROXIES) and takes the
    client from proxy_hops entries from the right (API_TRUSTED_PROXY_HOPS): 1 when the ingress
    controller is the only proxy, 2 when a load balancer that also appends sits in front of it.
    Per-client rate limits then see real clients, and a client cannot spoof its address.
    controller_namespace_labels and controller_pod_labels select the controller's pods for the
    NetworkPolicy.
  EOT
  type = object({
    enabled                     = optional(bool, false)
    class_name                  = optional(string, "nginx")
    host                        = optional(string)
    path                        = optional(string, "/")
    tls_secret                  = optional(string)
    annotations                 = optional(map(string), {})
    trusted_proxies             = optional(list(string), [])
    proxy_hops                  = optional(number, 1)
    controller_namespace_labels = optional(map(string), { "kubernetes.io/metadata.name" = "ingress-nginx" })
    controller_pod_labels       = optional(map(string), {})
  })
  default = {}

  validation {
    condition     = !var.ingress.enabled || (var.ingress.host != null && length(var.ingress.trusted_proxies) > 0)
    error_message = "ingress: an enabled Ingress needs host and trusted_proxies (the controller pods' CIDRs), so the API knows whose X-Forwarded-For to believe."
  }
  validation {
    condition     = var.ingress.proxy_hops >= 1 && floor(var.ingress.proxy_hops) == var.ingress.proxy_hops
    error_message = "ingress.proxy_hops must be a whole number >= 1."
  }
  validation {
    condition = alltrue([
      for proxy in var.ingress.trusted_proxies :
      can(cidrhost(strcontains(proxy, "/") ? proxy : (strcontains(proxy, ":") ? "${proxy}/128" : "${proxy}/32"), 0))
    ])
    error_message = "ingress.trusted_proxies must be IP addresses or CIDRs."
  }
}

variable "network_policy" {
  description = <<-EOT
    Default-deny NetworkPolicy per service: in, the API port from the ingress controller and the
    admin ports from monitoring_namespace_labels; out, only DNS, Kafka (the ports of
    kafka_bootstrap_servers), the collector (forwarder) and OTLP (the ports of their URLs).
    kafka, collector and otlp list the peers of each (cidr, or namespace and pod labels); an
    empty list allows any address on that destination's ports.
  EOT
  type = object({
    enabled                     = optional(bool, true)
    monitoring_namespace_labels = optional(map(string), { "kubernetes.io/metadata.name" = "monitoring" })
    dns_namespace_labels        = optional(map(string), { "kubernetes.io/metadata.name" = "kube-system" })
    dns_pod_labels              = optional(map(string), { "k8s-app" = "kube-dns" })
    kafka = optional(list(object({
      cidr             = optional(string)
      namespace_labels = optional(map(string))
      pod_labels       = optional(map(string))
    })), [])
    collector = optional(list(object({
      cidr             = optional(string)
      namespace_labels = optional(map(string))
      pod_labels       = optional(map(string))
    })), [])
    otlp = optional(list(object({
      cidr             = optional(string)
      namespace_labels = optional(map(string))
      pod_labels       = optional(map(string))
    })), [])
  })
  default = {}

  validation {
    condition = alltrue([
      for peer in concat(var.network_policy.kafka, var.network_policy.collector, var.network_policy.otlp) :
      (peer.cidr == null) != (peer.namespace_labels == null && peer.pod_labels == null)
      && can(cidrhost(coalesce(peer.cidr, "0.0.0.0/0"), 0))
    ])
    error_message = "network_policy: each peer is either a cidr or namespace/pod labels."
  }
}

variable "prometheus_operator" {
  description = <<-EOT
    For clusters running the Prometheus Operator, which ignores the prometheus.io annotations:
    pod_monitors creates a PodMonitor per service (the admin port's /metrics), rules a
    PrometheusRule from rules_file (default: the repository's ops/prometheus/alerts.yaml).
    labels are added to both, to match the operator's selectors. Needs the operator's CRDs
    installed before plan.
  EOT
  type = object({
    pod_monitors    = optional(bool, false)
    rules           = optional(bool, false)
    rules_file      = optional(string)
    labels          = optional(map(string), {})
    scrape_interval = optional(string, "30s")
  })
  default = {}
}
