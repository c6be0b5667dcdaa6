//! `GET /saas`: the SaaS V1 interface. Everything arrives in the query string, verified by the
//! pipeline's V1 authToken scheme (D16); the activities share the instance records and the
//! lifecycle rules of V2 (`koogate_saas`), so an instance created through one interface is seen
//! by the other. V1 answers always carry `encryptType` and AES-encrypted credentials.

#![forbid(unsafe_code)]

use async_trait::async_trait;
use koogate_protocol::aes_credentials::{self, EncryptType};
use koogate_protocol::envelope::Answer;
use koogate_protocol::legacy_answer::{self, V1AppInfo, V1InstanceInfo};
use koogate_protocol::legacy_request::{
    self, LegacyRequest, LegacyRoute, V1NewInstance, V1QueryInstance,
};
use koogate_protocol::request::InstanceStatusChange;
use koogate_protocol::result_code::ResultCode;
use koogate_runtime::routes::{self, InterfaceType, Route};
use koogate_runtime::{Call, Function, Outcome};
use koogate_saas::lifecycle::{self, OrderRef, Target};
use koogate_saas::new_instance::{self, Purchase, Purchased};
use koogate_saas::query_instance;
use koogate_store::{keys, AppInfo, Partition};

/// The function behind `GET /saas`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SaasLegacyFunction;

/// V1 credentials are always encrypted (documented); the key size follows the V2 setting when
/// one is made, AES-256 otherwise (the V1 default).
fn encrypt_type(call: &Call<'_>) -> EncryptType {
    call.app
        .config
        .credential_encryption
        .unwrap_or(EncryptType::Aes256)
}

/// V1 `appInfo`: credentials always encrypted under the legacy key, each with a fresh IV from
/// the operating system's random source.
fn v1_app_info(call: &Call<'_>, info: &AppInfo) -> Result<V1AppInfo, aes_credentials::AesError> {
    let key = call.key(InterfaceType::Legacy);
    let t = encrypt_type(call);
    let secret = |v: &str| aes_credentials::encrypt(&mut rand::rngs::OsRng, &key, t, v);
    Ok(V1AppInfo {
        front_end_url: info.front_end_url.clone(),
        admin_url: info.admin_url.clone(),
        user_name: info.user_name.as_deref().map(secret).transpose()?,
        password: info.password.as_deref().map(secret).transpose()?,
        memo: info.memo.clone(),
    })
}

#[async_trait]
impl Function for SaasLegacyFunction {
    fn route(&self) -> &'static Route {
        &routes::SAAS_LEGACY
    }

    async fn handle(&self, call: &Call<'_>) -> Outcome {
        let request = match legacy_request::parse_legacy_on(LegacyRoute::Saas, call.params) {
            Ok(r) => r,
            Err(e) => return Outcome::rejected(&e, None),
        };
        let debug = request.is_debug();
        let t = |activity: &'static str, instance_id| Target {
            activity,
            debug,
            instance_id,
        };
        match &request {
            LegacyRequest::NewInstance(r) => new_instance(call, r).await,
            LegacyRequest::RefreshInstance(r) => {
                let scene = if r.trial_to_formal {
                    "TRIAL_TO_FORMAL"
                } else {
                    "RENEWAL"
                };
                let order = OrderRef {
                    order_id: &r.order_id,
                    order_line_id: "",
                };
                lifecycle::renew(
                    call,
                    t("refreshInstance", &r.instance_id),
                    order,
                    scene,
                    r.product_id.as_deref(),
                    &r.expire_time,
                    r.expire_time_ms,
                )
                .await
            }
            LegacyRequest::ExpireInstance(r) => {
                lifecycle::set_status(
                    call,
                    t("expireInstance", &r.instance_id),
                    InstanceStatusChange::Freeze,
                )
                .await
            }
            LegacyRequest::ReleaseInstance(r) => {
                lifecycle::release(call, t("releaseInstance", &r.instance_id), None, None).await
            }
            LegacyRequest::Upgrade(r) => {
                let order = OrderRef {
                    order_id: &r.order_id,
                    order_line_id: "",
                };
                lifecycle::upgrade(
                    call,
                    t("upgrade", &r.instance_id),
                    order,
                    serde_json::json!({}),
                )
                .await
            }
            LegacyRequest::InstanceStatus(r) => {
                lifecycle::set_status(call, t("instanceStatus", &r.instance_id), r.status).await
            }
            LegacyRequest::QueryInstance(r) => query(call, r).await,
            // parse_legacy_on(Saas) returns only the activities of this route.
            other => Outcome::answer(
                Answer::error(
                    ResultCode::InvalidParam,
                    format!(
                        "activity {} is not served on GET /saas",
                        other.activity().name()
                    ),
                ),
                None,
                debug,
            ),
        }
    }
}

