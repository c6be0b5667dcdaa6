//! The business identifiers a request concerns, for its log line: so that "what happened to
//! order X?" is answered by searching the logs for X.
//!
//! Only identifiers are taken — never a secret, a phone number, an e-mail address, a client
//! secret or a license code — from the verified body (top level, and the first `orderInfo` entry
//! of a fat newInstance body), the verified V1 query parameters, and the answer (the instanceId
//! koogate assigned).

use serde_json::Value;

/// The identifiers of one request; absent ones are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceIds {
    pub order_id: Option<String>,
    pub order_line_id: Option<String>,
    pub instance_id: Option<String>,
    pub business_id: Option<String>,
    pub tenant_id: Option<String>,
    pub event_id: Option<String>,
}

/// Identifiers are short; anything longer is cut (a hostile body cannot flood the log).
const MAX_LEN: usize = 128;

fn text(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty()).then(|| s.chars().take(MAX_LEN).collect())
}

impl TraceIds {
    /// From a verified JSON body, V1 parameters and the rendered answer.
    pub fn collect(body: &[u8], params: &[(String, String)], answer: &[u8]) -> TraceIds {
        let mut ids = TraceIds::default();
        let parsed: Value = serde_json::from_slice(body).unwrap_or_default();
        let first_order = parsed.get("orderInfo").and_then(|o| o.get(0));
        let answered: Value = serde_json::from_slice(answer).unwrap_or_default();
        let pick = |name: &str| {
            parsed
                .get(name)
                .and_then(text)
                .or_else(|| first_order.and_then(|o| o.get(name)).and_then(text))
                .or_else(|| {
                    params
                        .iter()
                        .find(|(k, _)| k == name)
                        .and_then(|(_, v)| text(&Value::String(v.clone())))
                })
        };
        ids.order_id = pick("orderId");
        ids.order_line_id = pick("orderLineId");
        ids.instance_id = pick("instanceId").or_else(|| answered.get("instanceId").and_then(text));
        ids.business_id = pick("businessId");
        ids.tenant_id = pick("tenantId");
        ids.event_id = pick("eventId");
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_come_from_the_body_the_fat_order_the_params_and_the_answer() {
        let fat = br#"{"activity":"newInstance","buyerInfo":{"mobilePhone":"13800000000","email":"a@b.c"},
            "orderInfo":[{"businessId":"b-1","orderId":"CS1"}],"testFlag":"0"}"#;
        let ids = TraceIds::collect(fat, &[], br#"{"resultCode":"000000","instanceId":"i-9"}"#);
        assert_eq!(ids.order_id.as_deref(), Some("CS1"));
        assert_eq!(ids.business_id.as_deref(), Some("b-1"));
        assert_eq!(ids.instance_id.as_deref(), Some("i-9"));
        let v1 = [("orderId".to_string(), "CS2".to_string())];
        assert_eq!(
            TraceIds::collect(b"", &v1, b"").order_id.as_deref(),
            Some("CS2")
        );
        let long = format!(r#"{{"tenantId":"{}"}}"#, "t".repeat(500));
        assert_eq!(
            TraceIds::collect(long.as_bytes(), &[], b"")
                .tenant_id
                .map(|t| t.len()),
            Some(MAX_LEN)
        );
    }
}
