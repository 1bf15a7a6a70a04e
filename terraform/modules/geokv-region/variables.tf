# ---------------------------------------------------------------------------
# Identity
# ---------------------------------------------------------------------------

variable "cluster_name" {
  description = "Cluster name; used in resource names and tags. Should match the topology's cluster_name."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}$", var.cluster_name))
    error_message = "cluster_name must be 1-31 characters of lowercase letters, digits and '-'."
  }
}

variable "node_id_prefix" {
  description = "Prefix of node ids in this region; nodes are named <prefix>-n1, <prefix>-n2, ... (e.g. \"use1\")."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,20}$", var.node_id_prefix))
    error_message = "node_id_prefix must be 1-21 characters of lowercase letters, digits and '-'."
  }
}

variable "node_count" {
  description = "Number of geokv nodes in this region, spread round-robin over the availability zones. Must be >= the largest replication factor any keyspace uses for this datacenter (the topology module checks this)."
  type        = number
  default     = 3

  validation {
    condition     = var.node_count >= 1 && var.node_count <= 100 && floor(var.node_count) == var.node_count
    error_message = "node_count must be a whole number between 1 and 100."
  }
}

variable "topology_yaml" {
  description = "The rendered topology file (output `yaml` of the geokv-topology module). Written verbatim to /etc/geokv/topology.yaml on every node."
  type        = string

  validation {
    condition     = can(yamldecode(var.topology_yaml)) && trimspace(var.topology_yaml) != ""
    error_message = "topology_yaml must be a non-empty YAML document."
  }
}

# ---------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------

variable "create_vpc" {
  description = "Create a VPC (with internet gateway, one NAT gateway and an S3 gateway endpoint). Set false to deploy into an existing VPC given by vpc_id / existing_route_table_id."
  type        = bool
  default     = true
}

variable "vpc_id" {
  description = "Existing VPC to deploy into when create_vpc = false. Ignored otherwise."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "existing_route_table_id" {
  description = "When create_vpc = false: route table (with working egress, e.g. via NAT) that the node subnets are associated with; peering routes are added to it."
  type        = string
  default     = null

  validation {
    condition     = var.existing_route_table_id == null || can(regex("^rtb-[0-9a-f]+$", var.existing_route_table_id))
    error_message = "existing_route_table_id must look like rtb-0123456789abcdef0."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the VPC (create_vpc = true), or of the block inside the existing VPC that node subnets are carved from. Must not overlap the other regions' CIDRs (VPC peering)."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && tonumber(split("/", var.vpc_cidr)[1]) <= 24
    error_message = "vpc_cidr must be an IPv4 CIDR block of size /24 or larger, e.g. 10.10.0.0/16."
  }
}

variable "availability_zones" {
  description = "Availability zones (= geokv racks) to spread nodes over, in a fixed order. Empty = the first az_count available zones of the region. Do not reorder once deployed: node i lives in zone i % length(zones)."
  type        = list(string)
  default     = []

  validation {
    condition     = length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "availability_zones must not contain duplicates."
  }
}

variable "az_count" {
  description = "Number of availability zones to use when availability_zones is empty."
  type        = number
  default     = 3

  validation {
    condition     = var.az_count >= 1 && var.az_count <= 6
    error_message = "az_count must be between 1 and 6."
  }
}

variable "subnet_newbits" {
  description = "Bits added to vpc_cidr for each node subnet (cidrsubnet newbits); subnet i = cidrsubnet(vpc_cidr, newbits, i). The last block is reserved for the NAT gateway's public subnet."
  type        = number
  default     = 4

  validation {
    condition     = var.subnet_newbits >= 2 && var.subnet_newbits <= 8
    error_message = "subnet_newbits must be between 2 and 8."
  }
}

variable "subnet_cidrs" {
  description = "Explicit node subnet CIDRs, one per availability zone (same order). Empty = derived from vpc_cidr and subnet_newbits."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.subnet_cidrs : can(cidrnetmask(c))])
    error_message = "subnet_cidrs must be IPv4 CIDR blocks."
  }
}

variable "node_ip_offset" {
  description = "Host number (cidrhost) of the first node in each subnet; the k-th node of a zone gets cidrhost(subnet, offset + k). AWS reserves hosts 0-3 and the last address."
  type        = number
  default     = 10

  validation {
    condition     = var.node_ip_offset >= 4 && floor(var.node_ip_offset) == var.node_ip_offset
    error_message = "node_ip_offset must be a whole number >= 4 (AWS reserves the first four addresses of a subnet)."
  }
}

variable "enable_nat_gateway" {
  description = "With create_vpc: create one NAT gateway so nodes (which have no public IP) can download the binary and reach OTLP/package endpoints. Costs money per hour and per GB."
  type        = bool
  default     = true
}

