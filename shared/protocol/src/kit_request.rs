//! Typed requests of the five joint-operation kit interfaces (docs/protocol.md (inbound-kit)), V2 and V1.
//!
//! One parser per interface reads both versions, because they differ only in a few shapes
//! (docs/protocol.md, inbound-kit §8): V1 sends `userList` and `orgInfo` as strings holding JSON, V1 orgs name
//! their department `name` instead of `orgName`, V1 users may nest some fields in `extension`, and
//! the flag sets differ. Each shape is accepted wherever it could be meant (an array where a
//! string is documented and the reverse), because refusing a sync loses the buyer's directory,
//! while the flags are checked per version: a flag the version does not have is a bad request.

// The fields are the spec's own, named as in docs/protocol.md (inbound-kit), which documents each of them.
#![allow(missing_docs)]

use crate::json::{self, Json};
use crate::request::fields::{Field, Fields, Value};
use crate::request::{json_object, RequestError};

/// The five kit interfaces, by the last segment of their path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KitOp {
    TenantSync,
    ApplicationSync,
    AuthSync,
    SingleOrgSync,
    AllOrgSync,
}

impl KitOp {
    pub const ALL: [KitOp; 5] = [
        KitOp::TenantSync,
        KitOp::ApplicationSync,
        KitOp::AuthSync,
        KitOp::SingleOrgSync,
        KitOp::AllOrgSync,
    ];

    /// The path segment and the name used in logs: `tenantSync`, ….
    pub fn name(self) -> &'static str {
        match self {
            KitOp::TenantSync => "tenantSync",
            KitOp::ApplicationSync => "applicationSync",
            KitOp::AuthSync => "authSync",
            KitOp::SingleOrgSync => "singleOrgSync",
            KitOp::AllOrgSync => "allOrgSync",
        }
    }
}

/// Which generation of the kit interfaces sent the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KitVersion {
    /// `/produceAPI/v2/<op>`, `x-sign` headers.
    V2,
    /// `/produceAPI/<op>`, `authToken` header.
    V1,
}

/// The `flag` of a sync call (D14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    Delete = 0,
    Add = 1,
    Modify = 2,
    /// authSync V2 only: take the app away, keep the directory record.
    Revoke = 3,
}

impl Flag {
    fn parse(n: i64) -> Option<Flag> {
        match n {
            0 => Some(Flag::Delete),
            1 => Some(Flag::Add),
            2 => Some(Flag::Modify),
            3 => Some(Flag::Revoke),
            _ => None,
        }
    }

    /// `true` for add and modify: the call carries the object's full state.
    pub fn upserts(self) -> bool {
        matches!(self, Flag::Add | Flag::Modify)
    }
}

/// The fields every kit body carries (docs/protocol.md, inbound-kit §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KitCommon {
    /// Empty when the call stems from the seller's own credential application or debugging.
    pub instance_id: String,
    /// `testFlag` 1: stored in the debug partition (D6).
    pub debug: bool,
    /// Informational sending time (UTC+8 `yyyyMMddHHmmssSSS`); the V1 token is keyed with it.
    pub time_stamp: String,
}

/// tenantSync (§3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSync {
    pub common: KitCommon,
    pub flag: Flag,
    pub tenant_id: String,
    /// Empty during credential application.
    pub order_id: String,
    pub tenant_code: String,
    pub name: String,
    pub domain_name: String,
}

/// applicationSync (§4).
#[derive(Clone, PartialEq, Eq)]
pub struct ApplicationSync {
    pub common: KitCommon,
    pub flag: Flag,
    pub tenant_id: String,
    pub app_id: String,
    pub client_id: String,
    /// Base64 RSA-OAEP ciphertext (D15); empty on a delete.
    pub client_secret: String,
}

impl std::fmt::Debug for ApplicationSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplicationSync")
            .field("common", &self.common)
            .field("flag", &self.flag)
            .field("tenant_id", &self.tenant_id)
            .field("app_id", &self.app_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// One user of authSync (§5). On a delete or revoke only `user_name` is needed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct KitUser {
    pub user_name: String,
    pub name: String,
    pub org_code: String,
    pub position: Option<String>,
    pub employee_code: Option<String>,
    pub employee_type: Option<i64>,
    pub role: String,
    pub enable: bool,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub work_place: Option<String>,
    pub entry_date: Option<String>,
}

