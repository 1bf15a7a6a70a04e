variable "cluster_name" {
  description = "Cluster name written to `cluster_name` in the topology file."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,62}$", var.cluster_name))
    error_message = "cluster_name must be 1-63 characters of lowercase letters, digits and '-', starting with a letter or digit."
  }
}

variable "vnodes" {
  description = "Default number of virtual nodes per node on the hash ring (`defaults.vnodes`)."
  type        = number
  default     = 256

  validation {
    condition     = var.vnodes >= 1 && var.vnodes <= 4096 && floor(var.vnodes) == var.vnodes
    error_message = "vnodes must be a whole number between 1 and 4096."
  }
}

variable "datacenters" {
  description = <<-EOT
    Datacenters in the order they should appear in the topology. One entry per AWS region:
    `name` is the datacenter name (the AWS region, e.g. "us-east-1") and `nodes` is the
    `nodes` output of the geokv-region module for that region (id, az, private_ip).
    Racks are derived from `az` (rack = availability zone).
  EOT
  type = list(object({
    name = string
    nodes = list(object({
      id         = string
      az         = string
      private_ip = string
    }))
  }))

  validation {
    condition     = length(var.datacenters) > 0
    error_message = "At least one datacenter is required."
  }

  validation {
    condition     = length(distinct([for dc in var.datacenters : dc.name])) == length(var.datacenters)
    error_message = "Datacenter names must be unique."
  }

  validation {
    condition     = alltrue([for dc in var.datacenters : length(dc.nodes) > 0])
    error_message = "Every datacenter needs at least one node."
  }

  validation {
    condition = (
      length(distinct(flatten([for dc in var.datacenters : [for n in dc.nodes : n.id]]))) ==
      length(flatten([for dc in var.datacenters : [for n in dc.nodes : n.id]]))
    )
    error_message = "Node ids must be unique across the whole cluster."
  }

  validation {
    condition = (
      length(distinct(flatten([for dc in var.datacenters : [for n in dc.nodes : n.private_ip]]))) ==
      length(flatten([for dc in var.datacenters : [for n in dc.nodes : n.private_ip]]))
    )
    error_message = "Node private IPs must be unique across the whole cluster (are two regions using overlapping VPC CIDRs?)."
  }

  validation {
    condition = alltrue(flatten([
      for dc in var.datacenters : [
        for n in dc.nodes : can(regex("^[a-z0-9][a-z0-9-]*$", n.id)) && can(cidrhost("${n.private_ip}/32", 0)) && n.az != ""
      ]
    ]))
    error_message = "Each node needs an id of lowercase letters, digits and '-', a valid IPv4 private_ip and a non-empty az."
  }
}

variable "keyspaces" {
  description = <<-EOT
    Keyspaces and their per-datacenter replication factors, e.g.
    { default = { replication = { "us-east-1" = 3, "eu-west-1" = 3 } } }.
    Every datacenter named here must exist in `datacenters` and have at least as many
    nodes as its replication factor (checked when the YAML is rendered).
  EOT
  type = map(object({
    replication = map(number)
  }))

  validation {
    condition     = length(var.keyspaces) > 0
    error_message = "At least one keyspace is required."
  }

  validation {
    condition = alltrue(flatten([
      for ks in values(var.keyspaces) : [for rf in values(ks.replication) : rf >= 1 && floor(rf) == rf]
    ]))
    error_message = "Replication factors must be whole numbers >= 1."
  }

  validation {
    condition     = alltrue([for ks in values(var.keyspaces) : length(ks.replication) > 0])
    error_message = "Every keyspace must replicate to at least one datacenter."
  }

  validation {
    condition     = alltrue([for name in keys(var.keyspaces) : can(regex("^[A-Za-z0-9_][A-Za-z0-9_-]*$", name))])
    error_message = "Keyspace names may contain letters, digits, '_' and '-'."
  }
}

variable "client_port" {
  description = "Client gRPC port of every node (client_address)."
  type        = number
  default     = 7070

  validation {
    condition     = var.client_port >= 1 && var.client_port <= 65535
    error_message = "client_port must be a TCP port (1-65535)."
  }
}

variable "peer_port" {
  description = "Internode gRPC port of every node (peer_address)."
  type        = number
  default     = 7071

  validation {
    condition     = var.peer_port >= 1 && var.peer_port <= 65535
    error_message = "peer_port must be a TCP port (1-65535)."
  }
}

variable "admin_port" {
  description = "Admin HTTP port of every node (admin_address: /health, /metrics)."
  type        = number
  default     = 7072

  validation {
    condition     = var.admin_port >= 1 && var.admin_port <= 65535
    error_message = "admin_port must be a TCP port (1-65535)."
  }
}
