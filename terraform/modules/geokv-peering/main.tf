# Cross-region (or same-region) VPC peering between two geokv regions, with
# routes in both directions. The accepter side may be another account: the
# owner id is read from the accepter provider's credentials.

locals {
  common_prefix = min(
    tonumber(split("/", var.requester_cidr)[1]),
    tonumber(split("/", var.accepter_cidr)[1]),
  )
}

data "aws_region" "accepter" {
  provider = aws.accepter
}

data "aws_caller_identity" "accepter" {
  provider = aws.accepter
}

resource "aws_vpc_peering_connection" "this" {
  provider = aws.requester

  vpc_id        = var.requester_vpc_id
  peer_vpc_id   = var.accepter_vpc_id
  peer_region   = data.aws_region.accepter.name
  peer_owner_id = data.aws_caller_identity.accepter.account_id
  auto_accept   = false # cannot auto-accept across regions; the accepter does it

  tags = merge(var.tags, { Name = var.name, Side = "requester" })

  lifecycle {
    precondition {
      # Two CIDR blocks overlap iff they agree on the shorter of the two prefixes.
      condition = (
        cidrhost(format("%s/%d", cidrhost(var.requester_cidr, 0), local.common_prefix), 0) !=
        cidrhost(format("%s/%d", cidrhost(var.accepter_cidr, 0), local.common_prefix), 0)
      )
      error_message = "Peered VPC CIDRs must not overlap (${var.requester_cidr} vs ${var.accepter_cidr})."
    }
  }
}

resource "aws_vpc_peering_connection_accepter" "this" {
  provider = aws.accepter

  vpc_peering_connection_id = aws_vpc_peering_connection.this.id
  auto_accept               = true

  tags = merge(var.tags, { Name = var.name, Side = "accepter" })
}

# Routes reference the accepter resource so they are only created once the
# connection is active.
resource "aws_route" "requester_to_accepter" {
  provider = aws.requester
  count    = length(var.requester_route_table_ids)

  route_table_id            = var.requester_route_table_ids[count.index]
  destination_cidr_block    = var.accepter_cidr
  vpc_peering_connection_id = aws_vpc_peering_connection_accepter.this.id
}

resource "aws_route" "accepter_to_requester" {
  provider = aws.accepter
  count    = length(var.accepter_route_table_ids)

  route_table_id            = var.accepter_route_table_ids[count.index]
  destination_cidr_block    = var.requester_cidr
  vpc_peering_connection_id = aws_vpc_peering_connection_accepter.this.id
}
