# The pipeline's three topics, through the Mongey/kafka provider (configured by the caller).

terraform {
  required_version = ">= 1.6"

  required_providers {
    kafka = {
      source  = "Mongey/kafka"
      version = ">= 0.7, < 1.0"
    }
  }
}

locals {
  topics = {
    events     = { name = var.topics.events, partitions = var.partitions, hours = var.retention_hours.events }
    bad_events = { name = var.topics.bad_events, partitions = max(1, ceil(var.partitions / 4)), hours = var.retention_hours.bad_events }
    dlq        = { name = var.topics.dlq, partitions = max(1, ceil(var.partitions / 4)), hours = var.retention_hours.dlq }
  }
}

resource "kafka_topic" "this" {
  for_each = local.topics

  # Destroying a topic deletes its events; removing one must be a deliberate edit of this line.
  lifecycle {
    prevent_destroy = true
  }

  name               = each.value.name
  partitions         = each.value.partitions
  replication_factor = var.replication_factor

  config = {
    "retention.ms"        = tostring(each.value.hours * 3600 * 1000)
    "cleanup.policy"      = "delete"
    "min.insync.replicas" = tostring(var.min_insync_replicas)
    "compression.type"    = "producer"
  }
}

output "topics" {
  description = "Names of the created topics."
  value       = { for key, topic in kafka_topic.this : key => topic.name }
}

output "events_partitions" {
  description = "Partition count of the events topic."
  value       = kafka_topic.this["events"].partitions
}
