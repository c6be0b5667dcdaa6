//! queryInstance (D8, D9): read-only, up to 100 IDs, one batch read.

use std::collections::HashMap;

use koogate_protocol::aes_credentials;
use koogate_protocol::envelope::Answer;
use koogate_protocol::request::QueryInstance;
use koogate_protocol::result_code::ResultCode;
use koogate_runtime::pipeline::store_failure;
use koogate_runtime::routes::InterfaceType;
use koogate_runtime::{Call, Outcome};
use koogate_store::{AppInfo, Instance, InstanceState, Partition};
use serde_json::{json, Map, Value};

const ACTIVITY: &str = "queryInstance";

/// `appInfo` as the marketplace reads it; credentials AES-encrypted in AES mode (D9).
fn app_info_json(info: &AppInfo, encrypt: Option<(&str, aes_credentials::EncryptType)>) -> Value {
    let mut m = Map::new();
    m.insert("frontEndUrl".into(), json!(info.front_end_url));
    if let Some(v) = &info.admin_url {
        m.insert("adminUrl".into(), json!(v));
    }
    let secret = |v: &str| match encrypt {
        Some((key, t)) => aes_credentials::encrypt(key, t, v),
        None => v.to_string(),
    };
    if let Some(v) = &info.user_name {
        m.insert("userName".into(), json!(secret(v)));
    }
    if let Some(v) = &info.password {
        m.insert("password".into(), json!(secret(v)));
    }
    if let Some(v) = &info.memo {
        m.insert("memo".into(), json!(v));
    }
    Value::Object(m)
}

fn entry(
    instance_id: &str,
    info: Option<&AppInfo>,
    encrypt: Option<(&str, aes_credentials::EncryptType)>,
) -> Value {
    let mut m = Map::new();
    m.insert("instanceId".into(), json!(instance_id));
    if let Some(info) = info {
        m.insert("appInfo".into(), app_info_json(info, encrypt));
    }
    Value::Object(m)
}

pub async fn handle(call: &Call<'_>, r: &QueryInstance) -> Outcome {
    let debug = r.test_flag;
    let app = call.app;
    let partition = Partition::from_debug_flag(debug);
    let found = match app.store.get_instances(partition, &r.instance_ids).await {
        Ok(f) => f,
        Err(e) => return store_failure(Some(ACTIVITY), debug, &e),
    };
    let by_id: HashMap<&str, &Instance> =
        found.iter().map(|i| (i.instance_id.as_str(), i)).collect();
    let known: Vec<&Instance> = r
        .instance_ids
        .iter()
        .filter_map(|id| by_id.get(id.as_str()).copied())
        .collect();

    let encrypt_type = app.config.credential_encryption;
    let current_key = app
        .secrets
        .keys(InterfaceType::Basic)
        .first()
        .map(String::as_str);
    let encrypt = encrypt_type.zip(current_key).map(|(t, k)| (k, t));
    let with_mode = |answer: Answer| match encrypt_type {
        Some(t) => answer.with("encryptType", t.as_str()),
        None => answer,
    };

    if known.is_empty() {
        if !debug {
            return Outcome::answer(
                Answer::code(ResultCode::InstanceNotFound),
                Some(ACTIVITY),
                false,
            )
            .because("none of the requested instances is known");
        }
        // D6: the console's saved query case keeps passing with a demo entry per ID.
        let info: Vec<Value> = r
            .instance_ids
            .iter()
            .map(|id| entry(id, Some(&app.provisioner.demo_app_info(id)), encrypt))
            .collect();
        return Outcome::answer(
            with_mode(Answer::ok().with("info", info)),
            Some(ACTIVITY),
            true,
        );
    }

    let ready =
        |i: &&&Instance| !matches!(i.state, InstanceState::Provisioning | InstanceState::Failed);
    let info: Vec<Value> = known
        .iter()
        .filter(ready)
        .map(|i| {
            let shown = (i.state != InstanceState::Released)
                .then_some(i.app_info.as_ref())
                .flatten();
            entry(&i.instance_id, shown, encrypt)
        })
        .collect();

    if known.iter().any(|i| i.state == InstanceState::Provisioning) {
        return Outcome::answer(
            with_mode(Answer::code(ResultCode::Processing).with("info", info)),
            Some(ACTIVITY),
            debug,
        );
    }
    if let Some(failed) = known.iter().find(|i| i.state == InstanceState::Failed) {
        return Outcome::answer(
            Answer::error(
                ResultCode::InternalError,
                format!(
                    "provisioning of instance {} failed; it is retried on the next newInstance",
                    failed.instance_id
                ),
            ),
            Some(ACTIVITY),
            debug,
        );
    }
    Outcome::answer(
        with_mode(Answer::ok().with("info", info)),
        Some(ACTIVITY),
        debug,
    )
}
