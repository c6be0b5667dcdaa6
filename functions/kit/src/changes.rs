//! Which writes of a sync change the stored directory: a kit sync is applied whole every time
//! (its writes are idempotent), but only what it changes is an event, so a resent sync — the
//! marketplace retries freely — emits nothing.
//!
//! Stored items are read once before the writes: one GetItem each for a small sync, one Query per
//! kind of item (users, grants, departments) for a large one. Bookkeeping members (`updated_at_ms`,
//! `sync_time`, `granted_at_ms`) do not count as a change.

use std::collections::{HashMap, HashSet};

use koogate_runtime::Call;
use koogate_store::{DirectoryWrite, Partition, StoreError};
use serde_json::Value;

/// Up to this many writes are read one by one; more are read by prefix.
const SINGLE_READS: usize = 4;

/// The members that change on every write without changing anything the product cares about.
const BOOKKEEPING: [&str; 3] = ["updated_at_ms", "sync_time", "granted_at_ms"];

fn substance(doc: &str) -> Value {
    let mut v: Value = serde_json::from_str(doc).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        for k in BOOKKEEPING {
            m.remove(k);
        }
    }
    v
}

fn sk_of(w: &DirectoryWrite) -> &str {
    match w {
        DirectoryWrite::Put(item) => &item.sk,
        DirectoryWrite::Delete { sk } => sk,
    }
}

/// The sort keys of `writes` whose write changes what is stored for tenant `tenant_id`.
pub async fn changed(
    call: &Call<'_>,
    partition: Partition,
    tenant_id: &str,
    writes: &[DirectoryWrite],
) -> Result<HashSet<String>, StoreError> {
    let store = &call.app.store;
    let mut stored: HashMap<String, String> = HashMap::new();
    if writes.len() <= SINGLE_READS {
        for w in writes {
            if let Some(item) = store
                .get_directory_item(partition, tenant_id, sk_of(w))
                .await?
            {
                stored.insert(item.sk, item.doc);
            }
        }
    } else {
        // The kind of an item is its sort key up to the first '#' (`user#`, `access#`, `org#`).
        let prefixes: HashSet<String> = writes
            .iter()
            .map(|w| {
                let sk = sk_of(w);
                sk.find('#')
                    .map_or(sk.to_string(), |i| sk[..=i].to_string())
            })
            .collect();
        for prefix in prefixes {
            for item in store.list_directory(partition, tenant_id, &prefix).await? {
                stored.insert(item.sk, item.doc);
            }
        }
    }
    Ok(writes
        .iter()
        .filter(|w| match w {
            DirectoryWrite::Put(item) => stored
                .get(&item.sk)
                .is_none_or(|old| substance(old) != substance(&item.doc)),
            DirectoryWrite::Delete { sk } => stored.contains_key(sk),
        })
        .map(|w| sk_of(w).to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::substance;

    #[test]
    fn bookkeeping_is_not_a_change() {
        assert_eq!(
            substance(r#"{"name":"a","updated_at_ms":1,"sync_time":"x"}"#),
            substance(r#"{"name":"a","updated_at_ms":2,"sync_time":"y"}"#)
        );
        assert_ne!(
            substance(r#"{"name":"a","updated_at_ms":1}"#),
            substance(r#"{"name":"b","updated_at_ms":1}"#)
        );
    }
}
