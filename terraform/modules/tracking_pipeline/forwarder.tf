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
            name           = local.forwarder_admin_port_name
            container_port = var.forwarder_admin_port
          }

          dynamic "env" {
            for_each = local.forwarder_env
            content {
              name  = env.key
              value = env.value
            }
          }
          dynamic "env" {
            for_each = local.kafka_secret_env
            content {
              name = env.key
              value_from {
                secret_key_ref {
                  name = env.value.secret
                  key  = env.value.key
                }
              }
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
              port = local.forwarder_admin_port_name
            }
            period_seconds    = 10
            timeout_seconds   = 2
            failure_threshold = 3
          }
          readiness_probe {
            http_get {
              path = "/readyz"
              port = local.forwarder_admin_port_name
            }
            period_seconds    = local.forwarder_readiness.period_s
            timeout_seconds   = 2
            failure_threshold = local.forwarder_readiness.failure_threshold
          }
          startup_probe {
            http_get {
              path = "/healthz"
              port = local.forwarder_admin_port_name
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
          dynamic "volume_mount" {
            for_each = length(local.kafka_tls_files) > 0 ? [local.kafka_tls_dir] : []
            content {
              name       = "kafka-tls"
              mount_path = volume_mount.value
              read_only  = true
            }
          }
        }

        volume {
          name = "tmp"
          empty_dir {
            size_limit = "64Mi"
          }
        }
        dynamic "volume" {
          for_each = length(local.kafka_tls_files) > 0 ? [var.kafka_security.tls_secret.name] : []
          content {
            name = "kafka-tls"
            secret {
              secret_name  = volume.value
              default_mode = "0440"
              dynamic "items" {
                for_each = local.kafka_tls_files
                content {
                  key  = items.value.key
                  path = items.value.path
                }
              }
            }
          }
        }

        # Spread over zones and hosts; ScheduleAnyway so a single-zone cluster still schedules.
        dynamic "topology_spread_constraint" {
          for_each = ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
          content {
            max_skew           = 1
            topology_key       = topology_spread_constraint.value
            when_unsatisfiable = "ScheduleAnyway"
            label_selector {
              match_labels = local.fwd_selector
            }
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
# - lag_threshold exceeds what a healthy replica holds between commits (checks.tf).
# - excludePersistentLag: a partition whose committed offset did not move since the last poll
#   is left out. While the collector is down the forwarder pauses its partitions and commits
#   nothing, so that lag does not add replicas that would only rebalance (no stampede).
# - The HPA behaviour adds and removes a few replicas per period (each step is a rebalance)
#   and waits scale_down_window_s before removing one.
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
      advanced = {
        horizontalPodAutoscalerConfig = {
          behavior = {
            scaleUp = {
              stabilizationWindowSeconds = var.forwarder_scaling.scale_up_window_s
              policies = [{
                type          = "Pods"
                value         = var.forwarder_scaling.scale_up_pods
                periodSeconds = var.forwarder_scaling.scale_up_period_s
              }]
            }
            scaleDown = {
              stabilizationWindowSeconds = var.forwarder_scaling.scale_down_window_s
              policies = [{
                type          = "Pods"
                value         = var.forwarder_scaling.scale_down_pods
                periodSeconds = var.forwarder_scaling.scale_down_period_s
              }]
            }
          }
        }
      }
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
            excludePersistentLag   = "true"
            sasl                   = local.keda_sasl
            tls                    = local.keda_tls
          }
        },
        local.keda_auth_name == null ? {} : {
          authenticationRef = { name = local.keda_auth_name }
        },
      )]
    }
  }

  depends_on = [kubernetes_manifest.forwarder_kafka_auth]

  lifecycle {
    precondition {
      condition     = local.forwarder_max <= var.forwarder_scaling.partitions
      error_message = "maxReplicaCount must not exceed the events topic's partition count."
    }
  }
}

# The scaler reads the secured cluster with the credentials the services use: the same Secrets,
# referenced, never copied.
resource "kubernetes_manifest" "forwarder_kafka_auth" {
  count = (
    var.forwarder_scaling.keda && var.forwarder_scaling.keda_auth_ref == null
    && length(local.keda_secret_refs) > 0
  ) ? 1 : 0

  manifest = {
    apiVersion = "keda.sh/v1alpha1"
    kind       = "TriggerAuthentication"
    metadata = {
      name      = local.keda_auth_name
      namespace = local.namespace
      labels    = merge(local.common_labels, local.fwd_selector)
    }
    spec = {
      secretTargetRef = [for parameter, ref in local.keda_secret_refs : {
        parameter = parameter
        name      = ref.secret
        key       = ref.key
      }]
    }
  }
}

# A manifest rather than kubernetes_pod_disruption_budget_v1, whose schema has no
# unhealthyPodEvictionPolicy. One consumer at a time (each eviction is a group rebalance), and
# AlwaysAllow so unready forwarders (e.g. while the collector is down) never block a drain.
resource "kubernetes_manifest" "forwarder_pdb" {
  manifest = {
    apiVersion = "policy/v1"
    kind       = "PodDisruptionBudget"
    metadata = {
      name      = local.fwd_name
      namespace = local.namespace
      labels    = merge(local.common_labels, local.fwd_selector)
    }
    spec = {
      maxUnavailable             = 1
      unhealthyPodEvictionPolicy = "AlwaysAllow"
      selector                   = { matchLabels = local.fwd_selector }
    }
  }
}
