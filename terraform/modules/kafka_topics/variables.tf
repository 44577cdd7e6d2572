# Inputs of the topics module; checks.tf ties them together.

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
  description = "Replication factor of every topic: 3, so one broker can be down while another is restarted."
  type        = number
  default     = 3

  validation {
    condition     = var.replication_factor >= 1 && floor(var.replication_factor) == var.replication_factor
    error_message = "replication_factor must be a whole number >= 1."
  }
}

variable "min_insync_replicas" {
  description = "min.insync.replicas (the API and replay produce with acks=all): 2, so an acknowledged event is on two brokers; below replication_factor, so one broker down still accepts writes."
  type        = number
  default     = 2

  validation {
    condition     = var.min_insync_replicas >= 1 && floor(var.min_insync_replicas) == var.min_insync_replicas
    error_message = "min_insync_replicas must be a whole number >= 1."
  }
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
