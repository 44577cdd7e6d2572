# The ingest API: a Deployment behind a Service, scaled on CPU by an HPA.

resource "kubernetes_deployment_v1" "api" {
  #checkov:skip=CKV_K8S_43: pinning by digest is the caller's choice; variables.tf accepts a digest and rejects latest
  #checkov:skip=CKV_K8S_14: the image has no default to inspect; variables.tf rejects a blank or latest tag
  #checkov:skip=CKV_K8S_35: API_KEYS is read from the environment by contract (pydantic-settings); it comes from a Secret reference, never a literal
  metadata {
    name      = local.api_name
    namespace = local.namespace
    labels    = merge(local.common_labels, local.api_selector)
  }

  spec {
    # The HPA owns the replica count once created.
    replicas = var.api_scaling.min_replicas

    selector {
      match_labels = local.api_selector
    }

    strategy {
      type = "RollingUpdate"
      rolling_update {
        max_surge       = "25%"
        max_unavailable = "0"
      }
    }

    template {
      metadata {
        labels = merge(local.common_labels, local.api_selector)
        annotations = {
          "prometheus.io/scrape" = "true"
          "prometheus.io/port"   = tostring(var.api_admin_port)
          "prometheus.io/path"   = "/metrics"
        }
      }

      spec {
        service_account_name             = kubernetes_service_account_v1.api.metadata[0].name
        automount_service_account_token  = false
        termination_grace_period_seconds = local.api_grace_s

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
          name              = "api"
          image             = var.api_image
          image_pull_policy = var.image_pull_policy

          port {
            name           = "http"
            container_port = var.api_port
          }
          port {
            name           = local.api_admin_port_name
            container_port = var.api_admin_port
          }

          dynamic "env" {
            for_each = local.api_env
            content {
              name  = env.key
              value = env.value
            }
          }
          env {
            name = "API_KEYS"
            value_from {
              secret_key_ref {
                name = var.api_keys_secret.name
                key  = var.api_keys_secret.key
              }
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
              cpu    = var.api_resources.cpu_request
              memory = var.api_resources.memory_request
            }
            limits = {
              cpu    = var.api_resources.cpu_limit
              memory = local.api_memory_limit
            }
          }

          # Probes go to the admin server, whose /readyz reflects only the API's own state.
          liveness_probe {
            http_get {
              path = "/healthz"
              port = local.api_admin_port_name
            }
            period_seconds    = 10
            timeout_seconds   = 2
            failure_threshold = 3
          }
          readiness_probe {
            http_get {
              path = "/readyz"
              port = local.api_admin_port_name
            }
            period_seconds    = local.api_readiness.period_s
            timeout_seconds   = 2
            failure_threshold = local.api_readiness.failure_threshold
          }
          startup_probe {
            http_get {
              path = "/healthz"
              port = local.api_admin_port_name
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
              match_labels = local.api_selector
            }
          }
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [spec[0].replicas]
  }
}

resource "kubernetes_service_v1" "api" {
  metadata {
    name      = local.api_name
    namespace = local.namespace
    labels    = merge(local.common_labels, local.api_selector)
  }

  spec {
    type     = var.service_type
    selector = local.api_selector

    # Only the API port: /metrics stays on the pods' admin port (scraped per pod), so no
    # Service type can publish it.
    port {
      name        = "http"
      port        = 80
      target_port = "http"
    }
  }
}

resource "kubernetes_horizontal_pod_autoscaler_v2" "api" {
  metadata {
    name      = local.api_name
    namespace = local.namespace
    labels    = merge(local.common_labels, local.api_selector)
  }

  spec {
    min_replicas = var.api_scaling.min_replicas
    max_replicas = var.api_scaling.max_replicas

    scale_target_ref {
      api_version = "apps/v1"
      kind        = "Deployment"
      name        = kubernetes_deployment_v1.api.metadata[0].name
    }

    metric {
      type = "Resource"
      resource {
        name = "cpu"
        target {
          type                = "Utilization"
          average_utilization = var.api_scaling.cpu_utilization
        }
      }
    }
  }
}

# A manifest rather than kubernetes_pod_disruption_budget_v1, whose schema has no
# unhealthyPodEvictionPolicy: with AlwaysAllow an unready pod never blocks a node drain.
resource "kubernetes_manifest" "api_pdb" {
  manifest = {
    apiVersion = "policy/v1"
    kind       = "PodDisruptionBudget"
    metadata = {
      name      = local.api_name
      namespace = local.namespace
      labels    = merge(local.common_labels, local.api_selector)
    }
    spec = {
      maxUnavailable             = 1
      unhealthyPodEvictionPolicy = "AlwaysAllow"
      selector                   = { matchLabels = local.api_selector }
    }
  }
}

resource "kubernetes_ingress_v1" "api" {
  count = var.ingress.enabled ? 1 : 0

  metadata {
    name        = local.api_name
    namespace   = local.namespace
    labels      = merge(local.common_labels, local.api_selector)
    annotations = var.ingress.annotations
  }

  spec {
    ingress_class_name = var.ingress.class_name

    dynamic "tls" {
      for_each = var.ingress.tls_secret == null ? [] : [var.ingress.tls_secret]
      content {
        hosts       = [var.ingress.host]
        secret_name = tls.value
      }
    }

    rule {
      host = var.ingress.host
      http {
        path {
          path      = var.ingress.path
          path_type = "Prefix"
          backend {
            service {
              name = kubernetes_service_v1.api.metadata[0].name
              port {
                name = "http"
              }
            }
          }
        }
      }
    }
  }
}
