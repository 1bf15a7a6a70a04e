locals {
  regions   = ["us-east-1", "eu-west-1", "ap-southeast-1"]
  all_cidrs = [for r in local.regions : var.vpc_cidrs[r]]

  client_cidrs     = length(var.client_cidrs) > 0 ? var.client_cidrs : local.all_cidrs
  monitoring_cidrs = length(var.monitoring_cidrs) > 0 ? var.monitoring_cidrs : local.all_cidrs

  keyspaces = var.keyspaces != null ? var.keyspaces : {
    default = { replication = { for r in local.regions : r => var.replication_factor } }
  }

  default_tags = merge(var.tags, {
    Project = "geokv"
    Cluster = var.cluster_name
  })

  # Settings shared by the three region modules.
  common = {
    cluster_name                = var.cluster_name
    node_count                  = var.nodes_per_region
    instance_type               = var.instance_type
    architecture                = var.architecture
    data_volume_size_gb         = var.data_volume_size_gb
    geokv_release_url           = var.geokv_release_url
    geokv_release_s3_uri        = var.geokv_release_s3_uri
    geokv_release_s3_region     = var.geokv_release_s3_region
    geokv_release_sha256        = var.geokv_release_sha256
    otel_exporter_otlp_endpoint = var.otel_exporter_otlp_endpoint
    extra_environment           = var.extra_environment
    key_name                    = var.key_name
    # Secrets: names of SSM parameters only; no secret value is a variable.
    secrets_parameter_prefix = coalesce(var.secrets_parameter_prefix, "/geokv/${var.cluster_name}")
    secrets_region           = var.secrets_region
    insecure                 = var.insecure
  }
}

# ---------------------------------------------------------------------------
# Topology: rendered once from the planned node lists of all regions and given
# verbatim to every node. The region modules' `nodes` outputs depend only on
# their inputs (CIDRs, AZs, counts), not on any resource, so this module can
# consume them while feeding `topology_yaml` back in without a cycle.
# ---------------------------------------------------------------------------

module "topology" {
  source = "../../modules/geokv-topology"

  cluster_name = var.cluster_name
  vnodes       = var.vnodes
  datacenters = [
    { name = module.use1.datacenter, nodes = module.use1.nodes },
    { name = module.euw1.datacenter, nodes = module.euw1.nodes },
    { name = module.apse1.datacenter, nodes = module.apse1.nodes },
  ]
  keyspaces = local.keyspaces
}

# ---------------------------------------------------------------------------
# Regions (datacenters)
# ---------------------------------------------------------------------------

module "use1" {
  source    = "../../modules/geokv-region"
  providers = { aws = aws.use1 }

  node_id_prefix     = "use1"
  vpc_cidr           = var.vpc_cidrs["us-east-1"]
  availability_zones = var.availability_zones["us-east-1"]
  peer_cidrs         = local.all_cidrs
  client_cidrs       = local.client_cidrs
  monitoring_cidrs   = local.monitoring_cidrs
  ssh_cidrs          = var.ssh_cidrs
  topology_yaml      = module.topology.yaml

  cluster_name                = local.common.cluster_name
  node_count                  = local.common.node_count
  instance_type               = local.common.instance_type
  architecture                = local.common.architecture
  data_volume_size_gb         = local.common.data_volume_size_gb
  geokv_release_url           = local.common.geokv_release_url
  geokv_release_s3_uri        = local.common.geokv_release_s3_uri
  geokv_release_s3_region     = local.common.geokv_release_s3_region
  geokv_release_sha256        = local.common.geokv_release_sha256
  otel_exporter_otlp_endpoint = local.common.otel_exporter_otlp_endpoint
  extra_environment           = local.common.extra_environment
  key_name                    = local.common.key_name
  secrets_parameter_prefix    = local.common.secrets_parameter_prefix
  secrets_region              = local.common.secrets_region
  insecure                    = local.common.insecure
}

module "euw1" {
  source    = "../../modules/geokv-region"
  providers = { aws = aws.euw1 }

  node_id_prefix     = "euw1"
  vpc_cidr           = var.vpc_cidrs["eu-west-1"]
  availability_zones = var.availability_zones["eu-west-1"]
  peer_cidrs         = local.all_cidrs
  client_cidrs       = local.client_cidrs
  monitoring_cidrs   = local.monitoring_cidrs
  ssh_cidrs          = var.ssh_cidrs
  topology_yaml      = module.topology.yaml

