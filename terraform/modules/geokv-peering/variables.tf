variable "name" {
  description = "Name tag of the peering connection, e.g. \"geokv-prod-us-east-1-eu-west-1\"."
  type        = string
}

variable "requester_vpc_id" {
  description = "VPC id on the requester side (provider aws.requester)."
  type        = string
}

variable "requester_cidr" {
  description = "CIDR of the requester VPC; routed from the accepter side."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.requester_cidr))
    error_message = "requester_cidr must be an IPv4 CIDR block."
  }
}

variable "requester_route_table_ids" {
  description = "Route tables on the requester side that get a route to accepter_cidr."
  type        = list(string)
}

variable "accepter_vpc_id" {
  description = "VPC id on the accepter side (provider aws.accepter)."
  type        = string
}

variable "accepter_cidr" {
  description = "CIDR of the accepter VPC; routed from the requester side."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.accepter_cidr))
    error_message = "accepter_cidr must be an IPv4 CIDR block."
  }
}

variable "accepter_route_table_ids" {
  description = "Route tables on the accepter side that get a route to requester_cidr."
  type        = list(string)
}

variable "tags" {
  description = "Tags added to the peering connection (both sides)."
  type        = map(string)
  default     = {}
}
