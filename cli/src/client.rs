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
    let resp = client.request(req).await.map_err(|e| {
        if e.is_connect() {
            format!("cannot reach {}: {}", without_query(url), cause(&e))
        } else {
            format!("request to {} failed: {}", without_query(url), cause(&e))
        }
    })?;
    let status = resp.status().as_u16();
    let headers = koogate_runtime::inbound::header_pairs(resp.headers());
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| {
            format!(
                "cannot read the answer of {}: {}",
                without_query(url),
                cause(&e)
            )
        })?
        .to_bytes()
        .to_vec();
    Ok(Received {
        status,
        headers,
        body,
    })
}

/// The URL as people read it: without the query (signatures, nonces).
pub fn without_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(u, _)| u)
}

/// The innermost cause of an error, in words: "connection refused" rather than "client error
/// (Connect)".
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = e;
    while let Some(next) = deepest.source() {
        deepest = next;
    }
    if let Some(io) = deepest.downcast_ref::<std::io::Error>() {
        use std::io::ErrorKind;
        let words = match io.kind() {
            ErrorKind::ConnectionRefused => Some("connection refused"),
            ErrorKind::ConnectionReset => Some("connection reset"),
            ErrorKind::ConnectionAborted => Some("connection aborted"),
            ErrorKind::TimedOut => Some("timed out"),
            ErrorKind::AddrNotAvailable => Some("address not available"),
            ErrorKind::HostUnreachable => Some("host unreachable"),
            ErrorKind::NetworkUnreachable => Some("network unreachable"),
            _ => None,
        };
        if let Some(w) = words {
            return w.to_string();
        }
    }
    let text = deepest.to_string();
    if text.is_empty() {
        e.to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_names_the_url_and_the_cause() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/saas?signature=AB&nonce=CD");
        let e = send("POST", &url, &[], b"{}".to_vec()).await.err().unwrap();
        assert_eq!(
            e,
            format!("cannot reach http://127.0.0.1:{port}/saas: connection refused")
        );
    }
}
