output "peering_connection_id" {
  description = "VPC peering connection id."
  value       = aws_vpc_peering_connection.this.id
}

output "accept_status" {
  description = "Status of the peering connection as seen by the accepter (\"active\" when routes work)."
  value       = aws_vpc_peering_connection_accepter.this.accept_status
}
