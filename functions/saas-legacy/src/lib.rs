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
use koogate_runtime::routes::{AuthScheme, InterfaceType, Route};
use koogate_runtime::{Call, Failure, Function, Reply};
use koogate_saas::lifecycle::{self, OrderRef, Target};
use koogate_saas::new_instance::{self, Purchase};
use koogate_saas::query_instance;
use koogate_store::{keys, AppInfo, Partition};

/// `GET /saas`.
pub const ROUTE: Route = Route {
    method: "GET",
    path: "/saas",
    function: "saas-legacy",
    interface: InterfaceType::Legacy,
    scheme: AuthScheme::V1QueryToken,
};

/// The routes this crate declares: [`ROUTE`].
pub const ROUTES: &[Route] = &[ROUTE];

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
        &ROUTE
    }

    async fn handle(&self, call: &Call<'_>) -> Result<Reply, Failure> {
        let request = legacy_request::parse_legacy_on(LegacyRoute::Saas, call.params)?;
        let debug = request.is_debug();
        call.label(request.activity().name(), debug);
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
                    &serde_json::Map::new(),
                )
                .await
            }
            LegacyRequest::InstanceStatus(r) => {
                lifecycle::set_status(call, t("instanceStatus", &r.instance_id), r.status).await
            }
            LegacyRequest::QueryInstance(r) => query(call, r).await,
            // parse_legacy_on(Saas) returns only the activities of this route.
            other => Err(Failure::invalid(format!(
                "activity {} is not served on GET /saas",
                other.activity().name()
            ))),
        }
    }
}

/// V1 newInstance: one instance per `orderId` (D7 with the V1 key), then the V1 answer built from
/// the instance record every time, because V1 repeats the call to display the credentials.
async fn new_instance(call: &Call<'_>, r: &V1NewInstance) -> Result<Reply, Failure> {
    let debug = r.test_flag;
    // Encrypted contacts must decrypt (docs/protocol.md, inbound-legacy §5); they are checked, never logged.
    let key = call.key(InterfaceType::Legacy);
    let contact_type = call.app.config.v1_contact_encryption;
    for (name, value) in [("mobilePhone", &r.mobile_phone), ("email", &r.email)] {
        if let Some(v) = value {
            if legacy_request::decrypt_contact(&key, contact_type, v).is_err() {
                return Err(Failure::invalid(format!(
                    "{name} cannot be decrypted with the legacy key"
                )));
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
    let done = new_instance::purchase(call, &purchase).await?;
    let instance_id = done.instance_id;
    if done.code != ResultCode::Success {
        let answer = Answer::code(done.code)
            .with("encryptType", encrypt_type(call).as_str())
            .with("instanceId", instance_id);
        return Ok(answer.into());
    }
    let info = call
        .app
        .store
        .get_instance(partition, &instance_id)
        .await?
        .and_then(|i| i.app_info)
        .unwrap_or_else(|| call.app.provisioner.demo_app_info(&instance_id));
    let v1_info = v1_app_info(call, &info).map_err(|e| query_instance::encryption_failure(&e))?;
    let answer =
        legacy_answer::new_instance_answer(&instance_id, encrypt_type(call), Some(&v1_info));
    Ok(answer.into())
}

/// V1 queryInstance: the V2 decision (D8), rendered with encrypted credentials.
async fn query(call: &Call<'_>, r: &V1QueryInstance) -> Result<Reply, Failure> {
    let found = query_instance::lookup(call, r.test_flag, &r.instance_ids).await?;
    let answer = match (found.code, found.message) {
        (ResultCode::InstanceNotFound, _) => {
            return Err(Failure::new(
                Answer::code(ResultCode::InstanceNotFound),
                "none of the requested instances is known",
            ))
        }
        (code, Some(message)) => {
            return Err(Failure::new(Answer::error(code, message.clone()), message))
        }
        (code, None) => {
            let info = found
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
                .collect::<Result<Vec<_>, aes_credentials::AesError>>()
                .map_err(|e| query_instance::encryption_failure(&e))?;
            legacy_answer::query_instance_answer(code, encrypt_type(call), &info)
        }
    };
    Ok(answer.into())
}
