# Rules that tie several inputs together, checked at plan time (terraform_data is built in, so
# the tests evaluate this with variables.tf alone, without the Kafka provider).

resource "terraform_data" "invariants" {
  input = {
    replication_factor  = var.replication_factor
    min_insync_replicas = var.min_insync_replicas
  }

  lifecycle {
    precondition {
      # Equal to the replication factor, one broker down (a rolling restart) stops every
      # acks=all write: the API answers 503 until it is back.
      condition     = var.min_insync_replicas < var.replication_factor
      error_message = "min_insync_replicas must be below replication_factor, or a single broker down stops every write."
    }
  }
}
