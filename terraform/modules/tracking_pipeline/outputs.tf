output "namespace" {
  description = "Namespace the services run in."
  value       = local.namespace
}

output "api_service_name" {
  description = "Name of the API's Service (port 80: the API only; /metrics is scraped from the pods)."
  value       = kubernetes_service_v1.api.metadata[0].name
}

output "forwarder_deployment_name" {
  description = "Name of the forwarder's Deployment."
  value       = kubernetes_deployment_v1.forwarder.metadata[0].name
}

output "forwarder_consumer_group" {
  description = "FORWARDER_GROUP_ID: the consumer group whose lag scales the forwarder."
  value       = local.forwarder_env["FORWARDER_GROUP_ID"]
}

output "forwarder_termination_grace_period_s" {
  description = "Grace period given to a stopping forwarder pod."
  value       = local.forwarder_grace_s
}

output "api_termination_grace_period_s" {
  description = "Grace period given to a stopping API pod (drain, then shutdown, then margin)."
  value       = local.api_grace_s
}

output "api_memory_limit" {
  description = "The API container's memory limit: api_limits.baseline_mib + producer buffer + concurrency x largest inflated body, unless api_resources.memory_limit is given."
  value       = local.api_memory_limit
}

output "api_ingress_host" {
  description = "Host of the API's Ingress (null: no Ingress)."
  value       = var.ingress.enabled ? var.ingress.host : null
}
