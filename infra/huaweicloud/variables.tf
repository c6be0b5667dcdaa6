variable "region" {
  description = "Huawei Cloud region, e.g. ap-southeast-1 (Hong Kong), ap-southeast-3 (Singapore), eu-west-101 (Dublin), cn-north-4."
  type        = string
}

variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "koogate"
}

variable "deployment" {
  description = "Where koogate serve runs: functiongraph (HTTP function behind a dedicated APIG) or ecs (ECS behind an ELB HTTPS listener)."
  type        = string
  default     = "functiongraph"
  validation {
    condition     = contains(["functiongraph", "ecs"], var.deployment)
    error_message = "deployment must be functiongraph or ecs."
  }
}

variable "domain" {
  description = "The production interface's domain name (e.g. api.example.com), registered in the KooGallery seller console as https://<domain><base_path>. Its DNS CNAME/A record points at the APIG group or the ELB EIP (outputs)."
  type        = string
}

variable "base_path" {
  description = "The path the production interface is registered under (KOOGATE_BASE_PATH): /saas (default) or / (the bare domain). The basic, V1 and kit routes live under it; /license, /order-notify, /sso/* and /isv/v1/* do not."
  type        = string
  default     = "/saas"
  validation {
    condition     = can(regex("^/$|^(/[A-Za-z0-9._~-]+)+$", var.base_path))
    error_message = "base_path must be / or /segment[/segment...] without a trailing slash."
  }
}

variable "availability_zones" {
  description = "Availability zones for the APIG instance, the GeminiDB instance, the ELB and the ECS (first one)."
  type        = list(string)
}

variable "vpc_cidr" {
  type    = string
  default = "10.20.0.0/16"
}

variable "subnet_cidr" {
  type    = string
  default = "10.20.1.0/24"
}

# ---- certificates (created beforehand in APIG / ELB, or in SCM and pushed to them) ----

variable "apig_certificate_id" {
  description = "functiongraph: ID of the SSL certificate for var.domain in the dedicated APIG instance (huaweicloud_apig_certificate or the APIG console, SSL Certificates)."
  type        = string
  default     = ""
}

variable "elb_certificate_id" {
  description = "ecs: ID of the ELB server certificate for var.domain (huaweicloud_elb_certificate or the ELB console, Certificates)."
  type        = string
  default     = ""
}

# ---- the store: GeminiDB, DynamoDB-compatible API ----

variable "geminidb_flavor_spec_code" {
  description = "GeminiDB DynamoDB-compatible node specification code (console: GeminiDB, Buy, DynamoDB-Compatible; or data source huaweicloud_gaussdb_nosql_flavors)."
  type        = string
}

variable "geminidb_node_count" {
  type    = number
  default = 3
}

variable "geminidb_storage_gb" {
  type    = number
  default = 100
}

variable "geminidb_password" {
  description = "Administrator password of the GeminiDB instance."
  type        = string
  sensitive   = true
}

variable "geminidb_endpoint" {
  description = "http://<load balancer address>:80 of the GeminiDB instance (its Basic Information page). Empty until the instance exists: apply with -target=huaweicloud_geminidb_instance.store first (README)."
  type        = string
  default     = ""
}

variable "geminidb_access_key_id" {
  description = "AWS_ACCESS_KEY_ID koogate presents to GeminiDB's DynamoDB-compatible API."
  type        = string
  sensitive   = true
}

variable "geminidb_secret_access_key" {
  description = "AWS_SECRET_ACCESS_KEY koogate presents to GeminiDB's DynamoDB-compatible API."
  type        = string
  sensitive   = true
}

variable "table" {
  description = "KOOGATE_TABLE, created with `koogate store init`."
  type        = string
  default     = "koogate"
}

# ---- koogate ----

variable "function_zip" {
  description = "functiongraph: path of the code package built by `make package-huaweicloud`."
  type        = string
  default     = "../../dist/huaweicloud/koogate-huaweicloud-x86_64.zip"
}

variable "secrets_json" {
  description = "functiongraph: the secrets document (koogate init-secrets / keygen format). Stored as an encrypted FunctionGraph environment variable (KOOGATE_SECRETS_JSON) with the KMS key below; the bootstrap hands it to koogate as a private file. Leave empty for ecs (the file is copied to the ECS, README)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "marketplace_site" {
  description = "KOOGATE_MARKETPLACE_SITE: cn, intl or eu."
  type        = string
  default     = "intl"
}

variable "koogate_env" {
  description = "Further koogate environment variables (README.md, Configuration), e.g. KOOGATE_PROVISIONING, KOOGATE_WEBHOOK_URL."
  type        = map(string)
  default     = {}
}

variable "function_memory_mb" {
  type    = number
  default = 512
}

# ---- ECS path ----

variable "ecs_flavor_id" {
  description = "ecs: flavor, e.g. s6.medium.2 (x86_64; package x86_64) or kc1.large.2 (Kunpeng; package aarch64)."
  type        = string
  default     = "s6.medium.2"
}

variable "ecs_image_id" {
  description = "ecs: image ID (a current Debian/Ubuntu/Huawei Cloud EulerOS with systemd)."
  type        = string
  default     = ""
}

variable "ecs_key_pair" {
  description = "ecs: SSH key pair name (KPS) used to copy the binary and the secrets document."
  type        = string
  default     = ""
}

variable "elb_l7_flavor_id" {
  description = "ecs: application (L7) flavor of the dedicated load balancer (HTTPS listener)."
  type        = string
  default     = ""
}

variable "elb_bandwidth_mbit" {
  type    = number
  default = 10
}

# ---- alarms ----

variable "alarm_email" {
  description = "E-mail subscribed to the alarm topic (SMN). Empty: no subscription."
  type        = string
  default     = ""
}

variable "lts_alarm_action_rule" {
  description = "Name of an AOM alarm action rule that notifies for the LTS keyword alarm (AOM console, Alarm Action Rules). Empty: the alarm is raised and listed, not sent."
  type        = string
  default     = ""
}
