# Credentials come from the usual AWS chain (environment, shared config/SSO,
# instance role). Nothing is hard-coded here; pick a profile with AWS_PROFILE.

provider "aws" {
  alias  = "use1"
  region = "us-east-1"

  default_tags {
    tags = local.default_tags
  }
}

provider "aws" {
  alias  = "euw1"
  region = "eu-west-1"

  default_tags {
    tags = local.default_tags
  }
}

provider "aws" {
  alias  = "apse1"
  region = "ap-southeast-1"

  default_tags {
    tags = local.default_tags
  }
}
