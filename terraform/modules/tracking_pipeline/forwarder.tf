# The forwarder: a Deployment scaled by KEDA on the consumer group's lag, and a PDB so node
# drains take one consumer at a time (each eviction is a group rebalance).

resource "kubernetes_deployment_v1" "forwarder" {
  #checkov:skip=CKV_K8S_43: pinning by digest is the caller's choice; variables.tf accepts a digest and rejects latest
  #checkov:skip=CKV_K8S_14: the image has no default to inspect; variables.tf rejects a blank or latest tag
  metadata {
    name      = local.fwd_name
    namespace = local.namespace
    labels    = merge(local.common_labels, local.fwd_selector)
  }

  spec {
    # KEDA owns the replica count once the ScaledObject exists.
    replicas = var.forwarder_scaling.min_replicas

    selector {
      match_labels = local.fwd_selector
    }

    strategy {
      type = "RollingUpdate"
      rolling_update {
        max_surge       = "0"
        max_unavailable = "1"
      }
    }

    template {
      metadata {
        labels = merge(local.common_labels, local.fwd_selector)
        annotations = {
          "prometheus.io/scrape" = "true"
          "prometheus.io/port"   = tostring(var.forwarder_admin_port)
          "prometheus.io/path"   = "/metrics"
        }
      }

      spec {
        service_account_name             = kubernetes_service_account_v1.forwarder.metadata[0].name
        automount_service_account_token  = false
        termination_grace_period_seconds = local.forwarder_grace_s

        dynamic "image_pull_secrets" {
          for_each = toset(var.image_pull_secrets)
          content {
            name = image_pull_secrets.value
          }
        }

        security_context {
          run_as_non_root = true
          run_as_user     = 10001
          run_as_group    = 10001
          fs_group        = 10001
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        container {
          name              = "forwarder"
          image             = var.forwarder_image
          image_pull_policy = var.image_pull_policy

          port {
            name           = "admin"
            container_port = var.forwarder_admin_port
          }

          dynamic "env" {
            for_each = local.forwarder_env
            content {
              name  = env.key
              value = env.value
            }
          }
          resources {
            requests = {
              cpu    = var.forwarder_resources.cpu_request
              memory = var.forwarder_resources.memory_request
            }
            limits = {
              cpu    = var.forwarder_resources.cpu_limit
              memory = var.forwarder_resources.memory_limit
            }
          }

          liveness_probe {
            http_get {
              path = "/healthz"
              port = "admin"
            }
            period_seconds    = 10
            timeout_seconds   = 2
            failure_threshold = 3
          }
          readiness_probe {
            http_get {
              path = "/readyz"
              port = "admin"
            }
            period_seconds    = 5
            timeout_seconds   = 2
            failure_threshold = 3
          }
          startup_probe {
            http_get {
              path = "/healthz"
              port = "admin"
            }
            period_seconds    = 2
            failure_threshold = 30
          }

          security_context {
            allow_privilege_escalation = false
            privileged                 = false
            read_only_root_filesystem  = true
            run_as_non_root            = true
            capabilities {
              drop = ["ALL"]
            }
          }

          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }

        volume {
          name = "tmp"
          empty_dir {
            size_limit = "64Mi"
          }
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [spec[0].replicas]

    precondition {
      condition     = local.forwarder_grace_s > var.forwarder_shutdown_timeout_s
      error_message = "The termination grace period must exceed FORWARDER_SHUTDOWN_TIMEOUT_S."
    }
  }
}

# KEDA's Kafka scaler: one more consumer per lag_threshold records of lag, never more
# consumers than partitions (an extra one would be idle). Needs the KEDA CRDs installed
# before plan (kubernetes_manifest reads the CRD schema).
resource "kubernetes_manifest" "forwarder_scaler" {
  count = var.forwarder_scaling.keda ? 1 : 0

  manifest = {
    apiVersion = "keda.sh/v1alpha1"
    kind       = "ScaledObject"
    metadata = {
      name      = local.fwd_name
      namespace = local.namespace
      labels    = merge(local.common_labels, local.fwd_selector)
    }
    spec = {
      scaleTargetRef = {
        apiVersion = "apps/v1"
        kind       = "Deployment"
        name       = kubernetes_deployment_v1.forwarder.metadata[0].name
      }
      minReplicaCount = var.forwarder_scaling.min_replicas
      maxReplicaCount = local.forwarder_max
      pollingInterval = var.forwarder_scaling.polling_interval
      cooldownPeriod  = var.forwarder_scaling.cooldown_period
      triggers = [merge(
        {
          type = "kafka"
          metadata = {
            bootstrapServers       = var.kafka_bootstrap_servers
            consumerGroup          = local.forwarder_env["FORWARDER_GROUP_ID"]
            topic                  = var.topics.events
            lagThreshold           = tostring(var.forwarder_scaling.lag_threshold)
            activationLagThreshold = tostring(var.forwarder_scaling.activation_lag)
            offsetResetPolicy      = "earliest"
            allowIdleConsumers     = "false"
          }
        },
        var.forwarder_scaling.keda_auth_ref == null ? {} : {
          authenticationRef = { name = var.forwarder_scaling.keda_auth_ref }
        },
      )]
    }
  }

  lifecycle {
    precondition {
      condition     = local.forwarder_max <= var.forwarder_scaling.partitions
      error_message = "maxReplicaCount must not exceed the events topic's partition count."
    }
  }
}

resource "kubernetes_pod_disruption_budget_v1" "forwarder" {
  metadata {
    name      = local.fwd_name
    namespace = local.namespace
    labels    = merge(local.common_labels, local.fwd_selector)
  }

  spec {
    max_unavailable = "1"
    selector {
      match_labels = local.fwd_selector
    }
  }
}
