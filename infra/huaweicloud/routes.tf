# The route table (each function crate's ROUTES, assembled in infra/generator/src/routes.rs), one
# entry per route, keyed by the APIG API name suffix. `base = true`: the route lives under var.base_path (the registered production
# address; `path` is relative to it, "" is the base itself); `base = false`: `path` is absolute.
# `function` is the route table's function name (all of them are served by the one koogate serve
# process here). tests/tests/infra_huaweicloud.rs fails when this list and the route table differ.
locals {
  routes = {
    saas_post                 = { method = "POST", base = true, path = "", function = "saas" }
    saas_get                  = { method = "GET", base = true, path = "", function = "saas-legacy" }
    license_post              = { method = "POST", base = false, path = "/license", function = "license" }
    license_get               = { method = "GET", base = false, path = "/license", function = "license-legacy" }
    order_notify              = { method = "POST", base = false, path = "/order-notify", function = "order-notify" }
    tenant_sync_v2            = { method = "POST", base = true, path = "/produceAPI/v2/tenantSync", function = "tenant-sync" }
    tenant_sync_v1            = { method = "POST", base = true, path = "/produceAPI/tenantSync", function = "tenant-sync" }
    application_sync_v2       = { method = "POST", base = true, path = "/produceAPI/v2/applicationSync", function = "application-sync" }
    application_sync_v1       = { method = "POST", base = true, path = "/produceAPI/applicationSync", function = "application-sync" }
    auth_sync_v2              = { method = "POST", base = true, path = "/produceAPI/v2/authSync", function = "auth-sync" }
    auth_sync_v1              = { method = "POST", base = true, path = "/produceAPI/authSync", function = "auth-sync" }
    single_org_sync_v2        = { method = "POST", base = true, path = "/produceAPI/v2/singleOrgSync", function = "single-org-sync" }
    single_org_sync_v1        = { method = "POST", base = true, path = "/produceAPI/singleOrgSync", function = "single-org-sync" }
    all_org_sync_v2           = { method = "POST", base = true, path = "/produceAPI/v2/allOrgSync", function = "all-org-sync" }
    all_org_sync_v1           = { method = "POST", base = true, path = "/produceAPI/allOrgSync", function = "all-org-sync" }
    sso_login                 = { method = "GET", base = false, path = "/sso/login", function = "sso" }
    sso_callback              = { method = "GET", base = false, path = "/sso/callback", function = "sso" }
    sso_logout                = { method = "GET", base = false, path = "/sso/logout", function = "sso" }
    sso_session               = { method = "GET", base = false, path = "/sso/session", function = "sso" }
    isv_instance_get          = { method = "GET", base = false, path = "/isv/v1/instances/{instanceId}", function = "product-api" }
    isv_instance_provisioned  = { method = "POST", base = false, path = "/isv/v1/instances/{instanceId}/provisioned", function = "product-api" }
    isv_license_deliver       = { method = "POST", base = false, path = "/isv/v1/licenses/{eventId}", function = "product-api" }
    isv_usage                 = { method = "POST", base = false, path = "/isv/v1/usage", function = "product-api" }
  }

  # "/saas" -> "/saas" and "/saas/..."; "/" -> "/" and "/...".
  base_root   = var.base_path
  base_prefix = trimsuffix(var.base_path, "/")

  route_paths = {
    for key, route in local.routes :
    key => route.base ? (route.path == "" ? local.base_root : "${local.base_prefix}${route.path}") : route.path
  }
}
