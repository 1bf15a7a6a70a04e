locals {
  dc_names         = [for dc in var.datacenters : dc.name]
  node_count_by_dc = { for dc in var.datacenters : dc.name => length(dc.nodes) }

  # datacenter -> racks (one per availability zone, sorted by name) -> nodes
  # (in the order the region module lists them, i.e. by node index).
  datacenters = [
    for dc in var.datacenters : {
      name = dc.name
      racks = [
        for az in sort(distinct([for n in dc.nodes : n.az])) : {
          name = az
          nodes = [
            for n in dc.nodes : {
              id             = n.id
              client_address = format("%s:%d", n.private_ip, var.client_port)
              peer_address   = format("%s:%d", n.private_ip, var.peer_port)
              admin_address  = format("%s:%d", n.private_ip, var.admin_port)
            } if n.az == az
          ]
        }
      ]
    }
  ]

  topology = {
    cluster_name = var.cluster_name
    defaults     = { vnodes = var.vnodes }
    datacenters  = local.datacenters
    keyspaces    = { for name, ks in var.keyspaces : name => { replication = ks.replication } }
  }

  # Replication settings that cannot be satisfied: unknown datacenter or RF > nodes.
  replication_problems = flatten([
    for ks_name, ks in var.keyspaces : [
      for dc, rf in ks.replication : (
        contains(local.dc_names, dc)
        ? format("keyspace %q wants %d replicas in %q, which has only %d node(s)", ks_name, rf, dc, local.node_count_by_dc[dc])
        : format("keyspace %q replicates to %q, which is not a datacenter of this cluster (have: %s)", ks_name, dc, join(", ", local.dc_names))
      ) if !contains(local.dc_names, dc) || rf > lookup(local.node_count_by_dc, dc, 0)
    ]
  ])

  header = <<-EOT
    # geokv topology for cluster ${var.cluster_name}.
    # Rendered by terraform/modules/geokv-topology; do not edit by hand.
    # Every node gets this exact file at /etc/geokv/topology.yaml.
  EOT

  yaml = "${local.header}${yamlencode(local.topology)}"
}
