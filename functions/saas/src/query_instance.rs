//! queryInstance (D8, D9): read-only, up to 100 IDs, one batch read.

use std::collections::HashMap;
use std::sync::Arc;

use koogate_protocol::aes_credentials;
use koogate_protocol::envelope::Answer;
use koogate_protocol::request::QueryInstance;
use koogate_protocol::result_code::ResultCode;
use koogate_runtime::routes::InterfaceType;
use koogate_runtime::{Call, Failure, Reply};
use koogate_store::{AppInfo, Instance, InstanceState, Partition, StoreError};
use serde_json::{json, Map, Value};

/// `appInfo` as the marketplace reads it; credentials AES-encrypted in AES mode (D9), each with a
/// fresh IV from the operating system's random source.
fn app_info_json(
    info: &AppInfo,
    encrypt: Option<(&str, aes_credentials::EncryptType)>,
) -> Result<Value, aes_credentials::AesError> {
    let mut m = Map::new();
    m.insert("frontEndUrl".into(), json!(info.front_end_url));
    if let Some(v) = &info.admin_url {
        m.insert("adminUrl".into(), json!(v));
    }
    let secret = |v: &str| match encrypt {
        Some((key, t)) => aes_credentials::encrypt(&mut rand::rngs::OsRng, key, t, v),
        None => Ok(v.to_string()),
    };
    if let Some(v) = &info.user_name {
        m.insert("userName".into(), json!(secret(v)?));
    }
    if let Some(v) = &info.password {
        m.insert("password".into(), json!(secret(v)?));
    }
    if let Some(v) = &info.memo {
        m.insert("memo".into(), json!(v));
    }
    Ok(Value::Object(m))
}

fn entry(
    e: &Entry,
    encrypt: Option<(&str, aes_credentials::EncryptType)>,
) -> Result<Value, aes_credentials::AesError> {
    let mut m = Map::new();
    m.insert("instanceId".into(), json!(e.instance_id));
    if let Some(info) = &e.app_info {
        m.insert("appInfo".into(), app_info_json(info, encrypt)?);
    }
    if let Some((value, at)) = &e.usage {
        // usageValue is a JSON number (Double(12,4)); the text has at most 4 decimals.
        let number = serde_json::from_str::<Value>(value).unwrap_or_else(|_| json!(0));
        m.insert(
            "usageInfo".into(),
            json!([{"usageValue": number, "statisticalTime": at}]),
        );
    }
    Ok(Value::Object(m))
}

/// Whether queryInstance reports usage for the instance: pay-per-use, or not known to be
/// anything else (a thin newInstance that Query Order has not enriched yet).
fn may_have_usage(i: &Instance) -> bool {
    i.charging_mode
        .as_deref()
        .is_none_or(|m| m.eq_ignore_ascii_case("ON_DEMAND"))
}

/// One `info` entry: an instance and the access it grants (none once released).
#[derive(Debug, Clone)]
pub struct Entry {
    pub instance_id: String,
    pub app_info: Option<AppInfo>,
    /// Cumulative pay-per-use usage and its `statisticalTime`, from the usage records.
    pub usage: Option<(String, String)>,
}

/// What a query found, decided per D8 (and D6 for debug traffic).
#[derive(Debug, Clone)]
pub struct Lookup {
    pub code: ResultCode,
    pub message: Option<String>,
    pub entries: Vec<Entry>,
}

