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

    pub(crate) fn prefix(self) -> &'static str {
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

/// `usage#<instanceId>`: the usage records of one instance, sort key [`usage_sk`]. Usage is
/// production data only: debug (testFlag) instances are never billed.
pub fn usage(instance_id: &str) -> String {
    format!("usage#{instance_id}")
}

/// `<begin>#<end>`: one metered interval (UTC `yyyyMMdd'T'HHmmss'Z'`, so it sorts by time).
pub fn usage_sk(begin_time: &str, end_time: &str) -> String {
    format!("{begin_time}#{end_time}")
}

/// How many partitions the pending-usage pointers are spread over (DynamoDB), so that recording
/// usage for many instances does not make one hot partition.
pub const USAGE_PENDING_SHARDS: u32 = 8;

/// `usage-pending#<shard>`: the pending-usage pointers of one shard (DynamoDB backend); the
/// shard is a stable hash of the instance ID.
pub fn usage_pending(instance_id: &str) -> String {
    // FNV-1a: stable across processes and releases (unlike std's RandomState).
    let mut h: u32 = 0x811c_9dc5;
    for b in instance_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    usage_pending_shard(h % USAGE_PENDING_SHARDS)
}

/// `usage-pending#<shard>` for a shard number.
pub fn usage_pending_shard(shard: u32) -> String {
    format!("usage-pending#{shard}")
}

/// `<end>#<instanceId>#<begin>`: a pointer's sort key, so a shard is read oldest end first and
/// `sk < "<due>$"` selects the intervals that ended by `<due>`.
pub fn usage_pending_sk(instance_id: &str, begin_time: &str, end_time: &str) -> String {
    format!("{end_time}#{instance_id}#{begin_time}")
}

/// What an operator lists (`koogate list`): each kind is a key prefix of its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listing {
    /// `instance#<instanceId>`
    Instances,
    /// `license#<code>` (License 2.0 codes)
    Licenses,
    /// `order-notify#<orderId>#<orderLineId>`
    Notifications,
    /// `tenant#<tenantId>` (the tenant item of each joint-operation directory)
    Tenants,
}

impl Listing {
    pub const ALL: [Listing; 4] = [
        Listing::Instances,
        Listing::Licenses,
        Listing::Notifications,
        Listing::Tenants,
    ];

    /// The key prefix of this kind's records (after the partition prefix).
    pub fn prefix(self) -> &'static str {
        match self {
            Listing::Instances => "instance#",
            Listing::Licenses => "license#",
            Listing::Notifications => "order-notify#",
            Listing::Tenants => "tenant#",
        }
    }

    /// The kind and identifier of a record key in `partition`, if it is one an operator lists.
    pub fn of_key(partition: Partition, key: &str) -> Option<(Listing, &str)> {
        let rest = key.strip_prefix(partition.prefix())?;
        Listing::ALL
            .into_iter()
            .find_map(|l| rest.strip_prefix(l.prefix()).map(|id| (l, id)))
    }

    /// The full key prefix of this kind's records in `partition`.
    pub fn key_prefix(self, partition: Partition) -> String {
        format!("{}{}", partition.prefix(), self.prefix())
    }

    /// `index#<kind>` in `partition`: the DynamoDB backend's index of these records (sort key =
    /// identifier), written when a record is first created, since DynamoDB is never scanned.
    pub fn index_pk(self, partition: Partition) -> String {
        format!("{}index#{}", partition.prefix(), self.prefix())
    }
}
