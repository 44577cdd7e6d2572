# Values computed from the inputs alone (no resource references), so tests can evaluate them
# with tofu and no provider.
locals {
  api_name = "${var.name_prefix}-api"
  fwd_name = "${var.name_prefix}-forwarder"

  common_labels = merge(var.labels, {
    "app.kubernetes.io/part-of"    = var.name_prefix
    "app.kubernetes.io/managed-by" = "terraform"
  })
  api_selector = { "app.kubernetes.io/name" = local.api_name }
  fwd_selector = { "app.kubernetes.io/name" = local.fwd_name }

  # The kubelet must wait longer than the forwarder's own drain deadline, or SIGKILL cuts the
  # drain short and undelivered events are read again (duplicates, never loss).
  forwarder_grace_s = var.forwarder_shutdown_timeout_s + var.termination_grace_margin_s
  api_grace_s       = var.api_drain_grace_s + var.api_shutdown_timeout_s + var.termination_grace_margin_s
  forwarder_max     = coalesce(var.forwarder_scaling.max_replicas, var.forwarder_scaling.partitions)

  # The API's readiness probe: after SIGTERM /readyz fails at once, but endpoints drop the pod
  # only after failure_threshold failed probes, so API_DRAIN_GRACE_S must outlast this window.
  api_readiness             = { period_s = 5, failure_threshold = 2 }
  api_readiness_window_s    = local.api_readiness.period_s * local.api_readiness.failure_threshold
  forwarder_readiness       = { period_s = 5, failure_threshold = 3 }
  api_admin_port_name       = "admin"
  forwarder_admin_port_name = "admin"

  # A healthy replica holds up to its backlog bound taken but undelivered, plus what it delivered
  # since its last commit; committed lag below this is normal and must not add a replica.
  forwarder_lag_held = (
    var.forwarder_max_backlog_events
    + var.forwarder_commit_interval_s * var.forwarder_scaling.replica_events_per_s
  )

  # Memory: requests beyond API_MAX_CONCURRENT_REQUESTS get 503, so at most that many inflated
  # bodies are in memory at once, next to the producer's buffer and the process's baseline.
  api_memory_limit_mib = ceil(
    var.api_limits.baseline_mib
    + (var.api_limits.producer_buffer_bytes
    + var.api_limits.max_concurrent_requests * var.api_limits.max_inflated_bytes) / 1048576
  )
  api_memory_limit = coalesce(var.api_resources.memory_limit, "${local.api_memory_limit_mib}Mi")
  api_memory_limit_given_mib = (
    var.api_resources.memory_limit == null ? local.api_memory_limit_mib
    : tonumber(regex("^[0-9]+", var.api_resources.memory_limit))
    * (endswith(var.api_resources.memory_limit, "Gi") ? 1024 : 1)
  )

  # Kafka security: the same settings for both services and the KEDA scaler.
  kafka_sasl    = startswith(var.kafka_security.protocol, "SASL_")
  kafka_tls     = contains(["SSL", "SASL_SSL"], var.kafka_security.protocol)
  kafka_tls_dir = "/etc/tracking/kafka-tls"
  # Secret key => file name under kafka_tls_dir, for the keys the Secret provides.
  kafka_tls_files = var.kafka_security.tls_secret == null ? {} : merge(
    { ca = { key = var.kafka_security.tls_secret.ca_key, path = "ca.crt" } },
    var.kafka_security.tls_secret.cert_key == null ? {} : {
      cert = { key = var.kafka_security.tls_secret.cert_key, path = "client.crt" }
      key  = { key = var.kafka_security.tls_secret.key_key, path = "client.key" }
    },
  )
  kafka_security_env = merge(
    { KAFKA_SECURITY_PROTOCOL = var.kafka_security.protocol },
    local.kafka_sasl ? { KAFKA_SASL_MECHANISM = var.kafka_security.sasl_mechanism } : {},
    { for kind, name in { ca = "KAFKA_SSL_CA_FILE", cert = "KAFKA_SSL_CERT_FILE", key = "KAFKA_SSL_KEY_FILE" } :
    name => "${local.kafka_tls_dir}/${local.kafka_tls_files[kind].path}" if contains(keys(local.kafka_tls_files), kind) },
  )
  # Variables read from a Secret (name => { secret, key }): never written by Terraform.
  kafka_secret_env = local.kafka_sasl ? {
    KAFKA_SASL_USERNAME = { secret = var.kafka_security.sasl_secret.name, key = var.kafka_security.sasl_secret.username_key }
    KAFKA_SASL_PASSWORD = { secret = var.kafka_security.sasl_secret.name, key = var.kafka_security.sasl_secret.password_key }
  } : {}
  # KEDA's Kafka scaler: mode names in the trigger, credentials in a TriggerAuthentication that
  # reads the same Secrets (parameter => { secret, key }).
  keda_sasl = local.kafka_sasl ? {
    PLAIN           = "plaintext"
    "SCRAM-SHA-256" = "scram_sha256"
    "SCRAM-SHA-512" = "scram_sha512"
  }[var.kafka_security.sasl_mechanism] : "none"
  keda_tls = local.kafka_tls ? "enable" : "disable"
  keda_secret_refs = merge(
    { for parameter, ref in {
      username = "KAFKA_SASL_USERNAME", password = "KAFKA_SASL_PASSWORD" } :
    parameter => local.kafka_secret_env[ref] if local.kafka_sasl },
    { for kind, file in local.kafka_tls_files :
    kind => { secret = var.kafka_security.tls_secret.name, key = file.key } },
  )
  keda_auth_name = (
    var.forwarder_scaling.keda_auth_ref != null ? var.forwarder_scaling.keda_auth_ref
    : length(local.keda_secret_refs) > 0 ? "${local.fwd_name}-kafka" : null
  )

  # Forwarded headers: believed only from the ingress controller, as many hops as it adds.
  api_forwarded_env = var.ingress.enabled ? {
    API_TRUST_FORWARDED_FOR = "true"
    API_TRUSTED_PROXIES     = join(",", var.ingress.trusted_proxies)
    API_TRUSTED_PROXY_HOPS  = tostring(var.ingress.proxy_hops)
    } : {
    API_TRUST_FORWARDED_FOR = "false"
  }

  kafka_env = merge(
    {
      KAFKA_BOOTSTRAP_SERVERS = var.kafka_bootstrap_servers
      EVENTS_TOPIC            = var.topics.events
      BAD_EVENTS_TOPIC        = var.topics.bad_events
      DLQ_TOPIC               = var.topics.dlq
      LOG_LEVEL               = var.log_level
    },
    local.kafka_security_env,
  )
  otel_env = merge(
    {
      OTEL_TRACES_SAMPLER     = var.otel.traces_sampler
      OTEL_TRACES_SAMPLER_ARG = var.otel.traces_sampler_arg
    },
    var.otel.exporter_otlp_endpoint == null ? {} : {
      OTEL_EXPORTER_OTLP_ENDPOINT = var.otel.exporter_otlp_endpoint
      OTEL_EXPORTER_OTLP_PROTOCOL = var.otel.exporter_otlp_protocol
    },
    var.otel.resource_attributes == "" ? {} : {
      OTEL_RESOURCE_ATTRIBUTES = var.otel.resource_attributes
    },
  )
  api_own_env = merge(
    {
      OTEL_SERVICE_NAME           = local.api_name
      API_HOST                    = "0.0.0.0"
      API_PORT                    = tostring(var.api_port)
      API_ADMIN_PORT              = tostring(var.api_admin_port)
      API_DRAIN_GRACE_S           = tostring(var.api_drain_grace_s)
      API_SHUTDOWN_TIMEOUT_S      = tostring(var.api_shutdown_timeout_s)
      API_MAX_CONCURRENT_REQUESTS = tostring(var.api_limits.max_concurrent_requests)
      API_MAX_INFLATED_BYTES      = tostring(var.api_limits.max_inflated_bytes)
      API_PRODUCER_BUFFER_BYTES   = tostring(var.api_limits.producer_buffer_bytes)
    },
    local.api_forwarded_env,
  )
  forwarder_own_env = {
    OTEL_SERVICE_NAME            = local.fwd_name
    COLLECTOR_URL                = var.collector_url
    FORWARDER_GROUP_ID           = "${var.name_prefix}-forwarder"
    FORWARDER_ADMIN_PORT         = tostring(var.forwarder_admin_port)
    FORWARDER_SHUTDOWN_TIMEOUT_S = tostring(var.forwarder_shutdown_timeout_s)
    FORWARDER_MAX_BACKLOG_EVENTS = tostring(var.forwarder_max_backlog_events)
    FORWARDER_COMMIT_INTERVAL_S  = tostring(var.forwarder_commit_interval_s)
  }
  api_env       = merge(local.kafka_env, local.otel_env, local.api_own_env, var.api_env)
  forwarder_env = merge(local.kafka_env, local.otel_env, local.forwarder_own_env, var.forwarder_env)

  # NetworkPolicy: destination ports from the URLs the services are given.
  kafka_ports = distinct([
    for server in split(",", var.kafka_bootstrap_servers) : tonumber(regex(":([0-9]+)$", trimspace(server))[0])
  ])
  collector_port = tonumber(coalesce(
    regex("^(https?)://[^/:]+(?::([0-9]+))?", var.collector_url)[1],
    startswith(var.collector_url, "https") ? "443" : "80",
  ))
  otlp_ports = var.otel.exporter_otlp_endpoint == null ? [] : [tonumber(coalesce(
    regex("^(https?)://[^/:]+(?::([0-9]+))?", var.otel.exporter_otlp_endpoint)[1],
    startswith(var.otel.exporter_otlp_endpoint, "https") ? "443" : "80",
  ))]
  # Every rule has the same shape (ports, peers with all three selectors) so both services'
  # policies are one typed map for for_each.
  any_peer = { cidr = null, namespace_labels = null, pod_labels = null }
  dns_rule = {
    ports = [{ port = 53, protocol = "UDP" }, { port = 53, protocol = "TCP" }]
    peers = [{ cidr = null, namespace_labels = var.network_policy.dns_namespace_labels, pod_labels = var.network_policy.dns_pod_labels }]
  }
  kafka_rule = {
    ports = [for port in local.kafka_ports : { port = port, protocol = "TCP" }]
    peers = [for peer in var.network_policy.kafka : merge(local.any_peer, peer)]
  }
  otlp_rules = [for port in local.otlp_ports : {
    ports = [{ port = port, protocol = "TCP" }]
    peers = [for peer in var.network_policy.otlp : merge(local.any_peer, peer)]
  }]
  monitoring_peers = [{ cidr = null, namespace_labels = var.network_policy.monitoring_namespace_labels, pod_labels = null }]
  network_rules = {
    api = {
      selector = local.api_selector
      ingress = [
        {
          ports = [{ port = var.api_port, protocol = "TCP" }]
          peers = [{
            cidr             = null
            namespace_labels = var.ingress.controller_namespace_labels
            pod_labels       = length(var.ingress.controller_pod_labels) == 0 ? null : var.ingress.controller_pod_labels
          }]
        },
        { ports = [{ port = var.api_admin_port, protocol = "TCP" }], peers = local.monitoring_peers },
      ]
      egress = concat([local.dns_rule, local.kafka_rule], local.otlp_rules)
    }
    forwarder = {
      selector = local.fwd_selector
      ingress  = [{ ports = [{ port = var.forwarder_admin_port, protocol = "TCP" }], peers = local.monitoring_peers }]
      egress = concat([local.dns_rule, local.kafka_rule, {
        ports = [{ port = local.collector_port, protocol = "TCP" }]
        peers = [for peer in var.network_policy.collector : merge(local.any_peer, peer)]
      }], local.otlp_rules)
    }
  }
}
