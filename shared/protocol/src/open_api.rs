//! The marketplace's open APIs as seen by the merchant (docs/protocol.md, outbound §2, §4–§6): paths, request
//! bodies, response models, and the one rule that decides whether a failed call may be retried.
//! Pure: the HTTP client in koogate-runtime sends what is built here.

use serde::{Deserialize, Serialize};

/// Query Order path.
pub const QUERY_ORDER_PATH: &str = "/api/mkp-openapi-public/global/v1/order/query";
/// License activation (v1, one code).
pub const LICENSE_ACTIVATE_PATH: &str = "/api/mkp-openapi-public/global/v1/license/activate";
/// License query (v1, one code; formerly "heartbeat").
pub const LICENSE_QUERY_PATH: &str = "/api/mkp-openapi-public/global/v1/license/heartbeat";

/// The upload path for `event_id`, the id percent-encoded as one path segment.
pub fn upload_path(event_id: &str) -> String {
    format!(
        "/api/mkp-openapi-public/global/v1/market-event/{}/file",
        crate::apigw_signer::encode(event_id)
    )
}

/// The Query Order query string (names keep their case, D18).
pub fn query_order_query(order_id: &str, order_line_id: Option<&str>) -> String {
    let mut q = format!("orderId={}", crate::apigw_signer::encode(order_id));
    if let Some(line) = order_line_id {
        q.push_str("&orderLineId=");
        q.push_str(&crate::apigw_signer::encode(line));
    }
    q
}

/// What to do about an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The call succeeded.
    Success,
    /// Retry the identical request later (network trouble, 5xx, `MKT.0999`, throttling).
    Transient,
    /// Do not retry unchanged: a business or configuration error (docs/protocol.md, outbound §3.5, §7).
    Permanent,
}

/// The codes that mean success: `MKT.0000`, the older `CBC.0000`, and the license `92020000`.
pub fn is_success_code(code: &str) -> bool {
    matches!(code, "MKT.0000" | "CBC.0000" | "92020000")
}

/// The `MKT.*` / `CBC.*` codes the error tables document as business or configuration errors
/// (docs/protocol.md, outbound §6.1; docs/protocol.md, result-codes §2.1): retrying the identical request cannot succeed,
/// whatever HTTP status carries them (the marketplace answers several of them with HTTP 500).
pub const DOCUMENTED_PERMANENT_MKT_CODES: &[&str] = &[
    "MKT.0100", "MKT.0101", "MKT.0102", "MKT.0150", "MKT.0151", "MKT.0154", "MKT.0199", "MKT.9001",
    "MKT.9002", "MKT.9003", "MKT.9004", "CBC.0101", "CBC.0150",
];

/// Classifies an HTTP answer by status and result code (docs/protocol.md, outbound §3.5, §6, §7).
///
/// Retryable: HTTP 429 and gateway throttling (`APIGW.0308`), `MKT.0999`, `92020001`, and any
/// 5xx that carries no code or a code the tables do not document as a business error (an
/// unknown `MKT.9999` on HTTP 500 is the marketplace failing, not a verdict on the request).
/// Permanent: the documented `MKT.*`/`CBC.*` errors ([`DOCUMENTED_PERMANENT_MKT_CODES`]) on any
/// status, `9202000x` and `9500000x`, other `APIGW.*` 4xx (signature, authorisation), and any
/// other 4xx; a gateway 5xx is transient.
pub fn classify(http_status: u16, code: Option<&str>) -> Verdict {
    if http_status == 429 {
        return Verdict::Transient;
    }
    match code {
        Some(c) if http_status < 300 && is_success_code(c) => Verdict::Success,
        Some("MKT.0999" | "92020001" | "APIGW.0308") => Verdict::Transient,
        Some(c) if DOCUMENTED_PERMANENT_MKT_CODES.contains(&c) => Verdict::Permanent,
        Some(c) if c.starts_with("9202") || c.starts_with("9500") => Verdict::Permanent,
        // The gateway's own 5xx (backend unavailable, timeout) are transient; its 4xx
        // (signature, authorisation) are configuration faults.
        Some(c) if c.starts_with("APIGW.") && http_status >= 500 => Verdict::Transient,
        Some(c) if c.starts_with("APIGW.") => Verdict::Permanent,
        _ if http_status >= 500 => Verdict::Transient,
        _ => Verdict::Permanent,
    }
}