impl std::fmt::Debug for KitUser {
    /// Phone numbers and e-mail addresses never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KitUser")
            .field("user_name", &self.user_name)
            .field("org_code", &self.org_code)
            .field("role", &self.role)
            .field("enable", &self.enable)
            .finish_non_exhaustive()
    }
}

/// authSync (§5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSync {
    pub common: KitCommon,
    pub flag: Flag,
    pub tenant_id: String,
    pub app_id: String,
    pub current_sync_time: String,
    pub users: Vec<KitUser>,
}

/// One department (§6, §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgInfo {
    pub org_code: String,
    pub org_name: String,
    /// Empty at the top level.
    pub parent_code: String,
}

/// singleOrgSync (§6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleOrgSync {
    pub common: KitCommon,
    pub flag: Flag,
    pub tenant_id: String,
    /// On a delete, only `org_code` is needed.
    pub org: OrgInfo,
}

/// allOrgSync (§7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllOrgSync {
    pub common: KitCommon,
    pub tenant_id: String,
    pub orgs: Vec<OrgInfo>,
}

/// A parsed kit request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KitRequest {
    Tenant(TenantSync),
    Application(ApplicationSync),
    Auth(AuthSync),
    SingleOrg(SingleOrgSync),
    AllOrg(AllOrgSync),
}

impl KitRequest {
    pub fn common(&self) -> &KitCommon {
        match self {
            KitRequest::Tenant(r) => &r.common,
            KitRequest::Application(r) => &r.common,
            KitRequest::Auth(r) => &r.common,
            KitRequest::SingleOrg(r) => &r.common,
            KitRequest::AllOrg(r) => &r.common,
        }
    }

    pub fn tenant_id(&self) -> &str {
        match self {
            KitRequest::Tenant(r) => &r.tenant_id,
            KitRequest::Application(r) => &r.tenant_id,
            KitRequest::Auth(r) => &r.tenant_id,
            KitRequest::SingleOrg(r) => &r.tenant_id,
            KitRequest::AllOrg(r) => &r.tenant_id,
        }
    }
}

/// Longest identifier accepted (tenantId, appId, userName, orgCode are String(64)). A longer one
/// is refused rather than truncated, since it names a key.
const MAX_ID_CHARS: usize = 64;

/// Parses the body of `op` as sent by `version`. Every failure answers `000002` naming the field.
pub fn parse_kit(op: KitOp, version: KitVersion, body: &[u8]) -> Result<KitRequest, RequestError> {
    let obj = json_object(body)?;
    let common = common(&obj)?;
    match op {
        KitOp::TenantSync => tenant_sync(&obj, version, common).map(KitRequest::Tenant),
        KitOp::ApplicationSync => {
            application_sync(&obj, version, common).map(KitRequest::Application)
        }
        KitOp::AuthSync => auth_sync(&obj, version, common).map(KitRequest::Auth),
        KitOp::SingleOrgSync => single_org_sync(&obj, common).map(KitRequest::SingleOrg),
        KitOp::AllOrgSync => all_org_sync(&obj, common).map(KitRequest::AllOrg),
    }
}

fn common(obj: &Json) -> Result<KitCommon, RequestError> {
    // Empty during credential application and debugging, so only its presence is checked.
    let instance_id = obj.field("instanceId");
    let instance_id = instance_id.string()?.ok_or(instance_id.missing())?;
    Ok(KitCommon {
        instance_id: instance_id.to_owned(),
        debug: checked_test_flag(obj.field("testFlag"))?,
        time_stamp: obj.field("timeStamp").required_text()?,
    })
}

/// The kit's `testFlag`: unlike the other families' lenient flag, an integer that must be 0 or 1
/// when present, so that a typo does not silently send debug traffic to production.
fn checked_test_flag(field: Field<'_>) -> Result<bool, RequestError> {
    if field.value.is_none() {
        return Ok(false);
    }
    match field.integer() {
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        _ => Err(field.invalid("must be 0 or 1")),
    }
}

