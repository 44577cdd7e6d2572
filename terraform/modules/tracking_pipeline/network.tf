# Default-deny NetworkPolicy per service (both directions): only the rules of
# local.network_rules are allowed. Probes come from the kubelet on the node, which network
# policies do not filter.
resource "kubernetes_network_policy_v1" "this" {
  # A for expression (an object), not a conditional: the two services' rules differ in shape.
  for_each = { for name, rules in local.network_rules : name => rules if var.network_policy.enabled }

  metadata {
    name      = "${var.name_prefix}-${each.key}"
    namespace = local.namespace
    labels    = merge(local.common_labels, each.value.selector)
  }

  spec {
    policy_types = ["Ingress", "Egress"]

    pod_selector {
      match_labels = each.value.selector
    }

    dynamic "ingress" {
      for_each = each.value.ingress
      content {
        dynamic "ports" {
          for_each = ingress.value.ports
          content {
            port     = tostring(ports.value.port)
            protocol = ports.value.protocol
          }
        }
        dynamic "from" {
          for_each = ingress.value.peers
          content {
            dynamic "ip_block" {
              for_each = from.value.cidr == null ? [] : [from.value.cidr]
              content {
                cidr = ip_block.value
              }
            }
            dynamic "namespace_selector" {
              for_each = from.value.namespace_labels == null ? [] : [from.value.namespace_labels]
              content {
                match_labels = namespace_selector.value
              }
            }
            dynamic "pod_selector" {
              for_each = from.value.pod_labels == null ? [] : [from.value.pod_labels]
              content {
                match_labels = pod_selector.value
              }
            }
          }
        }
      }
    }

    dynamic "egress" {
      for_each = each.value.egress
      content {
        dynamic "ports" {
          for_each = egress.value.ports
          content {
            port     = tostring(ports.value.port)
            protocol = ports.value.protocol
          }
        }
        # No peers: any address, on these ports only.
        dynamic "to" {
          for_each = egress.value.peers
          content {
            dynamic "ip_block" {
              for_each = to.value.cidr == null ? [] : [to.value.cidr]
              content {
                cidr = ip_block.value
              }
            }
            dynamic "namespace_selector" {
              for_each = to.value.namespace_labels == null ? [] : [to.value.namespace_labels]
              content {
                match_labels = namespace_selector.value
              }
            }
            dynamic "pod_selector" {
              for_each = to.value.pod_labels == null ? [] : [to.value.pod_labels]
              content {
                match_labels = pod_selector.value
              }
            }
          }
        }
      }
    }
  }
}
