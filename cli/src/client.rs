//! The HTTP client of `koogate sign --send` and `koogate sim`: `http://` (a local `koogate serve`)
//! and `https://` (a deployed endpoint, certificate checked against the public Web PKI roots).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// A response as received: status, headers (names as sent), body bytes.
pub struct Received {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// POSTs `body` to an `http(s)://host[:port]/path?query` URL.
pub async fn post(url: &str, body: Vec<u8>) -> Result<Received, String> {
    send("POST", url, &[], body).await
}

/// Sends a request with the console's `Accept` and `Content-Type` and the extra `headers`.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<Received, String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("{url}: only http:// and https:// URLs can be sent"));
    }
    let client = koogate_runtime::https::client()?;
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("Accept", "application/json")
        .header("Content-Type", "application/json;charset=utf8");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status().as_u16();
    let headers = koogate_runtime::inbound::header_pairs(resp.headers());
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("cannot read the response: {e}"))?
        .to_bytes()
        .to_vec();
    Ok(Received {
        status,
        headers,
        body,
    })
}
