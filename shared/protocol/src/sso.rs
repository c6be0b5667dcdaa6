//! The pure parts of the joint-operation login (docs/protocol.md (sso)): the URLs the browser is sent to, the
//! token and user-info answers of the tenant's identity domain, the return-target allow-list,
//! and the cookie and form encodings. The HTTP calls themselves live in the `sso` function.
//!
//! Nothing here keeps or prints a token: [`TokenGrant`] redacts itself in `Debug`, and errors
//! carry the identity provider's `error` code and description only.

use serde_json::{Map, Value};

/// The unified login page of the China site (docs/protocol.md, sso §3); `ind=UNOP&appId=…` are appended.
pub const UNIFIED_LOGIN_PAGE: &str =
    "https://macroverse.huaweicloud.com/unified-login/#/portal-login";

/// Percent-encodes a URL component or form value (RFC 3986 unreserved characters kept; a space
/// is `%20`, which form decoders read like `+`).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Form-decodes one query or form value: `+` is a space, `%XX` a byte; an invalid escape is kept
/// as written and invalid UTF-8 is replaced, so any input gives a string.
pub fn decode_form_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = |j: usize| bytes.get(j).and_then(|c| char::from(*c).to_digit(16));
                match (hex(i + 1), hex(i + 2)) {
                    (Some(hi), Some(lo)) => {
                        out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                        i += 3;
                    }
                    _ => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first value of `name` in a raw query string (or form body), form-decoded.
pub fn query_value(raw_query: &str, name: &str) -> Option<String> {
    raw_query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_form_component(k) == name).then(|| decode_form_component(v))
    })
}

/// `application/x-www-form-urlencoded` body of `pairs`.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The unified login page for `app_id` (docs/protocol.md, sso §3). `page` is the configured page (the China
/// site's by default); the parameters go after its `#` route, as the single-page app reads them.
/// `state` is added as well: the page does not document echoing it, and the callback checks it
/// whenever it comes back.
pub fn login_page_url(page: &str, app_id: &str, state: &str) -> String {
    let sep = if page.contains('?') { '&' } else { '?' };
    format!(
        "{page}{sep}ind=UNOP&appId={}&state={}",
        encode_component(app_id),
        encode_component(state)
    )
}

/// Why a tenant's `domainName` cannot be the base of login calls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Neither `https://host` nor (when allowed) `http://host`.
    #[error("the tenant's domainName is not an https:// URL")]
    NotHttps,
    /// Has a query, fragment, credentials or no host.
    #[error("the tenant's domainName is not a plain scheme://host[:port] URL")]
    Malformed,
}

/// The base URL of a tenant's identity domain (docs/protocol.md, sso §1: `domainName` includes the scheme),
/// without a trailing slash. Plain `http://` only when `allow_http` (local tests and
/// development): tokens and the client secret must not travel unencrypted.
pub fn identity_base(domain_name: &str, allow_http: bool) -> Result<String, DomainError> {
    let d = domain_name.trim().trim_end_matches('/');
    let rest = if let Some(rest) = d.strip_prefix("https://") {
        rest
    } else if let Some(rest) = d.strip_prefix("http://") {
        if !allow_http {
            return Err(DomainError::NotHttps);
        }
        rest
    } else {
        return Err(DomainError::NotHttps);
    };
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty()
        || rest
            .chars()
            .any(|c| matches!(c, '?' | '#' | '@' | '\\') || c.is_whitespace() || c.is_control())
    {
        return Err(DomainError::Malformed);
    }
    Ok(d.to_string())
}

/// `{domain}/api/v1/logout?redirect_url=…` (docs/protocol.md, sso §8); without a target the identity domain
/// sends the browser to its login page.
pub fn logout_url(identity_base: &str, redirect_url: Option<&str>) -> String {
    match redirect_url {
        Some(r) => format!(
            "{identity_base}/api/v1/logout?redirect_url={}",
            encode_component(r)
        ),
        None => format!("{identity_base}/api/v1/logout"),
    }
}

/// Why a return target was refused (no open redirect).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReturnTargetError {
    /// Not a local path and not on an allow-listed host.
    #[error(
        "the return target must be a path on this site (starting with a single /) or an \
             http(s) URL on an allow-listed host"
    )]
    NotAllowed,
}

/// Checks where the browser may be sent after login or logout: a path on this site (`/x`, but
/// not `//host` or `/\host`, which browsers read as another host), or an absolute `https://`
/// (or `http://`) URL whose host is in `allowed_hosts` (exact, case-insensitive; a port must be
/// written in the allow-list entry too). Returns the target unchanged.
pub fn check_return_target(
    target: &str,
    allowed_hosts: &[String],
) -> Result<String, ReturnTargetError> {
    if target.is_empty()
        || target
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Err(ReturnTargetError::NotAllowed);
    }
    if target.starts_with('/') {
        return if target.starts_with("//") {
            Err(ReturnTargetError::NotAllowed)
        } else {
            Ok(target.to_string())
        };
    }
    let lower = target.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or(ReturnTargetError::NotAllowed)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return Err(ReturnTargetError::NotAllowed);
    }
    if allowed_hosts
        .iter()
        .any(|h| h.trim().eq_ignore_ascii_case(authority))
    {
        Ok(target.to_string())
    } else {
        Err(ReturnTargetError::NotAllowed)
    }
}