/// V1 newInstance: one instance per `orderId` (D7 with the V1 key), then the V1 answer built from
/// the instance record every time, because V1 repeats the call to display the credentials.
async fn new_instance(call: &Call<'_>, r: &V1NewInstance) -> Outcome {
    const ACTIVITY: &str = "newInstance";
    let debug = r.test_flag;
    // Encrypted contacts must decrypt (docs/protocol.md, inbound-legacy §5); they are checked, never logged.
    let key = call.key(InterfaceType::Legacy);
    let contact_type = call.app.config.v1_contact_encryption;
    for (name, value) in [("mobilePhone", &r.mobile_phone), ("email", &r.email)] {
        if let Some(v) = value {
            if legacy_request::decrypt_contact(&key, contact_type, v).is_err() {
                return Outcome::answer(
                    Answer::error(
                        ResultCode::InvalidParam,
                        format!("{name} cannot be decrypted with the legacy key"),
                    ),
                    Some(ACTIVITY),
                    debug,
                );
            }
        }
    }
    let partition = Partition::from_debug_flag(debug);
    let purchase = Purchase {
        debug,
        key: keys::order(partition, &r.order_id, ""),
        validation: new_instance::validation_of(&[
            Some(&r.customer_id),
            Some(&r.product_id),
            r.sku_code.as_deref(),
        ]),
        proposed_id: new_instance::proposed_instance_id(r.business_id.as_deref()),
        order_id: r.order_id.clone(),
        order_line_id: String::new(),
        product_id: Some(r.product_id.clone()),
        sku_code: r.sku_code.clone(),
        charging_mode: r.charging_mode.clone(),
        expire_time: r.expire_time.clone(),
        period_type: None,
        period_number: None,
        amount: None,
        customer_id: Some(r.customer_id.clone()),
    };
    match new_instance::purchase(call, &purchase).await {
        Purchased::Refused(outcome) => outcome,
        Purchased::Done {
            instance_id, code, ..
        } => {
            if code != ResultCode::Success {
                let answer = Answer::code(code)
                    .with("encryptType", encrypt_type(call).as_str())
                    .with("instanceId", instance_id);
                return Outcome::answer(answer, Some(ACTIVITY), debug);
            }
            let info = match call.app.store.get_instance(partition, &instance_id).await {
                Ok(inst) => inst.and_then(|i| i.app_info),
                Err(e) => {
                    return koogate_runtime::pipeline::store_failure(Some(ACTIVITY), debug, &e)
                }
            };
            let info = info.unwrap_or_else(|| call.app.provisioner.demo_app_info(&instance_id));
            let v1_info = match v1_app_info(call, &info) {
                Ok(i) => i,
                Err(e) => return query_instance::encryption_failure(ACTIVITY, debug, &e),
            };
            let answer = legacy_answer::new_instance_answer(
                &instance_id,
                encrypt_type(call),
                Some(&v1_info),
            );
            Outcome::answer(answer, Some(ACTIVITY), debug)
        }
    }
}

/// V1 queryInstance: the V2 decision (D8), rendered with encrypted credentials.
async fn query(call: &Call<'_>, r: &V1QueryInstance) -> Outcome {
    const ACTIVITY: &str = "queryInstance";
    let found = match query_instance::lookup(call, r.test_flag, &r.instance_ids).await {
        Ok(l) => l,
        Err(outcome) => return outcome,
    };
    let answer = match (found.code, found.message) {
        (ResultCode::InstanceNotFound, _) => Answer::code(ResultCode::InstanceNotFound),
        (code, Some(message)) => Answer::error(code, message),
        (code, None) => {
            let info: Result<Vec<V1InstanceInfo>, _> = found
                .entries
                .iter()
                .map(|e| {
                    Ok(V1InstanceInfo {
                        instance_id: e.instance_id.clone(),
                        app_info: e
                            .app_info
                            .as_ref()
                            .map(|a| v1_app_info(call, a))
                            .transpose()?,
                        usage_info: Vec::new(),
                    })
                })
                .collect();
            match info {
                Ok(info) => legacy_answer::query_instance_answer(code, encrypt_type(call), &info),
                Err(e) => return query_instance::encryption_failure(ACTIVITY, r.test_flag, &e),
            }
        }
    };
    Outcome::answer(answer, Some(ACTIVITY), r.test_flag)
}