variable "client_cidrs" {
  description = "CIDRs allowed to reach the client gRPC port (7070)."
  type        = list(string)

  validation {
    condition     = alltrue([for c in var.client_cidrs : can(cidrnetmask(c))])
    error_message = "client_cidrs must be IPv4 CIDR blocks."
  }
}

variable "peer_cidrs" {
  description = "CIDRs of every region's nodes (all VPC CIDRs of the cluster), allowed to reach the internode gRPC port (7071). This region's vpc_cidr is always added."
  type        = list(string)

  validation {
    condition     = length(var.peer_cidrs) > 0 && alltrue([for c in var.peer_cidrs : can(cidrnetmask(c))])
    error_message = "peer_cidrs must be a non-empty list of IPv4 CIDR blocks."
  }
}

variable "monitoring_cidrs" {
  description = "CIDRs allowed to reach the admin HTTP port (7072: /health, /metrics), e.g. your Prometheus. This region's vpc_cidr is always added (nodes poll each other's /movement during a removal)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.monitoring_cidrs : can(cidrnetmask(c))])
    error_message = "monitoring_cidrs must be IPv4 CIDR blocks."
  }
}

variable "ssh_cidrs" {
  description = "CIDRs allowed to SSH (22). Empty = no SSH rule (use SSM Session Manager instead)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.ssh_cidrs : can(cidrnetmask(c)) && c != "0.0.0.0/0"])
    error_message = "ssh_cidrs must be IPv4 CIDR blocks, and not 0.0.0.0/0."
  }
}

variable "client_port" {
  description = "Client gRPC port; must match the topology."
  type        = number
  default     = 7070
}

variable "peer_port" {
  description = "Internode gRPC port; must match the topology."
  type        = number
  default     = 7071
}

variable "admin_port" {
  description = "Admin HTTP port; must match the topology."
  type        = number
  default     = 7072
}

# ---------------------------------------------------------------------------
# Instances and storage
# ---------------------------------------------------------------------------

variable "instance_type" {
  description = "EC2 instance type of the nodes. Must match `architecture`."
  type        = string
  default     = "m6i.large"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "instance_type must look like m6i.large."
  }
}

variable "architecture" {
  description = "CPU architecture of the AMI and the geokv binary: x86_64 or arm64."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "ami_id" {
  description = "AMI for the nodes. Null = latest Amazon Linux 2023 for `architecture` (needs systemd, cloud-init, curl, xfsprogs; aws CLI for S3 installs). Changes are ignored after creation; replace nodes one at a time to roll a new AMI."
  type        = string
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]+$", var.ami_id))
    error_message = "ami_id must look like ami-0123456789abcdef0."
  }
}

variable "key_name" {
  description = "Optional EC2 key pair name for SSH."
  type        = string
  default     = null
}

variable "root_volume_size_gb" {
  description = "Root volume size (GiB)."
  type        = number
  default     = 20

  validation {
    condition     = var.root_volume_size_gb >= 8
    error_message = "root_volume_size_gb must be at least 8."
  }
}

variable "data_volume_size_gb" {
  description = "Size of each node's data EBS volume (GiB), mounted at /var/lib/geokv."
  type        = number
  default     = 100

  validation {
    condition     = var.data_volume_size_gb >= 10 && var.data_volume_size_gb <= 16384
    error_message = "data_volume_size_gb must be between 10 and 16384."
  }
}

variable "data_volume_iops" {
  description = "Provisioned IOPS of the gp3 data volume (3000-16000)."
  type        = number
  default     = 3000

  validation {
    condition     = var.data_volume_iops >= 3000 && var.data_volume_iops <= 16000
    error_message = "gp3 iops must be between 3000 and 16000."
  }
}

variable "data_volume_throughput" {
  description = "Provisioned throughput of the gp3 data volume in MiB/s (125-1000)."
  type        = number
  default     = 125

  validation {
    condition     = var.data_volume_throughput >= 125 && var.data_volume_throughput <= 1000
    error_message = "gp3 throughput must be between 125 and 1000 MiB/s."
  }
}

variable "kms_key_id" {
  description = "KMS key ARN for the root and data volumes. Null = the account's default EBS key (volumes are always encrypted)."
  type        = string
  default     = null
}

variable "data_device_name" {
  description = "Device name the data volume is attached as. On Nitro instances it shows up as NVMe; the bootstrap finds it by volume id."
  type        = string
  default     = "/dev/sdf"

  validation {
    condition     = can(regex("^/dev/(sd|xvd)[f-p]$", var.data_device_name))
    error_message = "data_device_name must be /dev/sd[f-p] or /dev/xvd[f-p]."
  }
}

variable "termination_protection" {
  description = "Enable EC2 termination protection on the nodes (disable before destroy or replace)."
  type        = bool
  default     = false
}

