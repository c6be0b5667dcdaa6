locals {
  serverless = var.deployment == "functiongraph"
  on_ecs     = var.deployment == "ecs"
}

resource "huaweicloud_vpc" "koogate" {
  name = "${var.name}-vpc"
  cidr = var.vpc_cidr
}

resource "huaweicloud_vpc_subnet" "koogate" {
  name       = "${var.name}-subnet"
  vpc_id     = huaweicloud_vpc.koogate.id
  cidr       = var.subnet_cidr
  gateway_ip = cidrhost(var.subnet_cidr, 1)
}

# koogate (function ENIs, the ECS) and GeminiDB share this group: members may talk to each other;
# nothing is open to the internet except what the ELB / APIG forward.
resource "huaweicloud_networking_secgroup" "koogate" {
  name                 = "${var.name}-sg"
  delete_default_rules = true
}

resource "huaweicloud_networking_secgroup_rule" "intra_group" {
  security_group_id = huaweicloud_networking_secgroup.koogate.id
  direction         = "ingress"
  ethertype         = "IPv4"
  remote_group_id   = huaweicloud_networking_secgroup.koogate.id
}

resource "huaweicloud_networking_secgroup_rule" "egress" {
  security_group_id = huaweicloud_networking_secgroup.koogate.id
  direction         = "egress"
  ethertype         = "IPv4"
  remote_ip_prefix  = "0.0.0.0/0"
}

# ecs: the ELB's health checks and forwarded requests reach koogate on 8000 from inside the VPC.
resource "huaweicloud_networking_secgroup_rule" "koogate_from_vpc" {
  count             = local.on_ecs ? 1 : 0
  security_group_id = huaweicloud_networking_secgroup.koogate.id
  direction         = "ingress"
  ethertype         = "IPv4"
  protocol          = "tcp"
  ports             = "8000"
  remote_ip_prefix  = var.vpc_cidr
}