/// The result code of any open-API answer: `error_code` (usage push, upload, license) or
/// `resultCode` (Query Order); `None` when the body is not JSON or carries neither.
pub fn result_code(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["error_code", "resultCode"]
        .iter()
        .find_map(|k| v.get(*k).and_then(|c| c.as_str()).map(str::to_string))
}

/// The message accompanying the code (`error_msg` or `resultMsg`), if any.
pub fn result_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["error_msg", "resultMsg"]
        .iter()
        .find_map(|k| v.get(*k).and_then(|c| c.as_str()).map(str::to_string))
}

/// Query Order answer (docs/protocol.md, outbound §2). Unknown fields are ignored; every field the pages mark
/// optional (and several they do not, which real answers leave `null`) is optional here.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryOrderAnswer {
    /// `MKT.0000` on success.
    #[serde(default)]
    pub result_code: Option<String>,
    /// Human-readable message.
    #[serde(default)]
    pub result_msg: Option<String>,
    /// The order.
    #[serde(default)]
    pub order_info: Option<OrderInfo>,
}

/// `orderInfo`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderInfo {
    /// The order id.
    #[serde(default)]
    pub order_id: Option<String>,
    /// `NEW`, `TRIAL`, `TRIAL_TO_FORMAL`, `UNSUBSCRIBE`, `RENEW`, `CHANGE`.
    #[serde(default)]
    pub order_type: Option<String>,
    /// `yyyyMMddHHmmss`, UTC.
    #[serde(default)]
    pub create_time: Option<String>,
    /// The order lines.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub order_line: Vec<OrderLine>,
    /// The buyer.
    #[serde(default)]
    pub buyer_info: Option<BuyerInfo>,
}

/// One order line.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    /// `<orderId>-000001` for the mock orders.
    #[serde(default)]
    pub order_line_id: Option<String>,
    /// `ON_DEMAND`, `ONE_TIME`, `PERIOD`, `ON_DEMAND_PKG`.
    #[serde(default)]
    pub charging_mode: Option<String>,
    /// `yyyyMMddHHmmss`, UTC.
    #[serde(default)]
    pub expire_time: Option<String>,
    /// `year` / `month` (others seen: `day`, `hour`).
    #[serde(default)]
    pub period_type: Option<String>,
    /// How many periods.
    #[serde(default)]
    pub period_number: Option<serde_json::Number>,
    /// The products of the line.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub product_info: Vec<ProductInfo>,
}

/// One product of an order line.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductInfo {
    /// Product id.
    #[serde(default)]
    pub product_id: Option<String>,
    /// SKU code.
    #[serde(default)]
    pub sku_code: Option<String>,
    /// Linear value (e.g. seats).
    #[serde(default)]
    pub linear_value: Option<serde_json::Number>,
    /// Display name.
    #[serde(default)]
    pub product_name: Option<String>,
}

/// The buyer. `mobilePhone` and `email` are personal data: they are not even read, so they can
/// never be stored or logged by accident.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuyerInfo {
    /// Huawei Cloud account id.
    #[serde(default)]
    pub customer_id: Option<String>,
    /// Account name.
    #[serde(default)]
    pub customer_name: Option<String>,
    /// IAM user id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// IAM user name.
    #[serde(default)]
    pub user_name: Option<String>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Parses a Query Order answer; `None` when the body is not a JSON object of that shape.
pub fn parse_query_order(body: &[u8]) -> Option<QueryOrderAnswer> {
    serde_json::from_slice(body).ok()
}

/// License activation v1 request body.
pub fn license_activate_body(license: &str, real_effect_time: Option<&str>) -> String {
    let mut v = serde_json::json!({ "license": license });
    if let (Some(t), Some(m)) = (real_effect_time, v.as_object_mut()) {
        m.insert("real_effect_time".into(), t.into());
    }
    v.to_string()
}

