# Serverless path: koogate serve as a FunctionGraph HTTP function (runtime "http", the zip's
# `bootstrap` starts it on port 8000), behind a dedicated APIG instance that serves var.domain with
# its certificate and routes exactly the route table (routes.tf) to the function.

# ---- secrets: encrypted environment variables, encrypted with this key ----
resource "huaweicloud_kms_key" "koogate" {
  key_alias       = "${var.name}-secrets"
  key_description = "Encrypts koogate's FunctionGraph environment (secrets document, GeminiDB credentials)."
  pending_days    = "30"
  is_enabled      = true
}

# ---- the function's agency: VPC access only (the function reaches GeminiDB inside the VPC) ----
# Custom policy: exactly the VPC actions FunctionGraph needs to attach the function to the subnet
# (FunctionGraph user guide, "Configuring Agency Permissions"), no wildcard action or resource.
resource "huaweicloud_identity_role" "function_vpc" {
  count       = local.serverless ? 1 : 0
  name        = "${var.name}-fgs-vpc-access"
  description = "FunctionGraph attaches koogate to its VPC subnet."
  type        = "XA"
  policy      = <<-EOT
    {
      "Version": "1.1",
      "Statement": [
        {
          "Effect": "Allow",
          "Action": [
            "vpc:vpcs:get",
            "vpc:subnets:get",
            "vpc:ports:get",
            "vpc:ports:create",
            "vpc:ports:delete"
          ]
        }
      ]
    }
  EOT
}

resource "huaweicloud_identity_agency" "function" {
  count = local.serverless ? 1 : 0
  name  = "${var.name}-fgs"
  # The FunctionGraph service (cloud service agency "op_svc_cff").
  delegated_domain_name = "op_svc_cff"
  description           = "koogate FunctionGraph function: VPC access only"
  duration              = "FOREVER"

  project_role {
    project = var.region
    roles   = [huaweicloud_identity_role.function_vpc[0].name]
  }
}

resource "huaweicloud_fgs_function" "koogate" {
  count                 = local.serverless ? 1 : 0
  name                  = var.name
  app                   = "default"
  description           = "koogate serve: every KooGallery production interface route (bootstrap listens on 8000)"
  functiongraph_version = "v2"
  runtime               = "http"
  handler               = "bootstrap"
  code_type             = "zip"
  code_filename         = basename(var.function_zip)
  func_code             = filebase64(var.function_zip)
  memory_size           = var.function_memory_mb
  # The marketplace waits 5 s for an answer; koogate answers 000005 after KOOGATE_REQUEST_BUDGET_MS.
  timeout = 10

  agency     = huaweicloud_identity_agency.function[0].name
  vpc_id     = huaweicloud_vpc.koogate.id
  network_id = huaweicloud_vpc_subnet.koogate.id

  user_data = jsonencode(merge(local.store_env, {
    KOOGATE_ADDR             = "0.0.0.0:8000"
    KOOGATE_BASE_PATH        = var.base_path
    KOOGATE_MARKETPLACE_SITE = var.marketplace_site
    KOOGATE_METRICS          = "off"
    RUST_LOG                 = "info"
  }, var.koogate_env))

  # FunctionGraph encrypted environment variables (at most 4 KB in total): the bootstrap writes
  # KOOGATE_SECRETS_JSON to a private file and points KOOGATE_SECRETS_FILE at it.
  encrypted_user_data = jsonencode({
    KOOGATE_SECRETS_JSON  = var.secrets_json
    AWS_ACCESS_KEY_ID     = var.geminidb_access_key_id
    AWS_SECRET_ACCESS_KEY = var.geminidb_secret_access_key
  })
  user_data_encrypt_kms_key_id = huaweicloud_kms_key.koogate.id

  enable_lts_log  = true
  log_group_id    = huaweicloud_lts_group.koogate.id
  log_group_name  = huaweicloud_lts_group.koogate.group_name
  log_stream_id   = huaweicloud_lts_stream.koogate.id
  log_stream_name = huaweicloud_lts_stream.koogate.stream_name

  lifecycle {
    precondition {
      condition     = var.secrets_json != "" && var.geminidb_endpoint != ""
      error_message = "functiongraph needs secrets_json and geminidb_endpoint (README, steps 2 and 4)."
    }
  }
}

# ---- API gateway: dedicated instance, one group on the custom domain ----
resource "huaweicloud_apig_instance" "koogate" {
  count              = local.serverless ? 1 : 0
  name               = "${var.name}-apig"
  edition            = "BASIC"
  vpc_id             = huaweicloud_vpc.koogate.id
  subnet_id          = huaweicloud_vpc_subnet.koogate.id
  security_group_id  = huaweicloud_networking_secgroup.koogate.id
  availability_zones = var.availability_zones
  bandwidth_size     = 5
}

resource "huaweicloud_apig_group" "koogate" {
  count                 = local.serverless ? 1 : 0
  instance_id           = huaweicloud_apig_instance.koogate[0].id
  name                  = "${var.name}_group"
  description           = "KooGallery production interface (koogate)"
  domain_access_enabled = false
}

resource "huaweicloud_apig_group_domain_associate" "koogate" {
  count                     = local.serverless ? 1 : 0
  instance_id               = huaweicloud_apig_instance.koogate[0].id
  group_id                  = huaweicloud_apig_group.koogate[0].id
  url_domain                = var.domain
  min_ssl_version           = "TLSv1.2"
  is_http_redirect_to_https = false
}

resource "huaweicloud_apig_certificate_batch_domains_associate" "koogate" {
  count                        = local.serverless ? 1 : 0
  instance_id                  = huaweicloud_apig_instance.koogate[0].id
  certificate_id               = var.apig_certificate_id
  verify_disabled_domain_names = [var.domain]
  depends_on                   = [huaweicloud_apig_group_domain_associate.koogate]

  lifecycle {
    precondition {
      condition     = var.apig_certificate_id != ""
      error_message = "functiongraph needs apig_certificate_id (the certificate of var.domain in the APIG instance)."
    }
  }
}

# One API per route of the route table, exact match, no APIG authentication (every marketplace
# call is signed and verified by koogate itself; browser and Product API routes carry their own
# cookies and bearer tokens), all to the one function.
resource "huaweicloud_apig_api" "route" {
  for_each = local.serverless ? local.routes : {}

  instance_id             = huaweicloud_apig_instance.koogate[0].id
  group_id                = huaweicloud_apig_group.koogate[0].id
  name                    = "${var.name}_${each.key}"
  type                    = "Public"
  request_method          = each.value.method
  request_path            = local.route_paths[each.key]
  request_protocol        = "HTTPS"
  security_authentication = "NONE"
  matching                = "Exact"
  description             = "${each.value.method} ${local.route_paths[each.key]} (route table function ${each.value.function})"

  dynamic "request_params" {
    for_each = regexall("\\{([A-Za-z]+)\\}", local.route_paths[each.key])
    content {
      name     = request_params.value[0]
      location = "PATH"
      type     = "STRING"
      required = true
    }
  }

  func_graph {
    function_urn    = huaweicloud_fgs_function.koogate[0].urn
    version         = "latest"
    network_type    = "V2"
    timeout         = 5000
    invocation_type = "sync"
  }
}

# The custom domain serves the RELEASE environment.
resource "huaweicloud_apig_api_publishment" "route" {
  for_each = huaweicloud_apig_api.route

  instance_id = huaweicloud_apig_instance.koogate[0].id
  env_id      = "DEFAULT_ENVIRONMENT_RELEASE_ID"
  api_id      = each.value.id
}
