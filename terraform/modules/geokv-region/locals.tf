data "aws_region" "current" {}

data "aws_partition" "current" {}

# Only read when availability_zones is not given.
data "aws_availability_zones" "available" {
  count = length(var.availability_zones) == 0 ? 1 : 0
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  region = data.aws_region.current.name

  # Where the nodes read their secrets (SSM parameters are regional).
  secrets_region = coalesce(var.secrets_region, local.region)

  azs = (
    length(var.availability_zones) > 0
    ? var.availability_zones
    : slice(
      data.aws_availability_zones.available[0].names, 0,
      min(var.az_count, length(data.aws_availability_zones.available[0].names))
    )
  )
  az_count = length(local.azs)

  # One node subnet per AZ. The last cidrsubnet block is kept for the NAT
  # gateway's public subnet.
  subnet_cidrs = (
    length(var.subnet_cidrs) > 0
    ? var.subnet_cidrs
    : [for i in range(local.az_count) : cidrsubnet(var.vpc_cidr, var.subnet_newbits, i)]
  )
  public_subnet_cidr = cidrsubnet(var.vpc_cidr, var.subnet_newbits, pow(2, var.subnet_newbits) - 1)

  # Node i -> AZ i % az_count, host (offset + i / az_count) of that AZ's subnet.
  # Everything here is a pure function of input variables, so the node list (and
  # thus the topology) is known at plan time, before any instance exists. This
  # is also what lets the topology module consume `nodes` while its own output
  # feeds back into `topology_yaml` without a dependency cycle.
  nodes = [
    for i in range(var.node_count) : {
      id         = format("%s-n%d", var.node_id_prefix, i + 1)
      index      = i
      az_index   = i % local.az_count
      az         = local.azs[i % local.az_count]
      private_ip = cidrhost(local.subnet_cidrs[i % local.az_count], var.node_ip_offset + floor(i / local.az_count))
    }
  ]
  nodes_by_id = { for n in local.nodes : n.id => n }

  # Largest host number used in any subnet vs. the largest usable one
  # (AWS reserves the last address, i.e. host 2^bits - 1).
  max_host_used = var.node_ip_offset + ceil(var.node_count / local.az_count) - 1
  min_subnet_hosts = min([
    for c in local.subnet_cidrs : pow(2, 32 - tonumber(split("/", c)[1])) - 2
  ]...)

  release_source = var.geokv_release_s3_uri != null ? "s3" : "url"
  release_s3 = (
    var.geokv_release_s3_uri != null
    ? regex("^s3://(?P<bucket>[^/]+)/(?P<key>.+)$", var.geokv_release_s3_uri)
    : null
  )

  vpc_id         = var.create_vpc ? aws_vpc.this[0].id : var.vpc_id
  route_table_id = var.create_vpc ? aws_route_table.nodes[0].id : var.existing_route_table_id

  name_prefix = "${var.cluster_name}-${local.region}"

  tags = merge(var.tags, {
    "geokv:cluster"    = var.cluster_name
    "geokv:datacenter" = local.region
    "ManagedBy"        = "terraform"
  })
}