/// License query v1 request body (`heartbeatInfo` only when a third-party account is given).
pub fn license_query_body(license: &str, account: Option<&str>, ip: Option<&str>) -> String {
    let mut v = serde_json::json!({ "license": license });
    if let (Some(acc), Some(m)) = (account, v.as_object_mut()) {
        let mut hb = serde_json::json!({ "thirdPartyAccount": acc });
        if let (Some(ip), Some(h)) = (ip, hb.as_object_mut()) {
            h.insert("ip".into(), ip.into());
        }
        m.insert("heartbeatInfo".into(), hb);
    }
    v.to_string()
}

/// A license answer: `error_code`, `error_msg`, `data`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct LicenseAnswer {
    /// `92020000` on success.
    #[serde(default)]
    pub error_code: Option<String>,
    /// Message.
    #[serde(default)]
    pub error_msg: Option<String>,
    /// Activation: `{license_code_info: "<JSON string>"}`; query: LicenseInfo.
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

/// Parses a license answer; `None` when not JSON of that shape.
pub fn parse_license_answer(body: &[u8]) -> Option<LicenseAnswer> {
    serde_json::from_slice(body).ok()
}

/// The `isvUpdateFileReq` part of an upload (docs/protocol.md, outbound §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadRequest {
    /// `CHARACTERS` or `FILE`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The file name (`FILE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// Lower-case hex SHA-256 of the file (`FILE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The string (`CHARACTERS`), at most 1024 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub characters: Option<String>,
}

/// What to upload.
#[derive(Debug, Clone, Copy)]
pub enum Upload<'a> {
    /// A string of at most 1024 characters.
    Characters(&'a str),
    /// A file.
    File {
        /// Its name.
        name: &'a str,
        /// Its bytes.
        bytes: &'a [u8],
    },
}