variable "enable_ssm" {
  description = "Attach AmazonSSMManagedInstanceCore so nodes can be reached with SSM Session Manager / Run Command (used to push a new topology)."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------
# geokv release and runtime
# ---------------------------------------------------------------------------

variable "geokv_release_url" {
  description = "HTTPS URL of the geokv release tarball (`scripts/release`: geokv-VERSION-ARCH-linux.tar.gz, for `architecture`). Set exactly one of geokv_release_url / geokv_release_s3_uri."
  type        = string
  default     = null

  validation {
    condition     = var.geokv_release_url == null || can(regex("^https://[^'\\s]+\\.tar\\.gz$", var.geokv_release_url))
    error_message = "geokv_release_url must be an https:// URL of a .tar.gz, without quotes or whitespace."
  }
}

variable "geokv_release_s3_uri" {
  description = "S3 object of the geokv release tarball, s3://bucket/key.tar.gz. The node role gets s3:GetObject on exactly that object. Set exactly one of geokv_release_url / geokv_release_s3_uri."
  type        = string
  default     = null

  validation {
    condition     = var.geokv_release_s3_uri == null || can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^'\\s]+\\.tar\\.gz$", var.geokv_release_s3_uri))
    error_message = "geokv_release_s3_uri must look like s3://bucket/path/to/geokv-VERSION-ARCH-linux.tar.gz."
  }
}

variable "geokv_release_s3_region" {
  description = "Region of the bucket in geokv_release_s3_uri. Null = let the AWS CLI find it."
  type        = string
  default     = null
}

variable "geokv_release_sha256" {
  description = "SHA-256 (hex) of the release tarball (the first field of its .sha256 file). Every node verifies its download against it and installs nothing that does not match."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.geokv_release_sha256))
    error_message = "geokv_release_sha256 must be 64 lowercase hex characters."
  }
}

variable "otel_exporter_otlp_endpoint" {
  description = "Optional OTEL_EXPORTER_OTLP_ENDPOINT for traces (e.g. http://otel-collector.internal:4317). Null = tracing export off."
  type        = string
  default     = null
}

variable "extra_environment" {
  description = "Extra environment variables for geokv@NODE.service (written to /etc/geokv/geokv.env), e.g. { RUST_LOG = \"info\" }."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.extra_environment) : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k))])
    error_message = "extra_environment keys must be valid environment variable names."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------
# Security: TLS material and the admin token come from SSM Parameter Store
# ---------------------------------------------------------------------------

variable "secrets_parameter_prefix" {
  description = <<-EOT
    SSM Parameter Store path (e.g. "/geokv/geokv-prod") holding the cluster's secrets as SecureString
    parameters, created outside Terraform (see the README's Security section) so that no secret ever
    enters the Terraform state or the user data:
      <prefix>/tls/ca.pem               the cluster CA certificate (its key stays off the nodes)
      <prefix>/tls/node-<ID>.pem        each node's certificate (`geokv certs issue --node <ID> --ip <IP>`)
      <prefix>/tls/node-<ID>-key.pem    each node's private key
      <prefix>/admin-token              the bootstrap admin token, ROLE:SECRET
    Each node's instance role may read only the CA, its own pair and the admin token. Required unless
    insecure = true.
  EOT
  type        = string
  default     = null

  validation {
    condition     = var.secrets_parameter_prefix == null || can(regex("^(/[A-Za-z0-9_.-]+)+$", coalesce(var.secrets_parameter_prefix, "/x")))
    error_message = "secrets_parameter_prefix must be an SSM path like \"/geokv/prod\" (leading '/', no trailing '/')."
  }
}

variable "secrets_region" {
  description = "Region of the SSM parameters (null: this module's region). Parameters are regional: either create them in every region or point all regions at one."
  type        = string
  default     = null
}

variable "secrets_kms_key_arn" {
  description = "Customer-managed KMS key the SecureString parameters are encrypted with (the nodes get kms:Decrypt on it through SSM only). null: the AWS-managed key aws/ssm."
  type        = string
  default     = null
}

variable "secrets_refresh_minutes" {
  description = "How often each node fetches its TLS material again (a systemd timer); a certificate rotated in Parameter Store is picked up by the running node without a restart."
  type        = number
  default     = 15

  validation {
    condition     = var.secrets_refresh_minutes >= 1 && floor(var.secrets_refresh_minutes) == var.secrets_refresh_minutes
    error_message = "secrets_refresh_minutes must be a whole number of at least 1."
  }
}

variable "open_metrics" {
  description = "Serve /metrics and the status page on the admin port without the admin credential (--open-metrics), e.g. for a Prometheus without a bearer token. /health is always open."
  type        = bool
  default     = false
}

variable "insecure" {
  description = "Run the nodes plaintext and without authentication (--insecure). For throwaway experiments only: every port is then open to anyone who can reach it."
  type        = bool
  default     = false
}
