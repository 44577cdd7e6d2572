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

variable "topics" {
  description = "EVENTS_TOPIC, BAD_EVENTS_TOPIC and DLQ_TOPIC names."
  type = object({
    events     = optional(string, "events")
    bad_events = optional(string, "events_bad")
    dlq        = optional(string, "events_dlq")
  })
  default = {}
}

variable "partitions" {
  description = "Partitions of the events topic: the ceiling on forwarder consumers. Only ever raised (raising moves keys between partitions)."
  type        = number
  default     = 12

  validation {
    condition     = var.partitions >= 1
    error_message = "partitions must be at least 1."
  }
}

variable "replication_factor" {
  description = "Replication factor of every topic."
  type        = number
  default     = 3
}

variable "min_insync_replicas" {
  description = "min.insync.replicas (the API and replay produce with acks=all)."
  type        = number
  default     = 2
}

variable "retention_hours" {
  description = "Retention of each topic, in hours; the DLQ keeps longer so failures can be replayed."
  type = object({
    events     = optional(number, 72)
    bad_events = optional(number, 168)
    dlq        = optional(number, 336)
  })
  default = {}
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
