//! The settings of `koogate serve` as an internet-facing server: listen address, timeouts,
//! connection and memory caps, graceful shutdown, TLS, and the base path of the marketplace
//! routes. Read once at start-up; an invalid value stops start-up naming the variable.

use std::sync::Arc;
use std::time::Duration;

use crate::http_guard::Timeouts;

/// Where `koogate serve` listens without `--addr`, `KOOGATE_ADDR` or `PORT`.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// File descriptors kept out of the connection cap: stdio, the async runtime's own, the SQLite
/// database with its journal/WAL files, the background usage push and event delivery.
pub const RESERVED_FDS: u64 = 64;

/// The connection cap never goes below this, whatever the file-descriptor limit.
pub const MIN_CONNECTIONS: usize = 4;

/// Everything `koogate serve` needs beyond the [`crate::App`].
#[derive(Clone)]
pub struct ServeOptions {
    /// `KOOGATE_HEADER_TIMEOUT_SECS`, `KOOGATE_BODY_TIMEOUT_SECS`, `KOOGATE_IDLE_TIMEOUT_SECS`.
    pub timeouts: Timeouts,
    /// `KOOGATE_MAX_CONNECTIONS`, lowered by [`ServeOptions::fit_fd_limit`].
    ///
    /// At the cap the server stops accepting until a connection closes; new connections wait in
    /// the kernel's listen backlog (and, past it, SYN retries on the client). That was chosen
    /// over accepting and answering `503`: accepting costs a descriptor per connection, which is
    /// exactly what runs out under a connection flood, and a `503` written to a client that
    /// never reads can block too. Waiting is also what the marketplace copes with best: its call
    /// is answered as soon as a slot frees (the header timeout frees slots held by clients that
    /// send nothing), within its 5 s budget unless the flood outlasts the header timeout, in
    /// which case it retries later as it does for any failed call.
    pub max_connections: usize,
    /// `KOOGATE_BODY_MEMORY_MIB`: bytes of request bodies held in memory at once, across all
    /// connections, beyond the first 64 KiB of each (which the connection cap bounds). A body
    /// waits for room as its bytes arrive (bounded by the body timeout); with the connection cap
    /// and hyper's per-connection buffer (64 KiB) it bounds the memory requests can take:
    /// `max_connections × 128 KiB + body_memory_bytes`. The default, 32 MiB, holds 32 bodies of
    /// the largest size at once; the marketplace's are a few KiB.
    pub body_memory_bytes: usize,
    /// `KOOGATE_SHUTDOWN_GRACE_SECS`: how long in-flight requests may take after SIGTERM/SIGINT.
    pub shutdown_grace: Duration,
    /// `KOOGATE_TLS_HANDSHAKE_TIMEOUT_SECS`.
    pub tls_handshake_timeout: Duration,
    /// `KOOGATE_TLS_CERT` + `KOOGATE_TLS_KEY`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `KOOGATE_BASE_PATH`.
    pub base_path: BasePath,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            timeouts: Timeouts {
                header: Duration::from_secs(10),
                body: Duration::from_secs(10),
                idle: Duration::from_secs(30),
            },
            max_connections: 512,
            body_memory_bytes: 32 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            tls: None,
            base_path: BasePath::default(),
        }
    }
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("timeouts", &self.timeouts)
            .field("max_connections", &self.max_connections)
            .field("body_memory_bytes", &self.body_memory_bytes)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("tls_handshake_timeout", &self.tls_handshake_timeout)
            .field("tls", &self.tls.is_some())
            .field("base_path", &self.base_path)
            .finish()
    }
}