/// The mandatory `flag`, which must be one of `allowed` for this interface and version.
fn flag(obj: &Json, allowed: &[Flag]) -> Result<Flag, RequestError> {
    let field = obj.field("flag");
    if field.value.is_none() {
        return Err(field.missing());
    }
    field
        .integer()
        .and_then(Flag::parse)
        .filter(|f| allowed.contains(f))
        .ok_or_else(|| {
            let list: Vec<String> = allowed.iter().map(|f| (*f as u8).to_string()).collect();
            field.invalid(format!("must be one of {}", list.join(", ")))
        })
}

/// A mandatory identifier: non-blank, at most [`MAX_ID_CHARS`] characters.
fn id(obj: &Json, field: &'static str) -> Result<String, RequestError> {
    let value = obj.required(field)?;
    bounded_id(field, value)
}

fn bounded_id(field: &'static str, value: String) -> Result<String, RequestError> {
    if value.chars().count() > MAX_ID_CHARS {
        return Err(RequestError::invalid(
            field,
            format!("longer than {MAX_ID_CHARS} characters"),
        ));
    }
    Ok(value)
}

/// A string member that must be present but may be empty (orderId during credential
/// application, parentCode at the top level), or a number.
fn present_string(obj: &Json, field: &'static str) -> Result<String, RequestError> {
    obj.field(field).string_or_number()
}

fn tenant_sync(
    obj: &Json,
    version: KitVersion,
    common: KitCommon,
) -> Result<TenantSync, RequestError> {
    let allowed: &[Flag] = match version {
        KitVersion::V2 => &[Flag::Delete, Flag::Add, Flag::Modify],
        KitVersion::V1 => &[Flag::Delete, Flag::Add],
    };
    let flag = flag(obj, allowed)?;
    let tenant_id = id(obj, "tenantId")?;
    let (tenant_code, name, domain_name) = if flag.upserts() {
        (
            obj.required("tenantCode")?,
            obj.required("name")?,
            obj.required("domainName")?,
        )
    } else {
        (
            present_string(obj, "tenantCode")?,
            present_string(obj, "name")?,
            present_string(obj, "domainName")?,
        )
    };
    Ok(TenantSync {
        common,
        flag,
        tenant_id,
        order_id: present_string(obj, "orderId")?,
        tenant_code,
        name,
        domain_name,
    })
}

fn application_sync(
    obj: &Json,
    version: KitVersion,
    common: KitCommon,
) -> Result<ApplicationSync, RequestError> {
    let allowed: &[Flag] = match version {
        KitVersion::V2 => &[Flag::Delete, Flag::Add, Flag::Modify],
        KitVersion::V1 => &[Flag::Delete, Flag::Add],
    };
    let flag = flag(obj, allowed)?;
    let tenant_id = id(obj, "tenantId")?;
    let app_id = id(obj, "appId")?;
    let (client_id, client_secret) = if flag.upserts() {
        (obj.required("clientId")?, obj.required("clientSecret")?)
    } else {
        (
            present_string(obj, "clientId")?,
            present_string(obj, "clientSecret")?,
        )
    };
    Ok(ApplicationSync {
        common,
        flag,
        tenant_id,
        app_id,
        client_id,
        client_secret,
    })
}

fn auth_sync(obj: &Json, version: KitVersion, common: KitCommon) -> Result<AuthSync, RequestError> {
    let allowed: &[Flag] = match version {
        KitVersion::V2 => &[Flag::Delete, Flag::Add, Flag::Modify, Flag::Revoke],
        KitVersion::V1 => &[Flag::Delete, Flag::Add, Flag::Modify],
    };
    let flag = flag(obj, allowed)?;
    let list = embedded_array(obj, "userList", "userList")?;
    let users = list
        .iter()
        .map(|u| kit_user(u, flag))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AuthSync {
        common,
        flag,
        tenant_id: id(obj, "tenantId")?,
        app_id: id(obj, "appId")?,
        current_sync_time: obj.text("currentSyncTime").unwrap_or_default(),
        users,
    })
}

