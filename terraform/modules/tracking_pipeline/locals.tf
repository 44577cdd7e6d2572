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

  kafka_env = {
    KAFKA_BOOTSTRAP_SERVERS = var.kafka_bootstrap_servers
    EVENTS_TOPIC            = var.topics.events
    BAD_EVENTS_TOPIC        = var.topics.bad_events
    DLQ_TOPIC               = var.topics.dlq
    LOG_LEVEL               = var.log_level
  }
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
  api_own_env = {
    OTEL_SERVICE_NAME      = local.api_name
    API_HOST               = "0.0.0.0"
    API_PORT               = tostring(var.api_port)
    API_ADMIN_PORT         = tostring(var.api_admin_port)
    API_DRAIN_GRACE_S      = tostring(var.api_drain_grace_s)
    API_SHUTDOWN_TIMEOUT_S = tostring(var.api_shutdown_timeout_s)
  }
  forwarder_own_env = {
    OTEL_SERVICE_NAME            = local.fwd_name
    COLLECTOR_URL                = var.collector_url
    FORWARDER_GROUP_ID           = "${var.name_prefix}-forwarder"
    FORWARDER_ADMIN_PORT         = tostring(var.forwarder_admin_port)
    FORWARDER_SHUTDOWN_TIMEOUT_S = tostring(var.forwarder_shutdown_timeout_s)
  }
  api_env       = merge(local.kafka_env, local.otel_env, local.api_own_env, var.api_env)
  forwarder_env = merge(local.kafka_env, local.otel_env, local.forwarder_own_env, var.forwarder_env)
}
