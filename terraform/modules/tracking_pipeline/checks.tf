# Rules that tie several inputs together, checked at plan time. terraform_data is built into
# Terraform and OpenTofu, so the tests evaluate these with variables.tf and locals.tf alone.

resource "terraform_data" "invariants" {
  input = {
    api_memory_limit   = local.api_memory_limit
    forwarder_lag_held = local.forwarder_lag_held
  }

  lifecycle {
    precondition {
      condition     = var.api_drain_grace_s > local.api_readiness_window_s
      error_message = "api_drain_grace_s must exceed the API's readiness window (period x failure threshold = 10 s), or endpoints still send requests to a pod that has stopped accepting them."
    }
    precondition {
      condition     = local.api_memory_limit_given_mib >= local.api_memory_limit_mib
      error_message = "api_resources.memory_limit is below baseline + producer buffer + concurrency x inflated body (api_limits); raise it, lower api_limits, or leave it null to have it sized."
    }
    precondition {
      condition     = var.forwarder_scaling.lag_threshold > local.forwarder_lag_held
      error_message = "forwarder_scaling.lag_threshold must exceed the lag a healthy replica holds between commits (forwarder_max_backlog_events + forwarder_commit_interval_s x replica_events_per_s), or KEDA adds replicas that only rebalance."
    }
  }
}