/// A list documented as an array (V2) or as a string holding the array (V1, and allOrgSync's
/// published example): both are accepted, the string parsed leniently (unquoted member names).
fn embedded_array(
    obj: &Json,
    member: &str,
    field: &'static str,
) -> Result<Vec<Json>, RequestError> {
    match obj.get(member) {
        None | Some(Json::Null) => Err(RequestError::MissingField(field)),
        Some(Json::Array(items)) => Ok(items.clone()),
        Some(Json::String(s)) => match json::parse_lenient(s.as_bytes()) {
            Ok(Json::Array(items)) => Ok(items),
            Ok(other) => Err(RequestError::invalid(
                field,
                format!("must hold a JSON array, holds {}", other.type_name()),
            )),
            Err(e) => Err(RequestError::invalid(
                field,
                format!("is not a JSON array: {e}"),
            )),
        },
        Some(other) => Err(RequestError::invalid(
            field,
            format!("must be an array, got {}", other.type_name()),
        )),
    }
}

fn kit_user(user: &Json, flag: Flag) -> Result<KitUser, RequestError> {
    if !matches!(user, Json::Object(_)) {
        return Err(RequestError::invalid(
            "userList",
            format!("entries must be objects, got {}", user.type_name()),
        ));
    }
    let user_name = bounded_id(
        "userList.userName",
        user.field_at("userName", "userList.userName")
            .required_text()?,
    )?;
    let nested = WithExtension(user);
    let mut out = KitUser {
        user_name,
        position: user.text("position"),
        employee_code: user.text("employeeCode"),
        employee_type: nested
            .field_at("employeeType", "userList.employeeType")
            .optional_integer()?,
        mobile: user.text("mobile"),
        email: user.text("email"),
        work_place: nested.text("workPlace"),
        entry_date: nested.text("entryDate"),
        ..KitUser::default()
    };
    if flag.upserts() {
        out.name = user.field_at("name", "userList.name").required_text()?;
        out.org_code = user
            .field_at("orgCode", "userList.orgCode")
            .required_text()?;
        out.role = user.field_at("role", "userList.role").required_text()?;
        out.enable = enable(user.field_at("enable", "userList.enable"))?;
    } else {
        out.name = user.text("name").unwrap_or_default();
        out.org_code = user.text("orgCode").unwrap_or_default();
        out.role = user.text("role").unwrap_or_default();
        out.enable = enable(user.field_at("enable", "userList.enable")).unwrap_or(false);
    }
    Ok(out)
}

/// A V1 user, which may nest `entryDate`, `employeeType` and `workPlace` in `extension`: a
/// member of the user itself (even `null`) wins, else the one in `extension`.
struct WithExtension<'a>(&'a Json);

impl Fields for WithExtension<'_> {
    fn value(&self, name: &str) -> Option<Value<'_>> {
        let user = self.0;
        user.get(name)
            .or_else(|| user.get("extension").and_then(|e| e.get(name)))
            .map(Value::from)
    }
}

/// `enable` is the string `"true"` / `"false"` (any case, spaces around allowed); a JSON boolean
/// means the same.
fn enable(field: Field<'_>) -> Result<bool, RequestError> {
    match field.value {
        None => Err(field.missing()),
        Some(Value::Bool(b)) => Ok(b),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(field.invalid("must be \"true\" or \"false\"")),
    }
}

fn single_org_sync(obj: &Json, common: KitCommon) -> Result<SingleOrgSync, RequestError> {
    let flag = flag(obj, &[Flag::Delete, Flag::Add, Flag::Modify])?;
    let org_code = id(obj, "orgCode")?;
    let org_name = if flag.upserts() {
        obj.required("orgName")?
    } else {
        obj.optional("orgName")?.unwrap_or_default()
    };
    Ok(SingleOrgSync {
        common,
        flag,
        tenant_id: id(obj, "tenantId")?,
        org: OrgInfo {
            org_code,
            org_name,
            parent_code: present_string(obj, "parentCode")?,
        },
    })
}

fn all_org_sync(obj: &Json, common: KitCommon) -> Result<AllOrgSync, RequestError> {
    // V2 names the list `orgInfoList`, V1 `orgInfo`.
    let list = if obj.get("orgInfoList").is_some() {
        embedded_array(obj, "orgInfoList", "orgInfoList")?
    } else if obj.get("orgInfo").is_some() {
        embedded_array(obj, "orgInfo", "orgInfo")?
    } else {
        return Err(RequestError::MissingField("orgInfoList"));
    };
    let orgs = list.iter().map(org_info).collect::<Result<Vec<_>, _>>()?;
    Ok(AllOrgSync {
        common,
        tenant_id: id(obj, "tenantId")?,
        orgs,
    })
}

