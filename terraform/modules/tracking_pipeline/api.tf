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
            name           = "metrics"
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

          resources {
            requests = {
              cpu    = var.api_resources.cpu_request
              memory = var.api_resources.memory_request
            }
            limits = {
              cpu    = var.api_resources.cpu_limit
              memory = var.api_resources.memory_limit
            }
          }

          liveness_probe {
            http_get {
              path = "/healthz"
              port = "http"
            }
            period_seconds    = 10
            timeout_seconds   = 2
            failure_threshold = 3
          }
          readiness_probe {
            http_get {
              path = "/readyz"
              port = "http"
            }
            period_seconds    = 5
            timeout_seconds   = 2
            failure_threshold = 2
          }
          startup_probe {
            http_get {
              path = "/healthz"
              port = "http"
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

    port {
      name        = "http"
      port        = 80
      target_port = "http"
    }
    port {
      name        = "metrics"
      port        = var.api_admin_port
      target_port = "metrics"
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

resource "kubernetes_pod_disruption_budget_v1" "api" {
  metadata {
    name      = local.api_name
    namespace = local.namespace
    labels    = merge(local.common_labels, local.api_selector)
  }

  spec {
    max_unavailable = "1"
    selector {
      match_labels = local.api_selector
    }
  }
}
