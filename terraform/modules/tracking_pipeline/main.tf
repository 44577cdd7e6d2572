locals {
  # The only local that depends on a resource; the rest live in locals.tf (pure inputs).
  namespace = var.create_namespace ? kubernetes_namespace_v1.this[0].metadata[0].name : var.namespace
}

resource "kubernetes_namespace_v1" "this" {
  count = var.create_namespace ? 1 : 0

  metadata {
    name   = var.namespace
    labels = local.common_labels
  }
}

resource "kubernetes_service_account_v1" "api" {
  metadata {
    name      = local.api_name
    namespace = local.namespace
    labels    = merge(local.common_labels, local.api_selector)
  }
  automount_service_account_token = false
}

resource "kubernetes_service_account_v1" "forwarder" {
  metadata {
    name      = local.fwd_name
    namespace = local.namespace
    labels    = merge(local.common_labels, local.fwd_selector)
  }
  automount_service_account_token = false
}