/// queryInstance's decision, shared by V2 and V1 (which differ only in how they render it).
pub async fn lookup(call: &Call<'_>, debug: bool, ids: &[String]) -> Result<Lookup, Failure> {
    let app = call.app;
    let partition = Partition::from_debug_flag(debug);
    let found = app.store.get_instances(partition, ids).await?;
    let by_id: HashMap<&str, &Instance> =
        found.iter().map(|i| (i.instance_id.as_str(), i)).collect();
    let known: Vec<&Instance> = ids
        .iter()
        .filter_map(|id| by_id.get(id.as_str()).copied())
        .collect();

    if known.is_empty() {
        if !debug {
            return Ok(Lookup {
                code: ResultCode::InstanceNotFound,
                message: None,
                entries: Vec::new(),
            });
        }
        // D6: the console's saved query case keeps passing with a demo entry per ID.
        let entries = ids
            .iter()
            .map(|id| Entry {
                instance_id: id.clone(),
                app_info: Some(app.provisioner.demo_app_info(id)),
                usage: None,
            })
            .collect();
        return Ok(Lookup {
            code: ResultCode::Success,
            message: None,
            entries,
        });
    }
    let answered: Vec<&Instance> = known
        .iter()
        .filter(|i| !matches!(i.state, InstanceState::Provisioning | InstanceState::Failed))
        .copied()
        .collect();
    // Usage is production data only (debug instances are never billed). The reads of up to 100
    // instances run side by side: one after another they could take most of the budget.
    let mut reads = tokio::task::JoinSet::new();
    for i in answered.iter().filter(|i| !debug && may_have_usage(i)) {
        let (store, id) = (Arc::clone(&app.store), i.instance_id.clone());
        reads.spawn(async move {
            let records = store.instance_usage(&id).await;
            (id, records)
        });
    }
    let mut usage_of = HashMap::new();
    while let Some(joined) = reads.join_next().await {
        let (id, records) =
            joined.map_err(|e| StoreError::Unavailable(format!("usage read task failed: {e}")))?;
        usage_of.insert(id, koogate_runtime::usage::cumulative(&records?));
    }
    let mut entries = Vec::new();
    for i in answered {
        let usage = usage_of.remove(&i.instance_id).flatten();
        entries.push(Entry {
            instance_id: i.instance_id.clone(),
            app_info: (i.state != InstanceState::Released)
                .then(|| i.app_info.clone())
                .flatten(),
            usage,
        });
    }
    if known.iter().any(|i| i.state == InstanceState::Provisioning) {
        return Ok(Lookup {
            code: ResultCode::Processing,
            message: None,
            entries,
        });
    }
    if let Some(failed) = known.iter().find(|i| i.state == InstanceState::Failed) {
        let message = format!(
            "provisioning of instance {} failed; it is retried on the next newInstance",
            failed.instance_id
        );
        return Ok(Lookup {
            code: ResultCode::InternalError,
            message: Some(message),
            entries: Vec::new(),
        });
    }
    Ok(Lookup {
        code: ResultCode::Success,
        message: None,
        entries,
    })
}

/// The answer when credentials could not be encrypted (no random IV): `000005`, so the
/// marketplace asks again.
pub fn encryption_failure(e: &aes_credentials::AesError) -> Failure {
    Failure::new(
        Answer::error(
            ResultCode::InternalError,
            "credentials could not be encrypted, please retry",
        ),
        format!("credential encryption failed: {e}"),
    )
}

/// V2 queryInstance.
pub async fn handle(call: &Call<'_>, r: &QueryInstance) -> Result<Reply, Failure> {
    let found = lookup(call, r.test_flag, &r.instance_ids).await?;
    let app = call.app;
    let encrypt_type = app.config.credential_encryption;
    let secrets = app.secrets();
    let current_key = secrets
        .keys(InterfaceType::Basic)
        .first()
        .map(String::as_str);
    let encrypt = encrypt_type.zip(current_key).map(|(t, k)| (k, t));
    let mut answer = match &found.message {
        Some(m) => Answer::error(found.code, m.clone()),
        None => Answer::code(found.code),
    };
    match found.code {
        ResultCode::InstanceNotFound => Err(Failure::new(
            answer,
            "none of the requested instances is known",
        )),
        ResultCode::InternalError => {
            let reason = found.message.unwrap_or_default();
            Err(Failure::new(answer, reason))
        }
        _ => {
            if let Some(t) = encrypt_type {
                answer = answer.with("encryptType", t.as_str());
            }
            let info = found
                .entries
                .iter()
                .map(|e| entry(e, encrypt))
                .collect::<Result<Vec<Value>, _>>()
                .map_err(|e| encryption_failure(&e))?;
            Ok(answer.with("info", info).into())
        }
    }
}
