output "vpc_id" {
  description = "Id of the VPC (created or existing)."
  value       = local.vpc_id
}

output "vpc_cidr_block" {
  description = "CIDR block of the VPC."
  value       = local.vpc_cidr_block
}

output "private_subnet_ids" {
  description = "Ids of the private subnets the functions and EFS mount targets use."
  value       = local.private_subnet_ids
}

output "function_security_group_id" {
  description = "Id of the security group of the Ferry functions (outbound to EFS, VPC endpoints and S3 only)."
  value       = aws_security_group.functions.id
}

output "endpoint_security_group_id" {
  description = "Id of the security group of the interface VPC endpoints, or null when none is created."
  value       = try(aws_security_group.endpoints[0].id, null)
}

output "s3_endpoint_id" {
  description = "Id of the S3 gateway endpoint, or null when it is not created."
  value       = try(aws_vpc_endpoint.s3[0].id, null)
}

output "interface_endpoint_ids" {
  description = "Ids of the interface VPC endpoints, by service short name."
  value       = { for k, e in aws_vpc_endpoint.interface : k => e.id }
}

output "nat_gateway_id" {
  description = "Id of the NAT gateway, or null when `enable_nat_gateway` is false."
  value       = try(aws_nat_gateway.this[0].id, null)
}
