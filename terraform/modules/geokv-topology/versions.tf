terraform {
  # Pure module: no providers, no resources. It only renders the topology file.
  required_version = ">= 1.5.0"
}
