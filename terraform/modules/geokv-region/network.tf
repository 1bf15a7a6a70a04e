# ---------------------------------------------------------------------------
# VPC (optional), node subnets (one per AZ), routing, NAT, S3 endpoint.
# ---------------------------------------------------------------------------

resource "aws_vpc" "this" {
  count = var.create_vpc ? 1 : 0

  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = merge(local.tags, { Name = local.name_prefix })
}

resource "aws_subnet" "node" {
  count = local.az_count

  vpc_id                  = local.vpc_id
  availability_zone       = local.azs[count.index]
  cidr_block              = local.subnet_cidrs[count.index]
  map_public_ip_on_launch = false

  tags = merge(local.tags, {
    Name          = "${local.name_prefix}-nodes-${local.azs[count.index]}"
    "geokv:rack"  = local.azs[count.index]
    "geokv:usage" = "nodes"
  })

  lifecycle {
    precondition {
      condition     = var.create_vpc || (var.vpc_id != null && var.existing_route_table_id != null)
      error_message = "With create_vpc = false, both vpc_id and existing_route_table_id must be set."
    }

    precondition {
      condition     = length(local.subnet_cidrs) == local.az_count
      error_message = "subnet_cidrs must have exactly one entry per availability zone (${local.az_count})."
    }

    precondition {
      condition     = length(var.subnet_cidrs) > 0 || pow(2, var.subnet_newbits) - 1 >= local.az_count
      error_message = "subnet_newbits is too small: need ${local.az_count} node subnets plus one reserved public block."
    }

    precondition {
      condition     = local.max_host_used < local.min_subnet_hosts
      error_message = "The node subnets are too small for node_count = ${var.node_count} starting at host ${var.node_ip_offset}; use a larger vpc_cidr or a smaller subnet_newbits."
    }
  }
}

resource "aws_route_table" "nodes" {
  count = var.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id

  tags = merge(local.tags, { Name = "${local.name_prefix}-nodes" })
}

resource "aws_route_table_association" "node" {
  count = local.az_count

  subnet_id      = aws_subnet.node[count.index].id
  route_table_id = local.route_table_id
}

# --- Internet egress for the (private) nodes: IGW + one NAT gateway ---------

resource "aws_internet_gateway" "this" {
  count = var.create_vpc && var.enable_nat_gateway ? 1 : 0

  vpc_id = aws_vpc.this[0].id

  tags = merge(local.tags, { Name = local.name_prefix })
}

resource "aws_subnet" "public" {
  count = var.create_vpc && var.enable_nat_gateway ? 1 : 0

  vpc_id                  = aws_vpc.this[0].id
  availability_zone       = local.azs[0]
  cidr_block              = local.public_subnet_cidr
  map_public_ip_on_launch = false

  tags = merge(local.tags, {
    Name          = "${local.name_prefix}-public"
    "geokv:usage" = "nat"
  })
}

resource "aws_route_table" "public" {
  count = var.create_vpc && var.enable_nat_gateway ? 1 : 0

  vpc_id = aws_vpc.this[0].id

  tags = merge(local.tags, { Name = "${local.name_prefix}-public" })
}

resource "aws_route" "public_default" {
  count = var.create_vpc && var.enable_nat_gateway ? 1 : 0

  route_table_id         = aws_route_table.public[0].id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this[0].id
}

resource "aws_route_table_association" "public" {
  count = var.create_vpc && var.enable_nat_gateway ? 1 : 0

  subnet_id      = aws_subnet.public[0].id
  route_table_id = aws_route_table.public[0].id
}

resource "aws_eip" "nat" {
  count = var.create_vpc && var.enable_nat_gateway ? 1 : 0

  domain = "vpc"

  tags = merge(local.tags, { Name = "${local.name_prefix}-nat" })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_nat_gateway" "this" {
  count = var.create_vpc && var.enable_nat_gateway ? 1 : 0

  allocation_id = aws_eip.nat[0].id
  subnet_id     = aws_subnet.public[0].id

  tags = merge(local.tags, { Name = local.name_prefix })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route" "nodes_default" {
  count = var.create_vpc && var.enable_nat_gateway ? 1 : 0

  route_table_id         = aws_route_table.nodes[0].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[0].id
}

# Free gateway endpoint: S3 downloads (the geokv binary) skip the NAT gateway.
resource "aws_vpc_endpoint" "s3" {
  count = var.create_vpc ? 1 : 0

  vpc_id            = aws_vpc.this[0].id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.nodes[0].id]

  tags = merge(local.tags, { Name = "${local.name_prefix}-s3" })
}