/// The multipart body of an upload and its `Content-Type` (with `boundary`). The boundary must
/// not occur in the file; the caller draws a random one.
pub fn multipart(upload: Upload<'_>, boundary: &str) -> (Vec<u8>, String) {
    let mut out: Vec<u8> = Vec::new();
    let req = match upload {
        Upload::Characters(s) => UploadRequest {
            kind: "CHARACTERS",
            file_name: None,
            sha256: None,
            characters: Some(s.to_string()),
        },
        Upload::File { name, bytes } => {
            use sha2::{Digest, Sha256};
            out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            out.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n",
                    name.replace(['"', '\r', '\n'], "_")
                )
                .as_bytes(),
            );
            out.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
            out.extend_from_slice(bytes);
            out.extend_from_slice(b"\r\n");
            UploadRequest {
                kind: "FILE",
                file_name: Some(name.to_string()),
                sha256: Some(hex::encode(Sha256::digest(bytes))),
                characters: None,
            }
        }
    };
    let json = serde_json::to_string(&req).unwrap_or_default();
    out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    out.extend_from_slice(b"Content-Disposition: form-data; name=\"isvUpdateFileReq\"\r\n");
    out.extend_from_slice(b"Content-Type: application/json\r\n\r\n");
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (out, format!("multipart/form-data; boundary={boundary}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_the_error_tables() {
        assert_eq!(classify(200, Some("MKT.0000")), Verdict::Success);
        assert_eq!(classify(200, Some("92020000")), Verdict::Success);
        assert_eq!(classify(500, Some("MKT.0999")), Verdict::Transient);
        assert_eq!(classify(502, None), Verdict::Transient);
        assert_eq!(classify(429, Some("APIGW.0308")), Verdict::Transient);
        assert_eq!(classify(500, Some("MKT.9003")), Verdict::Permanent);
        assert_eq!(classify(500, Some("MKT.9004")), Verdict::Permanent);
        assert_eq!(classify(400, Some("MKT.0102")), Verdict::Permanent);
        assert_eq!(classify(401, Some("APIGW.0301")), Verdict::Permanent);
        assert_eq!(classify(502, Some("APIGW.0201")), Verdict::Transient);
        assert_eq!(classify(200, Some("92020005")), Verdict::Permanent);
        assert_eq!(classify(400, None), Verdict::Permanent);
        // Documented data errors are final on any status; unknown codes on 5xx are not.
        assert_eq!(classify(500, Some("MKT.9001")), Verdict::Permanent);
        assert_eq!(classify(400, Some("MKT.9001")), Verdict::Permanent);
        assert_eq!(classify(500, Some("MKT.9999")), Verdict::Transient);
        assert_eq!(classify(503, Some("CBC.9999")), Verdict::Transient);
        assert_eq!(classify(400, Some("MKT.9999")), Verdict::Permanent);
    }

    #[test]
    fn the_published_query_order_answer_parses() {
        let body = br#"{"resultCode":"MKT.0000","resultMsg":"Success","orderInfo":{"orderId":"MOCKPERIODYEARNEW","orderType":"NEW","createTime":"20241121090846","orderLine":[{"orderLineId":"MOCKPERIODYEARNEW-000001","chargingMode":"PERIOD","periodType":"year","periodNumber":1,"expireTime":"20251121235959","productInfo":[{"productId":"OFFI846204237451911168","skuCode":"0a4d1578-5295-46a7-92d4-7c803dccc51d","linearValue":50,"productName":"MOCK product, basic edition, periodic"}],"extendParams":[{"name":"emailDomainName","value":"test.xxxx.com"},{"name":"ip","value":"127.0.0.1"}],"currency":"100","currencyAfterDiscount":"100"}],"buyerInfo":{"mobilePhone":"18688888888","email":null,"customerId":"459bbbec25d24749b2eb83be37b602a8","customerName":"mock_user_01","customerRealName":"mock user 1","customerType":0,"userId":null,"userName":null},"extendParams":[]}}"#;
        let a = parse_query_order(body).unwrap();
        assert_eq!(a.result_code.as_deref(), Some("MKT.0000"));
        let o = a.order_info.unwrap();
        let line = &o.order_line[0];
        assert_eq!(line.charging_mode.as_deref(), Some("PERIOD"));
        assert_eq!(
            line.product_info[0].sku_code.as_deref(),
            Some("0a4d1578-5295-46a7-92d4-7c803dccc51d")
        );
        let buyer = o.buyer_info.unwrap();
        assert_eq!(buyer.customer_name.as_deref(), Some("mock_user_01"));
        assert!(!format!("{buyer:?}").contains("18688888888"));
        assert_eq!(result_code(body).as_deref(), Some("MKT.0000"));
        assert!(parse_query_order(b"[1]").is_none());
    }

    #[test]
    fn query_strings_and_paths_are_encoded() {
        assert_eq!(
            query_order_query("MOCK ONE", Some("l/1")),
            "orderId=MOCK%20ONE&orderLineId=l%2F1"
        );
        assert_eq!(
            upload_path("e/1"),
            "/api/mkp-openapi-public/global/v1/market-event/e%2F1/file"
        );
    }

    #[test]
    fn multipart_has_the_file_then_the_json_part() {
        let (body, ct) = multipart(
            Upload::File {
                name: "license.lic",
                bytes: b"abc",
            },
            "BOUNDARY",
        );
        assert_eq!(ct, "multipart/form-data; boundary=BOUNDARY");
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with("--BOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"license.lic\"\r\n"));
        assert!(text.contains("{\"type\":\"FILE\",\"file_name\":\"license.lic\",\"sha256\":\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}"));
        assert!(text.ends_with("\r\n--BOUNDARY--\r\n"));
        let (body, _) = multipart(Upload::Characters("LIC-1"), "B");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "--B\r\nContent-Disposition: form-data; name=\"isvUpdateFileReq\"\r\nContent-Type: application/json\r\n\r\n{\"type\":\"CHARACTERS\",\"characters\":\"LIC-1\"}\r\n--B--\r\n"
        );
    }

    #[test]
    fn license_bodies() {
        assert_eq!(license_activate_body("PL1", None), r#"{"license":"PL1"}"#);
        assert_eq!(
            license_query_body("PL1", Some("acc"), Some("1.2.3.4")),
            r#"{"heartbeatInfo":{"ip":"1.2.3.4","thirdPartyAccount":"acc"},"license":"PL1"}"#
        );
    }
}
