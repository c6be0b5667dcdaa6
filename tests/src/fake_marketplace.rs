//! A local fake of the KooGallery open APIs that checks every request the way the real gateway
//! and marketplace would, and can be told to fail.
//!
//! Checks on every request: `Host` equals the server's own address; `X-Sdk-Date` is well formed
//! and within 15 minutes; the `Authorization` header names the expected AK, signs at least
//! `host` and `x-sdk-date`, and its SDK-HMAC-SHA256 signature recomputed over the received
//! method, path, raw query, headers and body bytes matches (API Gateway). Usage push (new) also
//! needs `ts` (within 5 minutes), a never-seen `nonce`, and a `signature` over exactly the body
//! received, which must itself be the deep-sorted compact form (D17). A request that fails a check
//! is answered like the gateway (`APIGW.0301`, 401) or the marketplace (`MKT.0102`, 400), and
//! listed in [`FakeMarketplace::rejections`] so a test can assert there were none.
//!
//! Usage is billed like the marketplace documents (§3.4): the first record of an (instance,
//! begin, end) is processed, a later one is a duplicate. The fake also counts every occurrence,
//! so a test can see exactly what was sent twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use koogate_protocol::{apigw_signer, usage_push};
use serde_json::{json, Value};

/// IAM AK of the fake's gateway.
pub const AK: &str = "TEST-AK-0123456789";
/// IAM SK of the fake's gateway.
pub const SK: &str = "test-secret-key-abcdef";

/// Which API a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    QueryOrder,
    Usage,
    License,
    Upload,
}

/// An injected failure, used once, by the next request to its API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Accept and bill the request, then answer only after this long (the client times out).
    DelayAfterAccept(Duration),
    /// Answer this HTTP status and code without accepting anything.
    Answer(u16, &'static str),
}

/// One accepted usage record occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Billed {
    pub instance_id: String,
    pub begin_time: String,
    pub end_time: String,
    pub usage_value: String,
    pub metering_sn: Option<String>,
}