impl ServeOptions {
    /// From the environment (see README, "Configuration").
    pub fn from_env() -> Result<ServeOptions, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// From any variable lookup (tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<ServeOptions, String> {
        let d = ServeOptions::default();
        let secs = |name: &str, default: Duration| -> Result<Duration, String> {
            match get(name).map(|v| v.trim().to_string()) {
                None => Ok(default),
                Some(v) if v.is_empty() => Ok(default),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if (1..=3600).contains(&n) => Ok(Duration::from_secs(n)),
                    _ => Err(format!("{name}={v:?}: expected whole seconds, 1 to 3600")),
                },
            }
        };
        let count = |name: &str, default: usize, min: usize| -> Result<usize, String> {
            match get(name).map(|v| v.trim().to_string()) {
                None => Ok(default),
                Some(v) if v.is_empty() => Ok(default),
                Some(v) => match v.parse::<usize>() {
                    Ok(n) if n >= min && n <= 1_000_000 => Ok(n),
                    _ => Err(format!("{name}={v:?}: expected a number from {min}")),
                },
            }
        };
        let timeouts = Timeouts {
            header: secs("KOOGATE_HEADER_TIMEOUT_SECS", d.timeouts.header)?,
            body: secs("KOOGATE_BODY_TIMEOUT_SECS", d.timeouts.body)?,
            idle: secs("KOOGATE_IDLE_TIMEOUT_SECS", d.timeouts.idle)?,
        };
        let max_connections = count(
            "KOOGATE_MAX_CONNECTIONS",
            d.max_connections,
            MIN_CONNECTIONS,
        )?;
        // Room for at least two bodies of the largest size, so one can always complete.
        let body_memory_bytes = count(
            "KOOGATE_BODY_MEMORY_MIB",
            d.body_memory_bytes >> 20,
            2 * (koogate_protocol::request::MAX_BODY_BYTES >> 20).max(1),
        )? << 20;
        let shutdown_grace = secs("KOOGATE_SHUTDOWN_GRACE_SECS", d.shutdown_grace)?;
        let tls_handshake_timeout = secs(
            "KOOGATE_TLS_HANDSHAKE_TIMEOUT_SECS",
            d.tls_handshake_timeout,
        )?;
        let tls = match (get("KOOGATE_TLS_CERT"), get("KOOGATE_TLS_KEY")) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(Arc::new(tls_config(
                std::path::Path::new(&cert),
                std::path::Path::new(&key),
            )?)),
            _ => {
                return Err(
                    "KOOGATE_TLS_CERT and KOOGATE_TLS_KEY must be set together (PEM files)".into(),
                )
            }
        };
        let base_path = match get("KOOGATE_BASE_PATH") {
            None => BasePath::default(),
            Some(v) => BasePath::parse(&v).map_err(|e| format!("KOOGATE_BASE_PATH={v:?}: {e}"))?,
        };
        Ok(ServeOptions {
            timeouts,
            max_connections,
            body_memory_bytes,
            shutdown_grace,
            tls_handshake_timeout,
            tls,
            base_path,
        })
    }

    /// Lowers the connection cap so that the process stays below its open-file limit `soft`
    /// (RLIMIT_NOFILE): [`RESERVED_FDS`] are kept for the process itself, and each connection is
    /// counted twice, for its socket and for one outbound call its request may make (the
    /// provisioner webhook, the marketplace). Returns the previous cap when it was lowered.
    pub fn fit_fd_limit(&mut self, soft: u64) -> Option<usize> {
        let fit = usize::try_from(soft.saturating_sub(RESERVED_FDS) / 2)
            .unwrap_or(usize::MAX)
            .max(MIN_CONNECTIONS);
        (fit < self.max_connections).then(|| std::mem::replace(&mut self.max_connections, fit))
    }
}

/// The listen address: `--addr`, else `KOOGATE_ADDR`, else `0.0.0.0:$PORT` when `PORT` is set
/// (the FunctionGraph HTTP-function and container convention), else [`DEFAULT_ADDR`].
pub fn listen_addr(flag: Option<&str>, get: impl Fn(&str) -> Option<String>) -> String {
    let set = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if let Some(a) = flag {
        return a.to_string();
    }
    if let Some(a) = set(get("KOOGATE_ADDR")) {
        return a;
    }
    if let Some(port) = set(get("PORT")) {
        return format!("0.0.0.0:{port}");
    }
    DEFAULT_ADDR.to_string()
}

