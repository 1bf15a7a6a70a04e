# ---------------------------------------------------------------------------
# Security group: 7070 from clients, 7071 from every region's nodes,
# 7072 (admin HTTPS) from this region's nodes and monitoring, optional SSH,
# all egress.
# ---------------------------------------------------------------------------

resource "aws_security_group" "node" {
  name_prefix = "${local.name_prefix}-node-"
  description = "geokv nodes of ${var.cluster_name} in ${local.region}"
  vpc_id      = local.vpc_id

  tags = merge(local.tags, { Name = "${local.name_prefix}-node" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "client" {
  for_each = toset(var.client_cidrs)

  security_group_id = aws_security_group.node.id
  description       = "geokv client gRPC"
  ip_protocol       = "tcp"
  from_port         = var.client_port
  to_port           = var.client_port
  cidr_ipv4         = each.value

  tags = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "peer" {
  # This region's own CIDR is always a peer (intra-datacenter replication).
  for_each = toset(concat([var.vpc_cidr], var.peer_cidrs))

  security_group_id = aws_security_group.node.id
  description       = "geokv internode gRPC"
  ip_protocol       = "tcp"
  from_port         = var.peer_port
  to_port           = var.peer_port
  cidr_ipv4         = each.value

  tags = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "admin" {
  # This region's own CIDR always: a removal's finisher polls the gainers'
  # GET /movement on this port, and they are nodes of the dead node's
  # datacenter (= this region), so a narrow monitoring CIDR must not stop
  # `geokv removenode` from finishing.
  for_each = toset(concat([var.vpc_cidr], var.monitoring_cidrs))

  security_group_id = aws_security_group.node.id
  description       = "geokv admin HTTPS (/health, /metrics, operator commands)"
  ip_protocol       = "tcp"
  from_port         = var.admin_port
  to_port           = var.admin_port
  cidr_ipv4         = each.value

  tags = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each = toset(var.ssh_cidrs)

  security_group_id = aws_security_group.node.id
  description       = "SSH"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = each.value

  tags = local.tags
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.node.id
  description       = "All egress (binary download, OTLP, AWS APIs, peers)"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"

  tags = local.tags
}
