variable "cluster_name" {
  description = "Cluster name (topology cluster_name, resource names and tags)."
  type        = string
  default     = "geokv-prod"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}$", var.cluster_name))
    error_message = "cluster_name must be 1-31 characters of lowercase letters, digits and '-'."
  }
}

variable "vpc_cidrs" {
  description = "VPC CIDR per region. They must not overlap (VPC peering)."
  type = object({
    us-east-1      = string
    eu-west-1      = string
    ap-southeast-1 = string
  })
  default = {
    us-east-1      = "10.10.0.0/16"
    eu-west-1      = "10.20.0.0/16"
    ap-southeast-1 = "10.30.0.0/16"
  }

  validation {
    condition     = alltrue([for c in values(var.vpc_cidrs) : can(cidrnetmask(c))])
    error_message = "Every vpc_cidrs entry must be an IPv4 CIDR block."
  }

  validation {
    condition     = length(distinct(values(var.vpc_cidrs))) == 3
    error_message = "The three VPC CIDRs must be different (and must not overlap)."
  }
}

variable "availability_zones" {
  description = "Availability zones (= geokv racks) per region. Keep the order stable once deployed."
  type = object({
    us-east-1      = list(string)
    eu-west-1      = list(string)
    ap-southeast-1 = list(string)
  })
  default = {
    us-east-1      = ["us-east-1a", "us-east-1b", "us-east-1c"]
    eu-west-1      = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    ap-southeast-1 = ["ap-southeast-1a", "ap-southeast-1b", "ap-southeast-1c"]
  }

  validation {
    condition     = alltrue([for azs in values(var.availability_zones) : length(azs) >= 1])
    error_message = "Every region needs at least one availability zone."
  }
}

variable "nodes_per_region" {
  description = "geokv nodes per region (spread round-robin over the availability zones)."
  type        = number
  default     = 3

  validation {
    condition     = var.nodes_per_region >= 1 && floor(var.nodes_per_region) == var.nodes_per_region
    error_message = "nodes_per_region must be a whole number >= 1."
  }

  validation {
    condition     = var.nodes_per_region >= var.replication_factor
    error_message = "nodes_per_region must be >= replication_factor: a datacenter cannot hold more replicas than it has nodes."
  }
}

variable "replication_factor" {
  description = "Replicas per datacenter of the `default` keyspace (used when `keyspaces` is null). 3 per region lets LOCAL_QUORUM (2 of 3) survive one node or AZ."
  type        = number
  default     = 3

  validation {
    condition     = var.replication_factor >= 1 && var.replication_factor <= 7 && floor(var.replication_factor) == var.replication_factor
    error_message = "replication_factor must be a whole number between 1 and 7."
  }
}

variable "keyspaces" {
  description = "Full keyspace map (overrides replication_factor), e.g. { default = { replication = { \"us-east-1\" = 3, \"eu-west-1\" = 3 } } }. The topology module checks every RF against the node counts."
  type = map(object({
    replication = map(number)
  }))
  default = null
}

variable "vnodes" {
  description = "Virtual nodes per node (topology defaults.vnodes)."
  type        = number
  default     = 256
}

variable "instance_type" {
  description = "EC2 instance type of every node."
  type        = string
  default     = "m6i.large"
}

variable "architecture" {
  description = "x86_64 or arm64; must match instance_type and the release."
  type        = string
  default     = "x86_64"
}

variable "data_volume_size_gb" {
  description = "Data EBS volume size per node (GiB)."
  type        = number
  default     = 100
}

variable "geokv_release_url" {
  description = "HTTPS URL of the geokv release tarball (scripts/release: geokv-VERSION-ARCH-linux.tar.gz). Set this or geokv_release_s3_uri."
  type        = string
  default     = null
}

variable "geokv_release_s3_uri" {
  description = "s3://bucket/key of the geokv release tarball. Set this or geokv_release_url."
  type        = string
  default     = null

  validation {
    condition     = (var.geokv_release_url == null) != (var.geokv_release_s3_uri == null)
    error_message = "Set exactly one of geokv_release_url or geokv_release_s3_uri."
  }
}

variable "geokv_release_s3_region" {
  description = "Region of the bucket in geokv_release_s3_uri (null = auto)."
  type        = string
  default     = null
}

variable "geokv_release_sha256" {
  description = "SHA-256 of the release tarball (its .sha256 file), verified on every node before anything is installed."
  type        = string
}

variable "client_cidrs" {
  description = "CIDRs allowed to the client port 7070. Empty = the three VPC CIDRs (clients inside the peered VPCs)."
  type        = list(string)
  default     = []
}

variable "monitoring_cidrs" {
  description = "CIDRs allowed to the admin port 7072 (/health, /metrics). Empty = the three VPC CIDRs."
  type        = list(string)
  default     = []
}

variable "ssh_cidrs" {
  description = "CIDRs allowed to SSH; empty = none (use SSM Session Manager)."
  type        = list(string)
  default     = []
}

variable "key_name" {
  description = "EC2 key pair name for SSH. Key pairs are regional: it must exist under this name in all three regions."
  type        = string
  default     = null
}

variable "otel_exporter_otlp_endpoint" {
  description = "Optional OTEL_EXPORTER_OTLP_ENDPOINT for every node."
  type        = string
  default     = null
}

variable "extra_environment" {
  description = "Extra environment for geokv@NODE.service on every node, e.g. { RUST_LOG = \"info\" }."
  type        = map(string)
  default     = {}
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

variable "secrets_parameter_prefix" {
  description = "SSM Parameter Store path of the cluster's TLS material and admin token (SecureString parameters created before apply, see the README's Security section); null: /geokv/<cluster_name>. Only names reach Terraform, never values."
  type        = string
  default     = null
}

variable "secrets_region" {
  description = "Region holding the SSM parameters for every region's nodes (null: each region reads its own copies)."
  type        = string
  default     = null
}

variable "insecure" {
  description = "Plaintext and no authentication on every node (--insecure): throwaway experiments only."
  type        = bool
  default     = false
}
