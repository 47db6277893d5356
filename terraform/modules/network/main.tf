data "aws_region" "current" {}

# S3's prefix list, for the functions' HTTPS egress to S3 (through this module's gateway endpoint or one the
# existing VPC already has).
data "aws_prefix_list" "s3" {
  name = "com.amazonaws.${data.aws_region.current.region}.s3"
}

data "aws_vpc" "existing" {
  count = var.create_vpc ? 0 : 1

  id = var.existing_vpc.vpc_id
}

locals {
  azs = var.create_vpc ? var.azs : []

  private_subnet_cidrs = length(var.private_subnet_cidrs) > 0 ? var.private_subnet_cidrs : [
    for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 4, i)
  ]
  public_subnet_cidr = coalesce(var.public_subnet_cidr, cidrsubnet(var.vpc_cidr, 8, 255))

  vpc_id             = var.create_vpc ? aws_vpc.this[0].id : var.existing_vpc.vpc_id
  vpc_cidr_block     = var.create_vpc ? aws_vpc.this[0].cidr_block : data.aws_vpc.existing[0].cidr_block
  private_subnet_ids = var.create_vpc ? aws_subnet.private[*].id : var.existing_vpc.subnet_ids
  route_table_ids    = var.create_vpc ? [aws_route_table.private[0].id] : var.existing_vpc.route_table_ids

  create_flow_logs   = var.create_vpc && var.flow_logs.enabled
  interface_services = toset(var.vpc_endpoints.interface)

  tags = merge(var.tags, { "ferry:module" = "network" })
}

# ---- VPC (only when create_vpc) ---------------------------------------------------------------------------
resource "aws_vpc" "this" {
  count = var.create_vpc ? 1 : 0

  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true # interface endpoints need private DNS

  tags = merge(local.tags, { Name = var.name })

  lifecycle {
    precondition {
      condition     = length(var.azs) >= 2
      error_message = "azs must name at least two availability zones when create_vpc is true."
    }
    precondition {
      condition     = length(local.private_subnet_cidrs) == length(var.azs)
      error_message = "private_subnet_cidrs must hold one CIDR block per availability zone in azs (or be empty)."
    }
  }
}

# The default security group of the VPC denies everything: no resource of this stack uses it.
resource "aws_default_security_group" "this" {
  count = var.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = merge(local.tags, { Name = "${var.name}-default-deny" })
}

resource "aws_subnet" "private" {
  count = var.create_vpc ? length(local.azs) : 0

  vpc_id                  = aws_vpc.this[0].id
  cidr_block              = local.private_subnet_cidrs[count.index]
  availability_zone       = local.azs[count.index]
  map_public_ip_on_launch = false

  tags = merge(local.tags, { Name = "${var.name}-private-${local.azs[count.index]}", "ferry:tier" = "private" })
}

resource "aws_route_table" "private" {
  count = var.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = merge(local.tags, { Name = "${var.name}-private" })
}

resource "aws_route_table_association" "private" {
  count = var.create_vpc ? length(local.azs) : 0

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[0].id
}

# ---- optional NAT -----------------------------------------------------------------------------------------
resource "aws_internet_gateway" "this" {
  count = var.create_vpc && var.enable_nat_gateway ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = merge(local.tags, { Name = var.name })
}

resource "aws_subnet" "public" {
  count = var.create_vpc && var.enable_nat_gateway ? 1 : 0

  vpc_id                  = aws_vpc.this[0].id
  cidr_block              = local.public_subnet_cidr
  availability_zone       = local.azs[0]
  map_public_ip_on_launch = false # only the NAT gateway lives here, with its own Elastic IP

  tags = merge(local.tags, { Name = "${var.name}-public-nat", "ferry:tier" = "public" })
}

resource "aws_route_table" "public" {
  count = var.create_vpc && var.enable_nat_gateway ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = merge(local.tags, { Name = "${var.name}-public" })
}

resource "aws_route" "public_internet" {
  count = var.create_vpc && var.enable_nat_gateway ? 1 : 0

  route_table_id         = aws_route_table.public[0].id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this[0].id
}

resource "aws_route_table_association" "public" {
  count = var.create_vpc && var.enable_nat_gateway ? 1 : 0

  subnet_id      = aws_subnet.public[0].id
  route_table_id = aws_route_table.public[0].id
}

resource "aws_eip" "nat" {
  count = var.create_vpc && var.enable_nat_gateway ? 1 : 0

  domain = "vpc"
  tags   = merge(local.tags, { Name = "${var.name}-nat" })
}

