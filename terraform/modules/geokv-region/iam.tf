# ---------------------------------------------------------------------------
# Instance roles, one per node: optional SSM access, optional read of the
# binary in S3, and read access to exactly this node's secrets in Parameter
# Store (the CA certificate, its own certificate and key, the admin token).
# A role per node keeps a compromised node from reading another's key.
# ---------------------------------------------------------------------------

data "aws_caller_identity" "current" {}

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  for_each = local.nodes_by_id

  # IAM is global: the random suffix keeps the regions' roles apart.
  name_prefix        = substr("${var.cluster_name}-${each.key}-", 0, 38)
  description        = "geokv node ${each.key} of ${var.cluster_name} in ${local.region}"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json

  tags = merge(local.tags, { "geokv:node-id" = each.key })
}

resource "aws_iam_instance_profile" "node" {
  for_each = local.nodes_by_id

  name_prefix = substr("${var.cluster_name}-${each.key}-", 0, 38)
  role        = aws_iam_role.node[each.key].name

  tags = merge(local.tags, { "geokv:node-id" = each.key })
}

resource "aws_iam_role_policy_attachment" "ssm" {
  for_each = var.enable_ssm ? local.nodes_by_id : {}

  role       = aws_iam_role.node[each.key].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

data "aws_iam_policy_document" "release" {
  count = var.geokv_release_s3_uri != null ? 1 : 0

  statement {
    sid       = "ReadGeokvRelease"
    actions   = ["s3:GetObject"]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${local.release_s3.bucket}/${local.release_s3.key}"]
  }
}

resource "aws_iam_role_policy" "release" {
  for_each = var.geokv_release_s3_uri != null ? local.nodes_by_id : {}

  name   = "read-geokv-release"
  role   = aws_iam_role.node[each.key].id
  policy = data.aws_iam_policy_document.release[0].json
}

locals {
  # arn:…:parameter/geokv/prod (the prefix starts with '/').
  secrets_arn_prefix = format(
    "arn:%s:ssm:%s:%s:parameter%s",
    data.aws_partition.current.partition,
    local.secrets_region,
    data.aws_caller_identity.current.account_id,
    coalesce(var.secrets_parameter_prefix, "/unset"),
  )
}

data "aws_iam_policy_document" "secrets" {
  for_each = var.insecure ? {} : local.nodes_by_id

  statement {
    sid     = "ReadOwnSecrets"
    actions = ["ssm:GetParameter"]
    resources = [
      "${local.secrets_arn_prefix}/tls/ca.pem",
      "${local.secrets_arn_prefix}/tls/node-${each.key}.pem",
      "${local.secrets_arn_prefix}/tls/node-${each.key}-key.pem",
      "${local.secrets_arn_prefix}/admin-token",
    ]
  }

  dynamic "statement" {
    for_each = var.secrets_kms_key_arn == null ? [] : [var.secrets_kms_key_arn]
    content {
      sid       = "DecryptThroughSsmOnly"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["ssm.${local.secrets_region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "secrets" {
  for_each = var.insecure ? {} : local.nodes_by_id

  name   = "read-geokv-secrets"
  role   = aws_iam_role.node[each.key].id
  policy = data.aws_iam_policy_document.secrets[each.key].json
}