#[derive(Default)]
struct State {
    faults: VecDeque<(Api, Fault)>,
    nonces: HashSet<String>,
    rejections: Vec<String>,
    /// First accepted record per (instance, begin, end).
    billed: BTreeMap<(String, String, String), Billed>,
    /// Every accepted occurrence, duplicates included.
    occurrences: Vec<Billed>,
    usage_calls: u64,
    requests: u64,
    activated: BTreeSet<String>,
    /// Instances whose usage the marketplace refuses: every call carrying one is answered
    /// with this status and code, and nothing of it is accepted (one bad record refuses the
    /// whole call, as the real API does).
    refused_instances: BTreeMap<String, (u16, &'static str)>,
    /// Calls refused for such an instance.
    refused_calls: u64,
    uploads: Vec<(String, Value, Option<Vec<u8>>)>,
    query_orders: Vec<String>,
}

/// The running fake. Dropping it stops the server.
pub struct FakeMarketplace {
    pub url: String,
    pub addr: SocketAddr,
    /// The 基础接口 accessKey the usage header signature must use.
    pub basic_key: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeMarketplace {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeMarketplace {
    /// Starts the fake on a free loopback port.
    pub async fn start(basic_key: &str) -> FakeMarketplace {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Ctx {
            state: Arc::clone(&state),
            host: format!("127.0.0.1:{}", addr.port()),
            basic_key: basic_key.to_string(),
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let ctx = shared.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let ctx = ctx.clone();
                        async move { Ok::<_, std::convert::Infallible>(ctx.handle(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeMarketplace {
            url: format!("http://127.0.0.1:{}", addr.port()),
            addr,
            basic_key: basic_key.to_string(),
            state,
            task,
        }
    }

    /// From now on, refuses every usage call that carries a record of `instance_id` with
    /// `status` and `code` (e.g. 500 `MKT.9001`, instance unknown to the marketplace).
    pub fn refuse_instance(&self, instance_id: &str, status: u16, code: &'static str) {
        self.state
            .lock()
            .unwrap()
            .refused_instances
            .insert(instance_id.to_string(), (status, code));
    }

    /// Stops refusing `instance_id`.
    pub fn accept_instance(&self, instance_id: &str) {
        self.state
            .lock()
            .unwrap()
            .refused_instances
            .remove(instance_id);
    }

    /// How many usage calls were refused for a refused instance.
    pub fn refused_calls(&self) -> u64 {
        self.state.lock().unwrap().refused_calls
    }

    /// Queues a fault for the next request to `api`.
    pub fn inject(&self, api: Api, fault: Fault) {
        self.state.lock().unwrap().faults.push_back((api, fault));
    }

    /// Requests refused by a check (signature, header, body form); empty when all were valid.
    pub fn rejections(&self) -> Vec<String> {
        self.state.lock().unwrap().rejections.clone()
    }

    /// The billed records: the first occurrence of each interval.
    pub fn billed(&self) -> Vec<Billed> {
        self.state
            .lock()
            .unwrap()
            .billed
            .values()
            .cloned()
            .collect()
    }

    /// Every accepted occurrence (a record sent again after a lost answer appears twice).
    pub fn occurrences(&self) -> Vec<Billed> {
        self.state.lock().unwrap().occurrences.clone()
    }

    /// Usage push calls received (any outcome).
    pub fn usage_calls(&self) -> u64 {
        self.state.lock().unwrap().usage_calls
    }

    /// Requests received in all.
    pub fn requests(&self) -> u64 {
        self.state.lock().unwrap().requests
    }

    /// Uploads received: event id, the `isvUpdateFileReq` JSON, the file bytes.
    pub fn uploads(&self) -> Vec<(String, Value, Option<Vec<u8>>)> {
        self.state.lock().unwrap().uploads.clone()
    }

    /// Order ids asked with Query Order.
    pub fn query_orders(&self) -> Vec<String> {
        self.state.lock().unwrap().query_orders.clone()
    }
}

#[derive(Clone)]
struct Ctx {
    state: Arc<Mutex<State>>,
    host: String,
    basic_key: String,
}

fn answer(status: u16, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json;charset=UTF-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Ctx {
    fn reject(&self, why: String, status: u16, code: &str) -> Response<Full<Bytes>> {
        self.state.lock().unwrap().rejections.push(why.clone());
        answer(
            status,
            json!({"error_code": code, "error_msg": why, "resultCode": code}),
        )
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let method = req.method().as_str().to_string();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        self.state.lock().unwrap().requests += 1;

        let is_new_usage = path == usage_push::Endpoint::New.path();
        let apigw = self.check_gateway(&method, &path, &query, &headers, &body, is_new_usage);
        if let Err(why) = apigw {
            return self.reject(why, 401, "APIGW.0301");
        }
        let api = match path.as_str() {
            p if p == koogate_protocol::open_api::QUERY_ORDER_PATH => Api::QueryOrder,
            p if p == usage_push::Endpoint::New.path() || p == usage_push::Endpoint::Old.path() => {
                Api::Usage
            }
            p if p.contains("/license/") => Api::License,
            p if p.contains("/market-event/") => Api::Upload,
            _ => {
                return answer(
                    404,
                    json!({"error_code": "APIGW.0101", "error_msg": "no such API"}),
                )
            }
        };
        if api == Api::Usage {
            self.state.lock().unwrap().usage_calls += 1;
        }
        let fault = {
            let mut st = self.state.lock().unwrap();
            let pos = st.faults.iter().position(|(a, _)| *a == api);
            pos.and_then(|i| st.faults.remove(i)).map(|(_, f)| f)
        };
        if let Some(Fault::Answer(status, code)) = &fault {
            return answer(
                *status,
                json!({"error_code": code, "error_msg": "injected", "resultCode": code}),
            );
        }
        let resp = match api {
            Api::QueryOrder => self.query_order(&query),
            Api::Usage => self.usage(&path, &headers, &body),
            Api::License => self.license(&path, &body),
            Api::Upload => self.upload(&path, &headers, &body),
        };
        if let Some(Fault::DelayAfterAccept(d)) = fault {
            tokio::time::sleep(d).await;
        }
        resp
    }

    /// The API Gateway's checks. The new usage endpoint may come without them (D17).
    fn check_gateway(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(String, String)],
        body: &[u8],
        optional: bool,
    ) -> Result<(), String> {
        let auth = header(headers, "authorization");
        if auth.is_none() && optional {
            return Ok(());
        }
        let host = header(headers, "host").ok_or("no Host header")?;
        if host != self.host {
            return Err(format!("Host {host:?} is not {:?}", self.host));
        }
        let date = header(headers, "x-sdk-date").ok_or("no X-Sdk-Date header")?;
        let date_ms =
            usage_push::parse_time(date).ok_or(format!("X-Sdk-Date {date:?} malformed"))?;
        let now = koogate_runtime::pipeline::now_ms();
        if (now - date_ms).abs() > 15 * 60 * 1000 {
            return Err("X-Sdk-Date is stale".into());
        }
        let auth = auth.ok_or("no Authorization header")?;
        let parsed = apigw_signer::parse_authorization(auth).ok_or("Authorization malformed")?;
        if parsed.access != AK {
            return Err(format!("unknown AK {:?}", parsed.access));
        }
        for needed in ["host", "x-sdk-date"] {
            if !parsed.signed_headers.contains(&needed) {
                return Err(format!("{needed} is not signed"));
            }
        }
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let input = apigw_signer::SignInput {
            method,
            path,
            query,
            headers: &pairs,
            body,
        };
        if !apigw_signer::verify(SK, &input, &parsed) {
            return Err(format!("API Gateway signature mismatch on {method} {path}"));
        }
        Ok(())
    }

    fn query_order(&self, query: &str) -> Response<Full<Bytes>> {
        let params: BTreeMap<String, String> = query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), apigw_signer::decode(v)))
            .collect();
        let Some(order_id) = params.get("orderId") else {
            return answer(
                400,
                json!({"resultCode": "MKT.0101", "resultMsg": "Invalid parameter"}),
            );
        };
        self.state
            .lock()
            .unwrap()
            .query_orders
            .push(order_id.clone());
        match mock_order(order_id) {
            Some(info) => answer(
                200,
                json!({"resultCode": "MKT.0000", "resultMsg": "Success", "orderInfo": info}),
            ),
            None => answer(
                400,
                json!({"resultCode": "MKT.0101", "resultMsg": "Invalid parameter"}),
            ),
        }
    }

    fn usage(
        &self,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Response<Full<Bytes>> {
        let new = path == usage_push::Endpoint::New.path();
        let text = std::str::from_utf8(body).unwrap_or("");
        if new {
            let (Some(ts), Some(nonce), Some(sig)) = (
                header(headers, "ts"),
                header(headers, "nonce"),
                header(headers, "signature"),
            ) else {
                return self.reject(
                    "usage push without ts/nonce/signature".into(),
                    400,
                    "MKT.0101",
                );
            };
            let now = koogate_runtime::pipeline::now_ms();
            if ts
                .parse::<i64>()
                .map_or(true, |t| (now - t).abs() > 5 * 60 * 1000)
            {
                return self.reject(
                    format!("usage push ts {ts:?} stale or malformed"),
                    400,
                    "MKT.0101",
                );
            }
            if !self.state.lock().unwrap().nonces.insert(nonce.to_string()) {
                return self.reject("usage push nonce replayed".into(), 400, "MKT.0102");
            }
            if !usage_push::verify(&self.basic_key, ts, nonce, text, sig) {
                return self.reject(
                    "usage push header signature mismatch".into(),
                    400,
                    "MKT.0102",
                );
            }
            if usage_push::sorted_compact(body).as_deref() != Some(text) {
                return self.reject(
                    "usage body is not the sorted compact form (D17)".into(),
                    400,
                    "MKT.0102",
                );
            }
        }
        if header(headers, "content-type") != Some("application/json") {
            return self.reject(
                "usage push Content-Type is not application/json".into(),
                400,
                "MKT.0101",
            );
        }
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return self.reject("usage body is not JSON".into(), 400, "MKT.0101");
        };
        let Some(records) = v.get("usage_records").and_then(Value::as_array) else {
            return self.reject("no usage_records".into(), 400, "MKT.0101");
        };
        if records.len() > usage_push::MAX_RECORDS_PER_CALL {
            return answer(
                500,
                json!({"error_code": "MKT.9003", "error_msg": "Usage records extends size limit."}),
            );
        }
        let mut accepted = Vec::new();
        for r in records {
            let s = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
            let (Some(instance_id), Some(begin), Some(end), Some(value), Some(_rt)) = (
                s("instance_id"),
                s("begin_time"),
                s("end_time"),
                s("usage_value"),
                s("record_time"),
            ) else {
                return self.reject(format!("usage record incomplete: {r}"), 400, "MKT.0101");
            };
            if new && s("metering_sn").is_none() || !new && s("product_id").is_none() {
                return self.reject(
                    format!("usage record lacks its endpoint's id field: {r}"),
                    400,
                    "MKT.0101",
                );
            }
            if new && s("product_id").is_some() || !new && s("metering_sn").is_some() {
                return self.reject(
                    format!("usage record has a field its endpoint does not know: {r}"),
                    400,
                    "MKT.0101",
                );
            }
            if usage_push::parse_time(&begin).is_none() || usage_push::parse_time(&end).is_none() {
                return self.reject(format!("usage times malformed: {r}"), 400, "MKT.0101");
            }
            accepted.push(Billed {
                instance_id,
                begin_time: begin,
                end_time: end,
                usage_value: value,
                metering_sn: s("metering_sn"),
            });
        }
        let mut st = self.state.lock().unwrap();
        let refused = accepted
            .iter()
            .find_map(|b| st.refused_instances.get(&b.instance_id).copied());
        if let Some((status, code)) = refused {
            st.refused_calls += 1;
            return answer(
                status,
                json!({"error_code": code, "error_msg": "refused for one of its records"}),
            );
        }
        for b in accepted {
            st.occurrences.push(b.clone());
            st.billed
                .entry((
                    b.instance_id.clone(),
                    b.begin_time.clone(),
                    b.end_time.clone(),
                ))
                .or_insert(b);
        }
        answer(
            200,
            json!({"error_code": "MKT.0000", "error_msg": "success"}),
        )
    }

    fn license(&self, path: &str, body: &[u8]) -> Response<Full<Bytes>> {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return answer(
                400,
                json!({"error_code": "95000004", "error_msg": "req message is not readable"}),
            );
        };
        let Some(code) = v.get("license").and_then(Value::as_str).map(str::to_string) else {
            return answer(
                400,
                json!({"error_code": "95000001", "error_msg": "req param is invalid"}),
            );
        };
        if !code.starts_with("PL") {
            return answer(
                200,
                json!({"error_code": "92020005", "error_msg": "license code notexist"}),
            );
        }
        let mut st = self.state.lock().unwrap();
        if path.ends_with("/license/activate") {
            if !st.activated.insert(code.clone()) {
                return answer(
                    200,
                    json!({"error_code": "92020003", "error_msg": "illegal state"}),
                );
            }
            let info = json!({"status": "ALIVE", "expire_time": "20991231235959", "product_id": "OFFI1", "amount": 1, "order_id": "CS1"});
            answer(
                200,
                json!({"error_code": "92020000", "error_msg": "success", "data": {"license_code_info": info.to_string()}}),
            )
        } else if st.activated.contains(&code) {
            answer(
                200,
                json!({"error_code": "92020000", "error_msg": "success", "data": {"license_code": code, "status": "ALIVE", "activate_time": "20240101000000", "expire_time": "20991231235959"}}),
            )
        } else {
            answer(
                200,
                json!({"error_code": "92020011", "error_msg": "license code has been not activated."}),
            )
        }
    }

    fn upload(
        &self,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Response<Full<Bytes>> {
        let event_id = path
            .trim_end_matches("/file")
            .rsplit('/')
            .next()
            .map(apigw_signer::decode)
            .unwrap_or_default();
        let Some(boundary) = header(headers, "content-type")
            .and_then(|ct| ct.strip_prefix("multipart/form-data; boundary="))
        else {
            return self.reject(
                "upload is not multipart/form-data with a boundary".into(),
                400,
                "MKT.0101",
            );
        };
        let text = body.to_vec();
        let delim = format!("--{boundary}");
        let mut json_part = None;
        let mut file = None;
        for part in split_bytes(&text, delim.as_bytes()) {
            let Some(split) = find(part, b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&part[..split]).to_string();
            let mut content = &part[split + 4..];
            if content.ends_with(b"\r\n") {
                content = &content[..content.len() - 2];
            }
            if head.contains("name=\"isvUpdateFileReq\"")
                && head.contains("Content-Type: application/json")
            {
                json_part = serde_json::from_slice::<Value>(content).ok();
            } else if head.contains("name=\"file\"") {
                file = Some(content.to_vec());
            }
        }
        let Some(req) = json_part else {
            return self.reject(
                "upload without an isvUpdateFileReq JSON part".into(),
                400,
                "MKT.0101",
            );
        };
        match req.get("type").and_then(Value::as_str) {
            Some("CHARACTERS") if req.get("characters").is_some() => {}
            Some("FILE") => {
                use sha2::Digest;
                let Some(f) = &file else {
                    return self.reject("FILE upload without a file part".into(), 400, "MKT.0101");
                };
                let sum = hex::encode(sha2::Sha256::digest(f));
                if req.get("sha256").and_then(Value::as_str) != Some(sum.as_str()) {
                    return self.reject(
                        "upload sha256 does not match the file".into(),
                        400,
                        "MKT.0101",
                    );
                }
            }
            _ => return self.reject(format!("upload type invalid: {req}"), 400, "MKT.0101"),
        }
        self.state
            .lock()
            .unwrap()
            .uploads
            .push((event_id, req, file));
        answer(
            200,
            json!({"error_code": "MKT.0000", "error_msg": "success"}),
        )
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(hay: &'a [u8], delim: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = hay;
    while let Some(i) = find(rest, delim) {
        out.push(&rest[..i]);
        rest = &rest[i + delim.len()..];
        if rest.starts_with(b"\r\n") {
            rest = &rest[2..];
        }
    }
    out.push(rest);
    out
}

/// The documented mock orders (docs/protocol.md, outbound §2), each with one line `<id>-000001`.
pub fn mock_order(order_id: &str) -> Option<Value> {
    let (order_type, mode, period) = match order_id {
        "MOCKPERIODYEARNEW" => ("NEW", "PERIOD", Some(("year", 1))),
        "MOCKONETIMENEW" => ("NEW", "ONE_TIME", None),
        "MOCKONDEMAND" => ("NEW", "ON_DEMAND", None),
        "MOCKONDEMANDPKG" => ("NEW", "ON_DEMAND_PKG", None),
        "MOCKPERIODDAYTRIAL" => ("TRIAL", "PERIOD", Some(("day", 7))),
        "MOCKMONTYTRIALTOFORMAL" => ("TRIAL_TO_FORMAL", "PERIOD", Some(("month", 1))),
        "MOCKMONTYUNSUBSCRIBE" => ("UNSUBSCRIBE", "PERIOD", Some(("month", 1))),
        "MOCKMONTYRENEW" => ("RENEW", "PERIOD", Some(("month", 1))),
        "MOCKMONTYCHANGE" => ("CHANGE", "PERIOD", Some(("month", 1))),
        _ => return None,
    };
    let mut line = json!({
        "orderLineId": format!("{order_id}-000001"),
        "chargingMode": mode,
        "productInfo": [{"productId": "OFFI846204237451911168", "skuCode": "0a4d1578-5295-46a7-92d4-7c803dccc51d", "linearValue": 50, "productName": "MOCK product"}],
        "extendParams": [{"name": "emailDomainName", "value": "test.xxxx.com"}],
        "currency": "100", "currencyAfterDiscount": "100"
    });
    if let Some((t, n)) = period {
        line["periodType"] = json!(t);
        line["periodNumber"] = json!(n);
        line["expireTime"] = json!("20251121235959");
    }
    Some(json!({
        "orderId": order_id, "orderType": order_type, "createTime": "20241121090846",
        "orderLine": [line],
        "buyerInfo": {"mobilePhone": "18688888888", "email": null, "customerId": "459bbbec25d24749b2eb83be37b602a8",
                      "customerName": "mock_user_01", "customerRealName": "mock user 1", "customerType": 0, "userId": null, "userName": null},
        "extendParams": []
    }))
}