/// The value of cookie `name` in a `Cookie` request header.
pub fn cookie_value(cookie_header: &str, name: &str) -> Option<String> {
    cookie_header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// A `Set-Cookie` value: HttpOnly (scripts never see it), Secure (never over plain HTTP),
/// SameSite=Lax (sent on the top-level navigation back from the login page, not on cross-site
/// sub-requests), Path=/ and no Domain, as the `__Host-` prefix requires.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64) -> String {
    format!("{name}={value}; Max-Age={max_age_secs}; Path=/; HttpOnly; Secure; SameSite=Lax")
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie(name: &str) -> String {
    set_cookie(name, "", 0)
}

/// The identity domain's refusal (`{"error":…,"error_description":…}`, docs/protocol.md, sso §5–§7), or a
/// description of an answer that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("identity provider answered HTTP {status}: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
pub struct OAuthError {
    /// The HTTP status of the answer.
    pub status: u16,
    /// `invalid_grant`, `invalid_client`, `unauthorized`, or `unexpected_answer`.
    pub error: String,
    /// `error_description`, at most 200 characters.
    pub description: Option<String>,
}

impl OAuthError {
    fn unexpected(status: u16, what: &str) -> Self {
        OAuthError {
            status,
            error: "unexpected_answer".into(),
            description: Some(what.into()),
        }
    }

    fn from_body(status: u16, body: &[u8]) -> Self {
        let obj: Option<Map<String, Value>> = serde_json::from_slice(body).ok();
        let field = |k: &str| {
            obj.as_ref()
                .and_then(|o| o.get(k))
                .and_then(Value::as_str)
                .map(|s| s.chars().take(200).collect::<String>())
        };
        match field("error") {
            Some(error) => OAuthError {
                status,
                error,
                description: field("error_description"),
            },
            None => OAuthError::unexpected(status, "no JSON error in the answer"),
        }
    }
}

/// A successful token answer (docs/protocol.md, sso §5, §6).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// The bearer token of the user-info call.
    pub access_token: String,
    /// Seconds; the documented default (7200) when absent or not a number.
    pub expires_in: i64,
    /// Issued by default; may be absent.
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenGrant")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The documented default lifetime of an access token (docs/protocol.md, sso §5).
pub const DEFAULT_EXPIRES_IN: i64 = 7200;

/// Reads the token endpoint's answer: HTTP 200 with `access_token`, or the refusal.
pub fn parse_token_answer(status: u16, body: &[u8]) -> Result<TokenGrant, OAuthError> {
    if status != 200 {
        return Err(OAuthError::from_body(status, body));
    }
    let obj: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|_| OAuthError::unexpected(status, "the token answer is not a JSON object"))?;
    let access_token = obj
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::from_body(status, body))?
        .to_string();
    let expires_in = match obj.get("expires_in") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|s| *s >= 0)
    .unwrap_or(DEFAULT_EXPIRES_IN);
    let refresh_token = obj
        .get("refresh_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    Ok(TokenGrant {
        access_token,
        expires_in,
        refresh_token,
    })
}

/// The user-info fields the login uses (docs/protocol.md, sso §7). Contact data (`email`, `mobile`) is not
/// read: the login does not need it and it must never reach a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The login account, equal to `userName` of authSync.
    pub user_name: String,
    /// Display name.
    pub name: Option<String>,
    /// `user` or `admin`.
    pub role: Option<String>,
    /// The tenant ID, when the identity domain sends it.
    pub tenant: Option<String>,
}