/// Where the marketplace's production-interface routes are mounted (`KOOGATE_BASE_PATH`).
///
/// The seller registers one production address; the marketplace posts basic calls to it and
/// appends `/produceAPI/v2/<op>` (kit V2) or `/produceAPI/<op>` (kit V1) to it. The route table
/// has them under `/saas`; with another base path, `koogate serve` serves `POST <base>`,
/// `GET <base>` (V1) and `POST <base>/produceAPI/…` instead, and the `/saas` paths are not
/// served. With `/` (a production address that is a bare origin, as Huawei's kit pages show it)
/// they are `POST /`, `GET /` and `/produceAPI/…`.
///
/// The other routes keep their paths: `/license`, `/order-notify`, `/sso/…` and `/isv/v1/…` are
/// not derived from the production address (each is its own URL in the console, or the ISV's
/// own configuration), and `/healthz` stays at the root for load balancers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasePath(String);

/// The prefix the route table uses for the routes a base path moves.
const TABLE_BASE: &str = "/saas";

impl Default for BasePath {
    fn default() -> Self {
        BasePath(TABLE_BASE.to_string())
    }
}

impl BasePath {
    /// `/`, or `/segment[/segment…]` without a trailing slash (one is removed), without query,
    /// fragment, dot segments or empty segments, and not on another route's path.
    pub fn parse(s: &str) -> Result<BasePath, String> {
        let s = s.trim();
        if s == "/" {
            return Ok(BasePath("/".into()));
        }
        let s = s.strip_suffix('/').unwrap_or(s);
        if !s.starts_with('/') {
            return Err("must start with /".into());
        }
        let segments: Vec<&str> = s.split('/').skip(1).collect();
        for seg in &segments {
            if seg.is_empty() || *seg == "." || *seg == ".." {
                return Err("empty or dot segment".into());
            }
            if !seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
            {
                return Err("only letters, digits and - . _ ~ in segments".into());
            }
        }
        let first = segments.first().copied().unwrap_or("");
        if s != TABLE_BASE
            && ["license", "order-notify", "sso", "isv", "healthz", "saas"].contains(&first)
        {
            return Err(format!("/{first} is taken by other routes"));
        }
        Ok(BasePath(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The route-table path a request path stands for: a path under the base path is moved to
    /// `/saas`, a `/saas` path is hidden (None) when the base path is elsewhere, any other path
    /// is itself.
    pub fn to_table<'a>(&self, path: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        use std::borrow::Cow;
        if self.0 == TABLE_BASE {
            return Some(Cow::Borrowed(path));
        }
        if path == self.0 {
            return Some(Cow::Borrowed(TABLE_BASE));
        }
        let prefix = if self.0 == "/" { "" } else { self.0.as_str() };
        if let Some(rest) = path.strip_prefix(prefix) {
            if rest.starts_with("/produceAPI/") {
                return Some(Cow::Owned(format!("{TABLE_BASE}{rest}")));
            }
        }
        if path == TABLE_BASE || path.starts_with("/saas/") {
            return None;
        }
        Some(Cow::Borrowed(path))
    }

    /// The served path of a route-table path (for the start-up listing).
    pub fn from_table(&self, table_path: &str) -> String {
        match table_path.strip_prefix(TABLE_BASE) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                if self.0 == "/" {
                    if rest.is_empty() {
                        "/".into()
                    } else {
                        rest.into()
                    }
                } else {
                    format!("{}{rest}", self.0)
                }
            }
            _ => table_path.to_string(),
        }
    }
}

