# ---------------------------------------------------------------------------
# Instance role: optional SSM access, optional read of the binary in S3.
# ---------------------------------------------------------------------------

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
  # IAM is global: the random suffix keeps the regions' roles apart.
  name_prefix        = substr("${var.cluster_name}-node-", 0, 38)
  description        = "geokv nodes of ${var.cluster_name} in ${local.region}"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json

  tags = local.tags
}

resource "aws_iam_instance_profile" "node" {
  name_prefix = substr("${var.cluster_name}-node-", 0, 38)
  role        = aws_iam_role.node.name

  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "ssm" {
  count = var.enable_ssm ? 1 : 0

  role       = aws_iam_role.node.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

data "aws_iam_policy_document" "binary" {
  count = var.geokv_binary_s3_uri != null ? 1 : 0

  statement {
    sid       = "ReadGeokvBinary"
    actions   = ["s3:GetObject"]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${local.binary_s3.bucket}/${local.binary_s3.key}"]
  }
}

resource "aws_iam_role_policy" "binary" {
  count = var.geokv_binary_s3_uri != null ? 1 : 0

  name   = "read-geokv-binary"
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.binary[0].json
}