/// Reads the user-info answer: HTTP 200 with a non-empty `userName`, or the refusal. Values are
/// documented as strings; numbers are accepted as their text.
pub fn parse_userinfo_answer(status: u16, body: &[u8]) -> Result<UserInfo, OAuthError> {
    if status != 200 {
        return Err(OAuthError::from_body(status, body));
    }
    let obj: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|_| OAuthError::unexpected(status, "the user-info answer is not a JSON object"))?;
    let text = |k: &str| match obj.get(k) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let user_name = text("userName")
        .ok_or_else(|| OAuthError::unexpected(status, "the user-info answer has no userName"))?;
    Ok(UserInfo {
        user_name,
        name: text("name"),
        role: text("role"),
        tenant: text("tenant"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_page_carries_ind_and_app_id_after_the_route() {
        assert_eq!(
            login_page_url(UNIFIED_LOGIN_PAGE, "app 1", "s1"),
            "https://macroverse.huaweicloud.com/unified-login/#/portal-login?ind=UNOP&appId=app%201&state=s1"
        );
        assert!(login_page_url("http://x/p?a=1", "a", "s").starts_with("http://x/p?a=1&ind=UNOP"));
    }

    #[test]
    fn identity_base_wants_https_unless_allowed() {
        assert_eq!(
            identity_base("https://t.example.com/", false).unwrap(),
            "https://t.example.com"
        );
        assert_eq!(
            identity_base("http://127.0.0.1:9", false),
            Err(DomainError::NotHttps)
        );
        assert_eq!(
            identity_base("http://127.0.0.1:9", true).unwrap(),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            identity_base("t.example.com", true),
            Err(DomainError::NotHttps)
        );
        assert_eq!(
            identity_base("https://u@evil.example", false),
            Err(DomainError::Malformed)
        );
        assert!(identity_base("https://", false).is_err());
    }

    #[test]
    fn return_targets_are_local_paths_or_allow_listed_hosts() {
        let allow = vec!["app.example.com".to_string()];
        assert_eq!(
            check_return_target("/home?x=1", &allow).unwrap(),
            "/home?x=1"
        );
        assert_eq!(
            check_return_target("https://APP.example.com/a", &allow).unwrap(),
            "https://APP.example.com/a"
        );
        for bad in [
            "//evil.example/x",
            "/\\evil.example",
            "https://evil.example/",
            "https://app.example.com.evil.example/",
            "https://app.example.com@evil.example/",
            "javascript:alert(1)",
            "evil.example",
            "",
            "/a\r\nSet-Cookie: x",
            "https://app.example.com:8443/",
        ] {
            assert!(check_return_target(bad, &allow).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cookies_parse_and_render() {
        assert_eq!(
            cookie_value("a=1; __Host-s=abc ; b=2", "__Host-s").as_deref(),
            Some("abc")
        );
        assert_eq!(cookie_value("a=1", "b"), None);
        let c = set_cookie("n", "v", 60);
        for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=60"] {
            assert!(c.contains(attr), "{c}");
        }
        assert!(clear_cookie("n").contains("Max-Age=0"));
    }

    #[test]
    fn form_round_trip() {
        let body = form_encode(&[("client_secret", "a+b/c=d&e f"), ("code", "中")]);
        assert_eq!(
            query_value(&body, "client_secret").as_deref(),
            Some("a+b/c=d&e f")
        );
        assert_eq!(query_value(&body, "code").as_deref(), Some("中"));
        assert_eq!(query_value("x=%zz+1", "x").as_deref(), Some("%zz 1"));
        assert_eq!(query_value("x=1", "y"), None);
    }

    #[test]
    fn token_answers() {
        let g = parse_token_answer(
            200,
            br#"{"access_token":"A","token_type":"Bearer","expires_in":7200,"scope":"get_user_info","refresh_token":"R"}"#,
        )
        .unwrap();
        assert_eq!(g.access_token, "A");
        assert_eq!(g.expires_in, 7200);
        assert_eq!(g.refresh_token.as_deref(), Some("R"));
        assert!(!format!("{g:?}").contains('A') || !format!("{g:?}").contains("\"A\""));
        let g = parse_token_answer(200, br#"{"access_token":"A"}"#).unwrap();
        assert_eq!((g.expires_in, g.refresh_token), (DEFAULT_EXPIRES_IN, None));
        let e = parse_token_answer(
            400,
            br#"{"error":"invalid_grant","error_description":"Invalid authorization code"}"#,
        )
        .unwrap_err();
        assert_eq!(e.error, "invalid_grant");
        assert_eq!(e.status, 400);
        assert_eq!(
            parse_token_answer(403, b"<html>").unwrap_err().error,
            "unexpected_answer"
        );
        assert!(parse_token_answer(200, b"{}").is_err());
        assert!(parse_token_answer(200, b"[1]").is_err());
    }

    #[test]
    fn userinfo_answers() {
        let u = parse_userinfo_answer(
            200,
            r#"{"id":"1","userName":"alice","name":"Alice","email":"a@x","role":"admin","tenant":"T1"}"#.as_bytes(),
        )
        .unwrap();
        assert_eq!(u.user_name, "alice");
        assert_eq!(u.role.as_deref(), Some("admin"));
        assert_eq!(u.tenant.as_deref(), Some("T1"));
        assert!(!format!("{u:?}").contains("a@x"));
        let e = parse_userinfo_answer(401, br#"{"error":"unauthorized"}"#).unwrap_err();
        assert_eq!(e.error, "unauthorized");
        assert!(parse_userinfo_answer(200, br#"{"name":"x"}"#).is_err());
    }

    #[test]
    fn logout_url_encodes_the_target() {
        assert_eq!(
            logout_url("https://t.example", Some("https://app.example.com/?a=1")),
            "https://t.example/api/v1/logout?redirect_url=https%3A%2F%2Fapp.example.com%2F%3Fa%3D1"
        );
        assert_eq!(logout_url("https://t", None), "https://t/api/v1/logout");
    }
}
