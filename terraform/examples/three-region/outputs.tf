output "client_endpoints" {
  description = "Client gRPC endpoints (ip:7070) per datacenter. Point each application at the endpoints of its own region."
  value = {
    (module.use1.datacenter)  = module.use1.client_endpoints
    (module.euw1.datacenter)  = module.euw1.client_endpoints
    (module.apse1.datacenter) = module.apse1.client_endpoints
  }
}

output "nodes" {
  description = "Every node (id, az, private_ip) per datacenter."
  value = {
    (module.use1.datacenter)  = module.use1.nodes
    (module.euw1.datacenter)  = module.euw1.nodes
    (module.apse1.datacenter) = module.apse1.nodes
  }
}

output "instance_ids" {
  description = "EC2 instance id per node id."
  value       = merge(module.use1.instance_ids, module.euw1.instance_ids, module.apse1.instance_ids)
}

output "topology_yaml" {
  description = "The topology every node got at /etc/geokv/topology.yaml (terraform output -raw topology_yaml)."
  value       = module.topology.yaml
}

output "topology_sha256" {
  description = "SHA-256 of the topology; compare with `sha256sum /etc/geokv/topology.yaml` on a node."
  value       = module.topology.sha256
}

output "vpcs" {
  description = "VPC id and CIDR per datacenter."
  value = {
    (module.use1.datacenter)  = { id = module.use1.vpc_id, cidr = module.use1.vpc_cidr }
    (module.euw1.datacenter)  = { id = module.euw1.vpc_id, cidr = module.euw1.vpc_cidr }
    (module.apse1.datacenter) = { id = module.apse1.vpc_id, cidr = module.apse1.vpc_cidr }
  }
}

output "peering_connection_ids" {
  description = "VPC peering connection per region pair."
  value = {
    "us-east-1<->eu-west-1"      = module.peering_use1_euw1.peering_connection_id
    "us-east-1<->ap-southeast-1" = module.peering_use1_apse1.peering_connection_id
    "eu-west-1<->ap-southeast-1" = module.peering_euw1_apse1.peering_connection_id
  }
}

output "secret_parameter_names" {
  description = "The SSM parameters each node reads (names only): create them before apply (README, Security)."
  value       = merge(module.use1.secret_parameter_names, module.euw1.secret_parameter_names, module.apse1.secret_parameter_names)
}
