//! Item keys. One naming scheme for both backends, so a record has the same identity wherever it
//! is stored, and debug traffic (D6) lives under its own prefix so it can never collide with or be
//! mistaken for production data.

/// Production records and debug-console records (testFlag 1) are kept apart (D6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Partition {
    Production,
    Debug,
}

impl Partition {
    pub fn from_debug_flag(debug: bool) -> Self {
        if debug {
            Partition::Debug
        } else {
            Partition::Production
        }
    }

    pub fn is_debug(self) -> bool {
        self == Partition::Debug
    }

    fn prefix(self) -> &'static str {
        match self {
            Partition::Production => "",
            Partition::Debug => "debug#",
        }
    }
}

/// `nonce#<interface type>#<nonce>`: nonces are not partitioned, a replay is a replay.
pub fn nonce(interface: &str, nonce: &str) -> String {
    format!("nonce#{interface}#{nonce}")
}

/// `order#<orderId>#<orderLineId>`: the permanent order → instanceId mapping, which is also the
/// idempotency record of newInstance.
pub fn order(partition: Partition, order_id: &str, order_line_id: &str) -> String {
    format!("{}order#{order_id}#{order_line_id}", partition.prefix())
}

/// `instance#<instanceId>`.
pub fn instance(partition: Partition, instance_id: &str) -> String {
    format!("{}instance#{instance_id}", partition.prefix())
}

/// `license-event#<eventId>#<deviceFingerprint>`: one getLicenseAsync application (its
/// idempotency key, documented as `(eventId, deviceFingerprint)`).
pub fn license_event(partition: Partition, event_id: &str, device_fingerprint: &str) -> String {
    format!(
        "{}license-event#{event_id}#{device_fingerprint}",
        partition.prefix()
    )
}

/// `license#<code>`: a License 2.0 code.
pub fn license_code(partition: Partition, code: &str) -> String {
    format!("{}license#{code}", partition.prefix())
}

/// `order-notify#<orderId>#<orderLineId>`: one order notification.
pub fn order_notification(partition: Partition, order_id: &str, order_line_id: &str) -> String {
    format!(
        "{}order-notify#{order_id}#{order_line_id}",
        partition.prefix()
    )
}

/// `legacy-license#<orderId>`: the old License `getLicense` lock and its stored answer.
pub fn legacy_license(partition: Partition, order_id: &str) -> String {
    format!("{}legacy-license#{order_id}", partition.prefix())
}

/// `tenant#<tenantId>`: the partition of one joint-operation tenant's directory (tenant, apps,
/// users, access grants, departments), so that a tenant's departments are one Query.
pub fn tenant(partition: Partition, tenant_id: &str) -> String {
    format!("{}tenant#{tenant_id}", partition.prefix())
}

/// `session#<id>`: one signed-in browser (SSO). `id` is a digest of the cookie value, so that the
/// store never holds a usable session cookie.
pub fn session(id: &str) -> String {
    format!("session#{id}")
}

/// `sso-login#<id>`: one started login (its return target and CSRF `state`), single use; `id` is
/// a digest of the state cookie.
pub fn sso_login(id: &str) -> String {
    format!("sso-login#{id}")
}