  cluster_name                = local.common.cluster_name
  node_count                  = local.common.node_count
  instance_type               = local.common.instance_type
  architecture                = local.common.architecture
  data_volume_size_gb         = local.common.data_volume_size_gb
  geokv_release_url           = local.common.geokv_release_url
  geokv_release_s3_uri        = local.common.geokv_release_s3_uri
  geokv_release_s3_region     = local.common.geokv_release_s3_region
  geokv_release_sha256        = local.common.geokv_release_sha256
  otel_exporter_otlp_endpoint = local.common.otel_exporter_otlp_endpoint
  extra_environment           = local.common.extra_environment
  key_name                    = local.common.key_name
  secrets_parameter_prefix    = local.common.secrets_parameter_prefix
  secrets_region              = local.common.secrets_region
  insecure                    = local.common.insecure
}

module "apse1" {
  source    = "../../modules/geokv-region"
  providers = { aws = aws.apse1 }

  node_id_prefix     = "apse1"
  vpc_cidr           = var.vpc_cidrs["ap-southeast-1"]
  availability_zones = var.availability_zones["ap-southeast-1"]
  peer_cidrs         = local.all_cidrs
  client_cidrs       = local.client_cidrs
  monitoring_cidrs   = local.monitoring_cidrs
  ssh_cidrs          = var.ssh_cidrs
  topology_yaml      = module.topology.yaml

  cluster_name                = local.common.cluster_name
  node_count                  = local.common.node_count
  instance_type               = local.common.instance_type
  architecture                = local.common.architecture
  data_volume_size_gb         = local.common.data_volume_size_gb
  geokv_release_url           = local.common.geokv_release_url
  geokv_release_s3_uri        = local.common.geokv_release_s3_uri
  geokv_release_s3_region     = local.common.geokv_release_s3_region
  geokv_release_sha256        = local.common.geokv_release_sha256
  otel_exporter_otlp_endpoint = local.common.otel_exporter_otlp_endpoint
  extra_environment           = local.common.extra_environment
  key_name                    = local.common.key_name
  secrets_parameter_prefix    = local.common.secrets_parameter_prefix
  secrets_region              = local.common.secrets_region
  insecure                    = local.common.insecure
}

# ---------------------------------------------------------------------------
# Full mesh of VPC peerings (3 pairs) with routes both ways.
# ---------------------------------------------------------------------------

module "peering_use1_euw1" {
  source = "../../modules/geokv-peering"
  providers = {
    aws.requester = aws.use1
    aws.accepter  = aws.euw1
  }

  name                      = "${var.cluster_name}-us-east-1-eu-west-1"
  requester_vpc_id          = module.use1.vpc_id
  requester_cidr            = module.use1.vpc_cidr
  requester_route_table_ids = [module.use1.route_table_id]
  accepter_vpc_id           = module.euw1.vpc_id
  accepter_cidr             = module.euw1.vpc_cidr
  accepter_route_table_ids  = [module.euw1.route_table_id]
}

module "peering_use1_apse1" {
  source = "../../modules/geokv-peering"
  providers = {
    aws.requester = aws.use1
    aws.accepter  = aws.apse1
  }

  name                      = "${var.cluster_name}-us-east-1-ap-southeast-1"
  requester_vpc_id          = module.use1.vpc_id
  requester_cidr            = module.use1.vpc_cidr
  requester_route_table_ids = [module.use1.route_table_id]
  accepter_vpc_id           = module.apse1.vpc_id
  accepter_cidr             = module.apse1.vpc_cidr
  accepter_route_table_ids  = [module.apse1.route_table_id]
}

module "peering_euw1_apse1" {
  source = "../../modules/geokv-peering"
  providers = {
    aws.requester = aws.euw1
    aws.accepter  = aws.apse1
  }

  name                      = "${var.cluster_name}-eu-west-1-ap-southeast-1"
  requester_vpc_id          = module.euw1.vpc_id
  requester_cidr            = module.euw1.vpc_cidr
  requester_route_table_ids = [module.euw1.route_table_id]
  accepter_vpc_id           = module.apse1.vpc_id
  accepter_cidr             = module.apse1.vpc_cidr
  accepter_route_table_ids  = [module.apse1.route_table_id]
}
