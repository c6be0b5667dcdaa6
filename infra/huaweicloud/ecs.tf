# ECS path: koogate serve under systemd (packaging/huaweicloud/koogate.service) on one ECS, behind
# a dedicated ELB whose HTTPS listener holds the certificate of var.domain and forwards HTTP to
# port 8000. The binary and the secrets document are copied to the ECS by the operator (README):
# neither goes through Terraform state or the ECS metadata service.

resource "huaweicloud_compute_instance" "koogate" {
  count              = local.on_ecs ? 1 : 0
  name               = "${var.name}-ecs"
  image_id           = var.ecs_image_id
  flavor_id          = var.ecs_flavor_id
  key_pair           = var.ecs_key_pair
  availability_zone  = var.availability_zones[0]
  security_group_ids = [huaweicloud_networking_secgroup.koogate.id]
  system_disk_type   = "GPSSD"
  system_disk_size   = 40

  network {
    uuid = huaweicloud_vpc_subnet.koogate.id
  }

  # The service account and directories of koogate.service; nothing secret.
  user_data = <<-EOT
    #cloud-config
    users:
      - name: koogate
        system: true
        shell: /usr/sbin/nologin
        homedir: /var/lib/koogate
    runcmd:
      - install -d -m 0750 -o root -g koogate /etc/koogate
  EOT

  lifecycle {
    precondition {
      condition     = var.ecs_image_id != "" && var.elb_certificate_id != "" && var.elb_l7_flavor_id != ""
      error_message = "ecs needs ecs_image_id, elb_certificate_id and elb_l7_flavor_id."
    }
  }
}

resource "huaweicloud_vpc_eip" "elb" {
  count = local.on_ecs ? 1 : 0
  publicip {
    type = "5_bgp"
  }
  bandwidth {
    name        = "${var.name}-elb"
    size        = var.elb_bandwidth_mbit
    share_type  = "PER"
    charge_mode = "traffic"
  }
}

resource "huaweicloud_elb_loadbalancer" "koogate" {
  count             = local.on_ecs ? 1 : 0
  name              = "${var.name}-elb"
  availability_zone = var.availability_zones
  vpc_id            = huaweicloud_vpc.koogate.id
  ipv4_subnet_id    = huaweicloud_vpc_subnet.koogate.ipv4_subnet_id
  l7_flavor_id      = var.elb_l7_flavor_id
  ipv4_eip_id       = huaweicloud_vpc_eip.elb[0].id
}

resource "huaweicloud_elb_listener" "https" {
  count              = local.on_ecs ? 1 : 0
  name               = "${var.name}-https"
  loadbalancer_id    = huaweicloud_elb_loadbalancer.koogate[0].id
  protocol           = "HTTPS"
  protocol_port      = 443
  server_certificate = var.elb_certificate_id
  tls_ciphers_policy = "tls-1-2"
  http2_enable       = false
  # The marketplace waits 5 s; koogate answers within its request budget.
  request_timeout  = 10
  response_timeout = 10
  forward_proto    = true
  real_ip          = true
}

resource "huaweicloud_elb_pool" "koogate" {
  count       = local.on_ecs ? 1 : 0
  name        = "${var.name}-pool"
  protocol    = "HTTP"
  lb_method   = "ROUND_ROBIN"
  listener_id = huaweicloud_elb_listener.https[0].id
}

resource "huaweicloud_elb_monitor" "healthz" {
  count       = local.on_ecs ? 1 : 0
  pool_id     = huaweicloud_elb_pool.koogate[0].id
  protocol    = "HTTP"
  port        = 8000
  url_path    = "/healthz"
  status_code = "200"
  interval    = 10
  timeout     = 3
  max_retries = 3
}

resource "huaweicloud_elb_member" "koogate" {
  count         = local.on_ecs ? 1 : 0
  pool_id       = huaweicloud_elb_pool.koogate[0].id
  address       = huaweicloud_compute_instance.koogate[0].access_ip_v4
  protocol_port = 8000
  subnet_id     = huaweicloud_vpc_subnet.koogate.ipv4_subnet_id
}
