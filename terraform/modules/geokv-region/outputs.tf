output "datacenter" {
  description = "Datacenter name of this region in the topology (the AWS region)."
  value       = local.region
}

output "nodes" {
  description = "Planned nodes of this region: id, az (= rack) and fixed private_ip. Known at plan time; feed it to the geokv-topology module."
  value = [
    for n in local.nodes : {
      id         = n.id
      az         = n.az
      private_ip = n.private_ip
    }
  ]
}

output "instance_ids" {
  description = "EC2 instance id per node id."
  value       = { for id, inst in aws_instance.node : id => inst.id }
}

output "data_volume_ids" {
  description = "Data EBS volume id per node id."
  value       = { for id, v in aws_ebs_volume.data : id => v.id }
}

output "client_endpoints" {
  description = "Client gRPC endpoints (ip:port) of this region's nodes."
  value       = [for n in local.nodes : format("%s:%d", n.private_ip, var.client_port)]
}

output "vpc_id" {
  description = "VPC id (created or given)."
  value       = local.vpc_id
}

output "vpc_cidr" {
  description = "CIDR the node subnets are carved from (the VPC CIDR when the module created the VPC)."
  value       = var.vpc_cidr
}

output "subnet_ids" {
  description = "Node subnet ids, one per availability zone (same order as availability_zones)."
  value       = aws_subnet.node[*].id
}

output "availability_zones" {
  description = "Availability zones (racks) in use, in node round-robin order."
  value       = local.azs
}

output "route_table_id" {
  description = "Route table of the node subnets; add VPC peering routes here."
  value       = local.route_table_id
}

output "security_group_id" {
  description = "Security group of the nodes."
  value       = aws_security_group.node.id
}

output "iam_role_names" {
  description = "IAM role of each node, by node id (attach extra policies here)."
  value       = { for id, r in aws_iam_role.node : id => r.name }
}

output "secret_parameter_names" {
  description = "The SSM parameters each node reads (names only, never values): create them before apply (see the README's Security section)."
  value = var.insecure ? {} : {
    for id in keys(local.nodes_by_id) : id => [
      "${var.secrets_parameter_prefix}/tls/ca.pem",
      "${var.secrets_parameter_prefix}/tls/node-${id}.pem",
      "${var.secrets_parameter_prefix}/tls/node-${id}-key.pem",
      "${var.secrets_parameter_prefix}/admin-token",
    ]
  }
}

output "nat_gateway_public_ip" {
  description = "Public egress IP of the nodes (null without a NAT gateway); allow-list it where the binary is hosted if needed."
  value       = try(aws_eip.nat[0].public_ip, null)
}
