output "yaml" {
  description = "The rendered topology file (YAML). Pass it unchanged to every geokv-region module."
  value       = local.yaml

  precondition {
    condition     = length(local.replication_problems) == 0
    error_message = "Keyspace replication cannot be satisfied: ${join("; ", local.replication_problems)}."
  }
}

output "topology" {
  description = "The topology as a Terraform object (same content as `yaml`)."
  value       = local.topology
}

output "sha256" {
  description = "SHA-256 of the rendered YAML; handy to check which topology a node runs (sha256sum /etc/geokv/topology.yaml)."
  value       = sha256(local.yaml)
}

output "node_count" {
  description = "Number of nodes per datacenter."
  value       = local.node_count_by_dc
}
