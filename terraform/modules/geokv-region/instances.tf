# ---------------------------------------------------------------------------
# Nodes: EC2 instance + gp3 data volume + attachment, one set per node id.
# ---------------------------------------------------------------------------

data "aws_ami" "al2023" {
  count = var.ami_id == null ? 1 : 0

  most_recent = true
  owners      = ["amazon"]

  filter {
    name   = "name"
    values = ["al2023-ami-2023.*-kernel-*-${var.architecture}"]
  }

  filter {
    name   = "architecture"
    values = [var.architecture]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

locals {
  ami_id = var.ami_id != null ? var.ami_id : data.aws_ami.al2023[0].id

  # id -> node entry of the topology every node will get (for sanity checks).
  topology_nodes = try({
    for n in flatten([
      for dc in yamldecode(var.topology_yaml).datacenters : [
        for rack in dc.racks : rack.nodes
      ]
    ]) : n.id => n
  }, {})

  data_dir = "/var/lib/geokv"

  # Security: files fetched from Parameter Store by geokv-fetch-secrets.sh.
  tls_dir          = "/etc/geokv/tls"
  admin_token_file = "/etc/geokv/admin-token"
  security_flags = var.insecure ? "--insecure" : join(" ", compact([
    "--tls-dir ${local.tls_dir} --auth --admin-token-file ${local.admin_token_file}",
    var.open_metrics ? "--open-metrics" : "",
  ]))

  # Per node: the secrets fetch script and its timer (none when insecure).
  secret_files = {
    for id, n in local.nodes_by_id : id => var.insecure ? [] : [
      {
        path        = "/usr/local/sbin/geokv-fetch-secrets.sh"
        owner       = "root:root"
        permissions = "0700"
        content = templatefile("${path.module}/templates/fetch-secrets.sh.tftpl", {
          node_id          = id
          parameter_prefix = coalesce(var.secrets_parameter_prefix, "/unset")
          region           = local.secrets_region
          tls_dir          = local.tls_dir
          admin_token_file = local.admin_token_file
        })
      },
      {
        path        = "/etc/systemd/system/geokv-secrets.service"
        owner       = "root:root"
        permissions = "0644"
        content     = templatefile("${path.module}/templates/geokv-secrets.service.tftpl", { node_id = id })
      },
      {
        path        = "/etc/systemd/system/geokv-secrets.timer"
        owner       = "root:root"
        permissions = "0644"
        content = templatefile("${path.module}/templates/geokv-secrets.timer.tftpl", {
          refresh_minutes = var.secrets_refresh_minutes
        })
      },
    ]
  }

  environment = merge(
    var.otel_exporter_otlp_endpoint == null ? {} : {
      OTEL_EXPORTER_OTLP_ENDPOINT = var.otel_exporter_otlp_endpoint
      OTEL_SERVICE_NAME           = "geokv"
    },
    var.extra_environment,
  )

  # Per node: the environment file also names the node (resource attributes).
  env_files = {
    for id, n in local.nodes_by_id : id => join("", [
      for k, v in merge(local.environment, var.otel_exporter_otlp_endpoint == null ? {} : {
        OTEL_RESOURCE_ATTRIBUTES = "service.instance.id=${id},cloud.region=${local.region},cloud.availability_zone=${n.az}"
      }) : format("%s=%q\n", k, v)
    ])
  }

  # cloud-init user data. yamlencode takes care of quoting the embedded files
  # (including the topology YAML) correctly.
  user_data = {
    for id, n in local.nodes_by_id : id => join("\n", [
      "#cloud-config",
      yamlencode({
        write_files = concat([
          {
            path        = "/etc/geokv/topology.yaml"
            owner       = "root:root"
            permissions = "0644"
            content     = var.topology_yaml
          },
          {
            path        = "/etc/geokv/geokv.env"
            owner       = "root:root"
            permissions = "0640"
            content     = local.env_files[id]
          },
          {
            # Over the geokv@.service unit the bootstrap installs from the
            # release tarball: this deployment's flags.
            path        = "/etc/systemd/system/geokv@.service.d/10-terraform.conf"
            owner       = "root:root"
            permissions = "0644"
            content = templatefile("${path.module}/templates/geokv-dropin.conf.tftpl", {
              node_id        = id
              data_dir       = local.data_dir
              insecure       = var.insecure
              security_flags = local.security_flags
            })
          },
          {
            path        = "/usr/local/sbin/geokv-bootstrap.sh"
            owner       = "root:root"
            permissions = "0755"
            content = templatefile("${path.module}/templates/bootstrap.sh.tftpl", {
              node_id           = id
              data_dir          = local.data_dir
              insecure          = var.insecure
              data_volume_id    = aws_ebs_volume.data[id].id
              data_device_name  = var.data_device_name
              release_source    = local.release_source
              release_url       = var.geokv_release_url == null ? "" : var.geokv_release_url
              release_s3_uri    = var.geokv_release_s3_uri == null ? "" : var.geokv_release_s3_uri
              release_s3_region = var.geokv_release_s3_region == null ? "" : var.geokv_release_s3_region
              release_sha256    = var.geokv_release_sha256
            })
          },
        ], local.secret_files[id])
        runcmd = [["/usr/local/sbin/geokv-bootstrap.sh"]]
      }),
    ])
  }
}

resource "aws_ebs_volume" "data" {
  for_each = local.nodes_by_id

  availability_zone = each.value.az
  type              = "gp3"
  size              = var.data_volume_size_gb
  iops              = var.data_volume_iops
  throughput        = var.data_volume_throughput
  encrypted         = true
  kms_key_id        = var.kms_key_id

  tags = merge(local.tags, {
    Name            = "${each.key}-data"
    "geokv:node-id" = each.key
    "geokv:rack"    = each.value.az
  })
}

resource "aws_instance" "node" {
  for_each = local.nodes_by_id

  ami                     = local.ami_id
  instance_type           = var.instance_type
  subnet_id               = aws_subnet.node[each.value.az_index].id
  private_ip              = each.value.private_ip
  vpc_security_group_ids  = [aws_security_group.node.id]
  iam_instance_profile    = aws_iam_instance_profile.node[each.key].name
  key_name                = var.key_name
  disable_api_termination = var.termination_protection
  monitoring              = false

  # gzip keeps large topologies under the 16 KiB user-data limit; cloud-init
  # decompresses it transparently.
  user_data_base64 = base64gzip(local.user_data[each.key])

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size_gb
    encrypted             = true
    kms_key_id            = var.kms_key_id
    delete_on_termination = true
    tags                  = merge(local.tags, { Name = "${each.key}-root" })
  }

  tags = merge(local.tags, {
    Name            = each.key
    "geokv:node-id" = each.key
    "geokv:rack"    = each.value.az
  })

  lifecycle {
    # The topology / bootstrap is baked in at first boot. A later change of the
    # topology (e.g. a node added elsewhere) must not restart or replace every
    # node at once: push it with a rolling procedure instead (see README), or
    # replace one node at a time with `terraform apply -replace=...`.
    ignore_changes = [ami, user_data_base64]

    precondition {
      condition     = var.insecure || var.secrets_parameter_prefix != null
      error_message = "Set secrets_parameter_prefix (TLS material and admin token in SSM Parameter Store; see the README's Security section), or insecure = true for a throwaway plaintext experiment."
    }

    precondition {
      condition     = (var.geokv_release_url == null) != (var.geokv_release_s3_uri == null)
      error_message = "Set exactly one of geokv_release_url or geokv_release_s3_uri."
    }

    precondition {
      condition     = try(split(":", local.topology_nodes[each.key].peer_address)[0] == each.value.private_ip, false)
      error_message = "topology_yaml has no node ${each.key} with peer address ${each.value.private_ip}:${var.peer_port}; render the topology from this module's `nodes` output."
    }

    precondition {
      # EC2 allows 16 KiB of (here gzipped) user data, i.e. ~21.8k base64 chars.
      condition     = length(base64gzip(local.user_data[each.key])) <= 21800
      error_message = "User data of ${each.key} exceeds EC2's 16 KiB limit even gzipped (topology too large); deliver the topology another way, e.g. from S3."
    }
  }
}

resource "aws_volume_attachment" "data" {
  for_each = local.nodes_by_id

  device_name = var.data_device_name
  volume_id   = aws_ebs_volume.data[each.key].id
  instance_id = aws_instance.node[each.key].id

  # Stop geokv's instance cleanly instead of ripping the disk out from under it
  # when the attachment is destroyed (instance replacement / destroy).
  stop_instance_before_detaching = true
}
