terraform {
  # 1.9+ for cross-variable validation (nodes_per_region >= replication_factor).
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }

  # Use a remote backend with locking for anything real, e.g.:
  # backend "s3" {
  #   bucket         = "my-terraform-state"
  #   key            = "geokv/three-region.tfstate"
  #   region         = "us-east-1"
  #   dynamodb_table = "terraform-locks"
  #   encrypt        = true
  # }
}
