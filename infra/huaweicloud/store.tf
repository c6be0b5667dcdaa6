# GeminiDB with the DynamoDB-compatible API: koogate's KOOGATE_STORE=dynamodb backend talks to it
# with the AWS SDK (AWS_ENDPOINT_URL_DYNAMODB = its load balancer address, port 80). The table is
# created by `koogate store init` (README), not here: GeminiDB tables are not Terraform resources.
resource "huaweicloud_geminidb_instance" "store" {
  name              = "${var.name}-store"
  availability_zone = join(",", var.availability_zones)
  vpc_id            = huaweicloud_vpc.koogate.id
  subnet_id         = huaweicloud_vpc_subnet.koogate.id
  security_group_id = huaweicloud_networking_secgroup.koogate.id
  password          = var.geminidb_password
  mode              = "Cluster"
  ssl_option        = "on"

  datastore {
    type           = "dynamodb"
    version        = ""
    storage_engine = "rocksDB"
  }

  flavor {
    num       = var.geminidb_node_count
    size      = var.geminidb_storage_gb
    storage   = "ULTRAHIGH"
    spec_code = var.geminidb_flavor_spec_code
  }

  backup_strategy {
    start_time = "03:00-04:00"
    keep_days  = 14
  }

  lifecycle {
    prevent_destroy = true
  }
}

locals {
  store_env = {
    KOOGATE_STORE             = "dynamodb"
    KOOGATE_TABLE             = var.table
    AWS_ENDPOINT_URL_DYNAMODB = var.geminidb_endpoint
    AWS_REGION                = var.region
  }
}