fn org_info(entry: &Json) -> Result<OrgInfo, RequestError> {
    if !matches!(entry, Json::Object(_)) {
        return Err(RequestError::invalid(
            "orgInfoList",
            format!("entries must be objects, got {}", entry.type_name()),
        ));
    }
    let org_code = bounded_id(
        "orgInfoList.orgCode",
        entry
            .field_at("orgCode", "orgInfoList.orgCode")
            .required_text()?,
    )?;
    // V1 entries carry `name`.
    let org_name = entry
        .text("orgName")
        .or_else(|| entry.text("name"))
        .ok_or(RequestError::MissingField("orgInfoList.orgName"))?;
    Ok(OrgInfo {
        org_code,
        org_name,
        parent_code: entry.text("parentCode").unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(op: KitOp, v: KitVersion, body: &str) -> Result<KitRequest, RequestError> {
        parse_kit(op, v, body.as_bytes())
    }

    #[test]
    fn the_published_tenant_sync_example_parses() {
        let body = r#"{"instanceId":"huaiweitest123456","orderId":"CS1906666666ABCDE","tenantId":"68cbc86abc2018ab880d92f36422fa0e","tenantCode":"huawei","name":"huaiweitest","domainName":"https://example.tenantaccount.com","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}"#;
        let KitRequest::Tenant(t) = parse(KitOp::TenantSync, KitVersion::V2, body).unwrap() else {
            panic!("not a tenant sync")
        };
        assert_eq!(t.flag, Flag::Add);
        assert_eq!(t.tenant_code, "huawei");
        assert_eq!(t.domain_name, "https://example.tenantaccount.com");
        assert!(!t.common.debug);
    }

    #[test]
    fn credential_application_sends_an_empty_instance_and_order() {
        let body = r#"{"instanceId":"","orderId":"","tenantId":"t","tenantCode":"c","name":"n","domainName":"d","flag":"1","testFlag":"1","timeStamp":"20220413093539534"}"#;
        let KitRequest::Tenant(t) = parse(KitOp::TenantSync, KitVersion::V2, body).unwrap() else {
            panic!()
        };
        assert_eq!(t.common.instance_id, "");
        assert!(t.common.debug);
    }

    #[test]
    fn flags_are_checked_per_version() {
        let body = |flag: u8| {
            format!(
                r#"{{"instanceId":"i","tenantId":"t","tenantCode":"c","name":"n","domainName":"d","flag":{flag},"testFlag":0,"timeStamp":"1"}}"#
            )
        };
        assert!(parse(KitOp::TenantSync, KitVersion::V2, &body(2)).is_ok());
        let e = parse(KitOp::TenantSync, KitVersion::V1, &body(2)).unwrap_err();
        assert!(e.to_string().contains("flag"), "{e}");
        assert!(parse(KitOp::TenantSync, KitVersion::V2, &body(3)).is_err());
    }

    #[test]
    fn auth_sync_takes_an_array_or_a_string_and_flag_3_on_v2_only() {
        let users = r#"[{"userName":"zhangsan01","name":"Zhang San","orgCode":"123456789","position":"admin","role":"admin","enable":"true","employeeType":4,"workPlace":"Nanjing","entryDate":"2022-11-9"}]"#;
        let v2 = format!(
            r#"{{"instanceId":"i","tenantId":"t","appId":"a","userList":{users},"currentSyncTime":"20220420114117642","flag":1,"testFlag":0,"timeStamp":"20220420114117642"}}"#
        );
        let KitRequest::Auth(a) = parse(KitOp::AuthSync, KitVersion::V2, &v2).unwrap() else {
            panic!()
        };
        assert_eq!(a.users.len(), 1);
        assert_eq!(a.users[0].employee_type, Some(4));
        assert!(a.users[0].enable);

        let v1_users = r#"[{"userName":"u1","name":"N","orgCode":"o","role":"user","enable":"false","extension":{"entryDate":"2022-01-01","employeeType":"2","workPlace":"Xi'an"}}]"#;
        let v1 =
            serde_json::json!({"instanceId":"i","tenantId":"t","appId":"a","userList":v1_users,
            "currentSyncTime":"1","flag":2,"testFlag":0,"timeStamp":"1"})
            .to_string();
        let KitRequest::Auth(a) = parse(KitOp::AuthSync, KitVersion::V1, &v1).unwrap() else {
            panic!()
        };
        assert_eq!(a.users[0].entry_date.as_deref(), Some("2022-01-01"));
        assert_eq!(a.users[0].employee_type, Some(2));
        assert_eq!(a.users[0].work_place.as_deref(), Some("Xi'an"));
        assert!(!a.users[0].enable);

        let revoke = v2.replace(r#""flag":1"#, r#""flag":3"#);
        assert!(parse(KitOp::AuthSync, KitVersion::V2, &revoke).is_ok());
        assert!(parse(KitOp::AuthSync, KitVersion::V1, &revoke).is_err());
    }

    #[test]
    fn a_user_without_a_mandatory_field_names_it() {
        let body = r#"{"instanceId":"i","tenantId":"t","appId":"a","userList":[{"userName":"u","name":"n","orgCode":"o","role":"user"}],"currentSyncTime":"1","flag":1,"testFlag":0,"timeStamp":"1"}"#;
        let e = parse(KitOp::AuthSync, KitVersion::V2, body).unwrap_err();
        assert_eq!(e, RequestError::MissingField("userList.enable"));
        // A delete needs only the user name.
        let delete = r#"{"instanceId":"i","tenantId":"t","appId":"a","userList":[{"userName":"u"}],"currentSyncTime":"1","flag":0,"testFlag":0,"timeStamp":"1"}"#;
        assert!(parse(KitOp::AuthSync, KitVersion::V2, delete).is_ok());
    }

    #[test]
    fn all_org_sync_takes_both_list_forms_and_the_v1_shape() {
        let array = r#"{"instanceId":"i","tenantId":"t","orgInfoList":[{"orgCode":"00000001","orgName":"Product","parentCode":"265789314"},{"orgCode":"265789314","orgName":"Headquarters","parentCode":""}],"testFlag":0,"timeStamp":"1"}"#;
        let string = r#"{"instanceId":"i","tenantId":"t","orgInfoList":"[{orgCode:\"00000001\", orgName:\"Product\", parentCode:\"265789314\"},{orgCode:\"265789314\",orgName:\"Headquarters\",parentCode:\"\"}]","flag":1,"testFlag":0,"timeStamp":"1"}"#;
        let a = parse(KitOp::AllOrgSync, KitVersion::V2, array).unwrap();
        let s = parse(KitOp::AllOrgSync, KitVersion::V2, string).unwrap();
        assert_eq!(a, s);
        let KitRequest::AllOrg(orgs) = a else {
            panic!()
        };
        assert_eq!(orgs.orgs[1].org_name, "Headquarters");

        let v1 = r#"{"instanceId":"i","tenantId":"t","orgInfo":"[{\"orgCode\":\"1\",\"name\":\"研发\",\"parentCode\":\"\"}]","testFlag":0,"timeStamp":"1"}"#;
        let KitRequest::AllOrg(v1) = parse(KitOp::AllOrgSync, KitVersion::V1, v1).unwrap() else {
            panic!()
        };
        assert_eq!(v1.orgs[0].org_name, "研发");

        let garbage = r#"{"instanceId":"i","tenantId":"t","orgInfoList":"[{orgCode:}","testFlag":0,"timeStamp":"1"}"#;
        let e = parse(KitOp::AllOrgSync, KitVersion::V2, garbage).unwrap_err();
        assert!(e.to_string().contains("orgInfoList"), "{e}");
    }

    #[test]
    fn bad_bodies_are_refused_with_the_field() {
        assert!(matches!(
            parse(KitOp::TenantSync, KitVersion::V2, "[1]"),
            Err(RequestError::Malformed(_))
        ));
        assert_eq!(
            parse(
                KitOp::SingleOrgSync,
                KitVersion::V2,
                r#"{"instanceId":"i","tenantId":"t","orgCode":"o","orgName":"n","flag":1,"testFlag":0}"#
            ),
            Err(RequestError::MissingField("timeStamp"))
        );
        let long = "x".repeat(65);
        let body = format!(
            r#"{{"instanceId":"i","tenantId":"{long}","orgCode":"o","orgName":"n","flag":1,"testFlag":0,"timeStamp":"1"}}"#
        );
        assert!(parse(KitOp::SingleOrgSync, KitVersion::V2, &body).is_err());
    }
}
