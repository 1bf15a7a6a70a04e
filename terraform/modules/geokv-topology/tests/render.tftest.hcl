# Offline tests for the pure topology module: `terraform init && terraform test`
# (no provider or credentials needed).

variables {
  cluster_name = "geokv-test"
  datacenters = [
    {
      name = "us-east-1"
      nodes = [
        { id = "use1-n1", az = "us-east-1a", private_ip = "10.10.0.10" },
        { id = "use1-n2", az = "us-east-1b", private_ip = "10.10.16.10" },
        { id = "use1-n3", az = "us-east-1c", private_ip = "10.10.32.10" },
        { id = "use1-n4", az = "us-east-1a", private_ip = "10.10.0.11" },
      ]
    },
    {
      name = "eu-west-1"
      nodes = [
        { id = "euw1-n1", az = "eu-west-1a", private_ip = "10.20.0.10" },
        { id = "euw1-n2", az = "eu-west-1b", private_ip = "10.20.16.10" },
        { id = "euw1-n3", az = "eu-west-1c", private_ip = "10.20.32.10" },
      ]
    },
  ]
  keyspaces = {
    default = { replication = { "us-east-1" = 3, "eu-west-1" = 3 } }
  }
}

run "renders_expected_structure" {
  command = plan

  assert {
    condition     = yamldecode(output.yaml).cluster_name == "geokv-test"
    error_message = "cluster_name not rendered"
  }

  assert {
    condition     = yamldecode(output.yaml).defaults.vnodes == 256
    error_message = "defaults.vnodes should default to 256"
  }

  assert {
    condition     = [for dc in yamldecode(output.yaml).datacenters : dc.name] == ["us-east-1", "eu-west-1"]
    error_message = "datacenters must keep the input order"
  }

  assert {
    condition     = [for r in yamldecode(output.yaml).datacenters[0].racks : r.name] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    error_message = "one rack per availability zone, sorted"
  }

  assert {
    condition     = [for n in yamldecode(output.yaml).datacenters[0].racks[0].nodes : n.id] == ["use1-n1", "use1-n4"]
    error_message = "nodes must be grouped into the rack of their AZ"
  }

  assert {
    condition = yamldecode(output.yaml).datacenters[1].racks[2].nodes[0] == {
      id             = "euw1-n3"
      client_address = "10.20.32.10:7070"
      peer_address   = "10.20.32.10:7071"
      admin_address  = "10.20.32.10:7072"
    }
    error_message = "node addresses must be ip:7070/7071/7072"
  }

  assert {
    condition     = yamldecode(output.yaml).keyspaces.default.replication["eu-west-1"] == 3
    error_message = "keyspace replication not rendered"
  }

  assert {
    condition     = startswith(output.yaml, "# geokv topology")
    error_message = "header comment missing"
  }

  assert {
    condition     = output.node_count == { "us-east-1" = 4, "eu-west-1" = 3 }
    error_message = "node_count per datacenter is wrong"
  }
}

run "custom_ports_and_vnodes" {
  command = plan

  variables {
    vnodes      = 64
    client_port = 9000
  }

  assert {
    condition     = yamldecode(output.yaml).datacenters[0].racks[0].nodes[0].client_address == "10.10.0.10:9000"
    error_message = "client_port not applied"
  }

  assert {
    condition     = yamldecode(output.yaml).defaults.vnodes == 64
    error_message = "vnodes not applied"
  }
}

run "rejects_rf_above_node_count" {
  command = plan

  variables {
    keyspaces = {
      default = { replication = { "us-east-1" = 3, "eu-west-1" = 5 } }
    }
  }

  expect_failures = [output.yaml]
}

run "rejects_unknown_datacenter" {
  command = plan

  variables {
    keyspaces = {
      default = { replication = { "us-east-1" = 3, "ap-southeast-1" = 3 } }
    }
  }

  expect_failures = [output.yaml]
}

run "rejects_duplicate_node_ids" {
  command = plan

  variables {
    datacenters = [
      { name = "us-east-1", nodes = [{ id = "n1", az = "us-east-1a", private_ip = "10.0.0.10" }] },
      { name = "eu-west-1", nodes = [{ id = "n1", az = "eu-west-1a", private_ip = "10.1.0.10" }] },
    ]
    keyspaces = { default = { replication = { "us-east-1" = 1 } } }
  }

  expect_failures = [var.datacenters]
}

run "rejects_zero_replication" {
  command = plan

  variables {
    keyspaces = { default = { replication = { "us-east-1" = 0 } } }
  }

  expect_failures = [var.keyspaces]
}