resource "aws_nat_gateway" "this" {
  count = var.create_vpc && var.enable_nat_gateway ? 1 : 0

  allocation_id = aws_eip.nat[0].id
  subnet_id     = aws_subnet.public[0].id
  tags          = merge(local.tags, { Name = var.name })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route" "private_nat" {
  count = var.create_vpc && var.enable_nat_gateway ? 1 : 0

  route_table_id         = aws_route_table.private[0].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[0].id
}

# ---- flow logs (only for a VPC this module creates) -------------------------------------------------------
resource "aws_cloudwatch_log_group" "flow_logs" {
  count = local.create_flow_logs ? 1 : 0

  name              = "/aws/vpc/${var.name}/flow-logs"
  retention_in_days = var.flow_logs.retention_in_days
  kms_key_id        = var.flow_logs.kms_key_arn
  tags              = local.tags

  lifecycle {
    precondition {
      condition     = var.flow_logs.kms_key_arn != null
      error_message = "flow_logs.kms_key_arn is required when flow logs are enabled (or set flow_logs.enabled = false)."
    }
  }
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "flow_logs" {
  count = local.create_flow_logs ? 1 : 0

  statement {
    sid       = "WriteFlowLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.flow_logs[0].arn}:*"]
  }
}

resource "aws_iam_role" "flow_logs" {
  count = local.create_flow_logs ? 1 : 0

  name_prefix        = "${var.name}-flow-logs-"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "flow_logs" {
  count = local.create_flow_logs ? 1 : 0

  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs[0].id
  policy = data.aws_iam_policy_document.flow_logs[0].json
}

resource "aws_flow_log" "this" {
  count = local.create_flow_logs ? 1 : 0

  vpc_id               = aws_vpc.this[0].id
  traffic_type         = var.flow_logs.traffic_type
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow_logs[0].arn
  iam_role_arn         = aws_iam_role.flow_logs[0].arn
  tags                 = local.tags
}

# ---- security groups --------------------------------------------------------------------------------------
# The group of every Ferry function (model functions and the sync function): outbound only, to the VPC
# (EFS on 2049, interface endpoints on 443) and to S3 through the gateway endpoint's prefix list.
resource "aws_security_group" "functions" {
  #checkov:skip=CKV2_AWS_5:attached by the model-function and artifact-sync modules, which take its id as input
  name_prefix = "${var.name}-functions-"
  description = "Ferry Lambda functions: outbound to EFS, VPC endpoints and S3 only"
  vpc_id      = local.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-functions" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "functions_nfs" {
  security_group_id = aws_security_group.functions.id
  description       = "NFS to the EFS mount targets"
  ip_protocol       = "tcp"
  from_port         = 2049
  to_port           = 2049
  cidr_ipv4         = local.vpc_cidr_block
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "functions_https_vpc" {
  security_group_id = aws_security_group.functions.id
  description       = "HTTPS to the interface VPC endpoints"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = local.vpc_cidr_block
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "functions_https_s3" {
  security_group_id = aws_security_group.functions.id
  description       = "HTTPS to S3 through the gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = data.aws_prefix_list.s3.id
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "functions_https_internet" {
  count = var.enable_nat_gateway ? 1 : 0

  security_group_id = aws_security_group.functions.id
  description       = "HTTPS to the internet through the NAT gateway (enable_nat_gateway)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
  tags              = local.tags
}

resource "aws_security_group" "endpoints" {
  count = length(local.interface_services) > 0 ? 1 : 0

  name_prefix = "${var.name}-endpoints-"
  description = "Interface VPC endpoints: HTTPS from the Ferry functions"
  vpc_id      = local.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-endpoints" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_https" {
  count = length(local.interface_services) > 0 ? 1 : 0

  security_group_id            = aws_security_group.endpoints[0].id
  description                  = "HTTPS from the Ferry functions"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.functions.id
  tags                         = local.tags
}

# ---- VPC endpoints ----------------------------------------------------------------------------------------
resource "aws_vpc_endpoint" "s3" {
  count = var.vpc_endpoints.s3 ? 1 : 0

  vpc_id            = local.vpc_id
  service_name      = "com.amazonaws.${data.aws_region.current.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = local.route_table_ids
  tags              = merge(local.tags, { Name = "${var.name}-s3" })

  lifecycle {
    precondition {
      condition     = length(local.route_table_ids) > 0
      error_message = "existing_vpc.route_table_ids must list the private subnets' route tables for the S3 gateway endpoint (or set vpc_endpoints.s3 = false when the VPC has one)."
    }
  }
}

resource "aws_vpc_endpoint" "interface" {
  for_each = local.interface_services

  vpc_id              = local.vpc_id
  service_name        = "com.amazonaws.${data.aws_region.current.region}.${each.value}"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = local.private_subnet_ids
  security_group_ids  = [aws_security_group.endpoints[0].id]
  tags                = merge(local.tags, { Name = "${var.name}-${each.value}" })
}
