# Prometheus Operator resources (optional): the operator ignores the prometheus.io/*
# annotations, so clusters running it need a PodMonitor per service and a PrometheusRule.

locals {
  rules_file = coalesce(var.prometheus_operator.rules_file, "${path.module}/../../../ops/prometheus/alerts.yaml")
  pod_monitors = {
    api       = { selector = local.api_selector, port = local.api_admin_port_name }
    forwarder = { selector = local.fwd_selector, port = local.forwarder_admin_port_name }
  }
}

resource "kubernetes_manifest" "pod_monitor" {
  for_each = { for name, monitor in local.pod_monitors : name => monitor if var.prometheus_operator.pod_monitors }

  manifest = {
    apiVersion = "monitoring.coreos.com/v1"
    kind       = "PodMonitor"
    metadata = {
      name      = "${var.name_prefix}-${each.key}"
      namespace = local.namespace
      labels    = merge(local.common_labels, each.value.selector, var.prometheus_operator.labels)
    }
    spec = {
      selector = { matchLabels = each.value.selector }
      podMetricsEndpoints = [{
        port     = each.value.port
        path     = "/metrics"
        interval = var.prometheus_operator.scrape_interval
      }]
    }
  }
}

resource "kubernetes_manifest" "prometheus_rule" {
  count = var.prometheus_operator.rules ? 1 : 0

  manifest = {
    apiVersion = "monitoring.coreos.com/v1"
    kind       = "PrometheusRule"
    metadata = {
      name      = var.name_prefix
      namespace = local.namespace
      labels    = merge(local.common_labels, var.prometheus_operator.labels)
    }
    # The same rule groups Prometheus loads as a rule file.
    spec = { groups = yamldecode(file(local.rules_file)).groups }
  }
}