/// A rustls server configuration from PEM files: TLS 1.2 and 1.3 only (rustls has nothing
/// older), the ring provider, HTTP/1.1 by ALPN. Errors name the file.
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "KOOGATE_TLS_CERT {}: cannot read a PEM certificate chain: {e}",
                cert.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "KOOGATE_TLS_CERT {}: no CERTIFICATE in the file",
            cert.display()
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "KOOGATE_TLS_KEY {}: cannot read a PEM private key: {e}",
            key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            format!(
                "KOOGATE_TLS_CERT {} / KOOGATE_TLS_KEY {}: {e}",
                cert.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths_move_only_the_production_address_routes() {
        let root = BasePath::parse("/").unwrap();
        assert_eq!(root.to_table("/").as_deref(), Some("/saas"));
        assert_eq!(
            root.to_table("/produceAPI/v2/tenantSync").as_deref(),
            Some("/saas/produceAPI/v2/tenantSync")
        );
        assert_eq!(root.to_table("/saas"), None);
        assert_eq!(root.to_table("/saas/produceAPI/v2/tenantSync"), None);
        assert_eq!(root.to_table("/license").as_deref(), Some("/license"));
        assert_eq!(root.from_table("/saas"), "/");
        assert_eq!(
            root.from_table("/saas/produceAPI/authSync"),
            "/produceAPI/authSync"
        );
        let api = BasePath::parse("/api/koo/").unwrap();
        assert_eq!(api.as_str(), "/api/koo");
        assert_eq!(api.to_table("/api/koo").as_deref(), Some("/saas"));
        assert_eq!(
            api.to_table("/api/koo/produceAPI/v2/x").as_deref(),
            Some("/saas/produceAPI/v2/x")
        );
        assert_eq!(
            api.to_table("/produceAPI/v2/x").as_deref(),
            Some("/produceAPI/v2/x")
        );
        assert_eq!(api.from_table("/order-notify"), "/order-notify");
        let default = BasePath::default();
        assert_eq!(default.to_table("/saas").as_deref(), Some("/saas"));
        for bad in [
            "saas", "/a//b", "/a/../b", "/license", "/sso/x", "/a?b", "/healthz",
        ] {
            assert!(BasePath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn options_read_and_check_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let o = ServeOptions::from_lookup(env(&[])).unwrap();
        assert_eq!(o.max_connections, 512);
        assert_eq!(o.timeouts.header, Duration::from_secs(10));
        let o = ServeOptions::from_lookup(env(&[
            ("KOOGATE_HEADER_TIMEOUT_SECS", "2"),
            ("KOOGATE_MAX_CONNECTIONS", "20"),
            ("KOOGATE_BASE_PATH", "/"),
        ]))
        .unwrap();
        assert_eq!(o.timeouts.header, Duration::from_secs(2));
        assert_eq!(o.max_connections, 20);
        assert_eq!(o.base_path.as_str(), "/");
        for bad in [
            ("KOOGATE_IDLE_TIMEOUT_SECS", "0"),
            ("KOOGATE_BODY_TIMEOUT_SECS", "x"),
            ("KOOGATE_MAX_CONNECTIONS", "1"),
            ("KOOGATE_TLS_CERT", "/c.pem"),
        ] {
            let pairs: &'static [(&str, &str)] = Box::leak(Box::new([bad]));
            let e = ServeOptions::from_lookup(env(pairs)).unwrap_err();
            assert!(e.contains(bad.0), "{e}");
        }
        let e = ServeOptions::from_lookup(env(&[
            ("KOOGATE_TLS_CERT", "/nonexistent/cert.pem"),
            ("KOOGATE_TLS_KEY", "/nonexistent/key.pem"),
        ]))
        .unwrap_err();
        assert!(e.contains("/nonexistent/cert.pem"), "{e}");
    }

    #[test]
    fn the_connection_cap_fits_the_fd_limit() {
        let mut o = ServeOptions::default();
        assert_eq!(o.fit_fd_limit(1 << 20), None);
        assert_eq!(o.max_connections, 512);
        assert_eq!(o.fit_fd_limit(1024), Some(512));
        assert_eq!(o.max_connections, 480);
        o.fit_fd_limit(128);
        assert_eq!(o.max_connections, 32);
        o.fit_fd_limit(10);
        assert_eq!(o.max_connections, MIN_CONNECTIONS);
        assert_eq!(listen_addr(Some("1.2.3.4:5"), |_| None), "1.2.3.4:5");
        assert_eq!(
            listen_addr(None, |k| (k == "PORT").then(|| "8000".into())),
            "0.0.0.0:8000"
        );
        assert_eq!(
            listen_addr(None, |k| Some(format!("{k}-set"))),
            "KOOGATE_ADDR-set"
        );
        assert_eq!(listen_addr(None, |_| None), DEFAULT_ADDR);
    }
}
