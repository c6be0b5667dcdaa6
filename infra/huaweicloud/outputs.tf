output "production_interface_url" {
  description = "Register this in the KooGallery seller console as the production interface address (the basic, V1 and kit interfaces)."
  value       = "https://${var.domain}${var.base_path == "/" ? "" : var.base_path}"
}

output "license_url" {
  value = "https://${var.domain}/license"
}

output "order_notify_url" {
  value = "https://${var.domain}/order-notify"
}

output "dns_target" {
  description = "Point var.domain here: the APIG instance's ingress EIP (functiongraph) or the ELB's EIP (ecs), as an A record."
  value       = local.serverless ? huaweicloud_apig_instance.koogate[0].ingress_address : huaweicloud_vpc_eip.elb[0].address
}

output "geminidb_instance_id" {
  value = huaweicloud_geminidb_instance.store.id
}

output "log_stream" {
  value = "${huaweicloud_lts_group.koogate.group_name}/${huaweicloud_lts_stream.koogate.stream_name}"
}
