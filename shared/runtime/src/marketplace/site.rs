//! Which marketplace host to call (docs/protocol.md, outbound §1, D19), from configuration.

use std::time::Duration;

use crate::config::ConfigError;

/// A KooGallery site and its default hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// 中国站: `https://mkt.myhuaweicloud.com`, fallback `https://mkt.myhuaweicloud.cn`.
    Cn,
    /// 国际站: `https://mkt-intl.myhuaweicloud.com`.
    Intl,
    /// huaweicloud.eu: `https://mkt.myhuaweicloud.eu`.
    Eu,
}

impl Site {
    fn defaults(self) -> (&'static str, Option<&'static str>) {
        match self {
            Site::Cn => (
                "https://mkt.myhuaweicloud.com",
                Some("https://mkt.myhuaweicloud.cn"),
            ),
            Site::Intl => ("https://mkt-intl.myhuaweicloud.com", None),
            Site::Eu => ("https://mkt.myhuaweicloud.eu", None),
        }
    }
}

/// A parsed base URL: scheme, host, port, and an optional path prefix (for a test server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
    pub path_prefix: String,
}

impl BaseUrl {
    /// Parses `https://host[:port][/prefix]`. Plain `http` is accepted only for a loopback host
    /// (a local test marketplace): certificates are always verified, there is no opt-out.
    pub fn parse(var: &'static str, s: &str) -> Result<BaseUrl, ConfigError> {
        let bad = |reason: String| ConfigError { var, reason };
        let uri: hyper::Uri = s
            .trim()
            .parse()
            .map_err(|e| bad(format!("{s:?} is not a URL: {e}")))?;
        let scheme = uri.scheme_str().unwrap_or("").to_ascii_lowercase();
        let host = uri
            .host()
            .ok_or_else(|| bad(format!("{s:?} has no host")))?
            .to_ascii_lowercase();
        let loopback = matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]" | "::1");
        match scheme.as_str() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(bad(format!(
                    "{s:?}: plain http is only allowed to a loopback host; the marketplace is \
                     always called over verified HTTPS"
                )))
            }
            _ => return Err(bad(format!("{s:?} is not an https URL"))),
        }
        if uri.query().is_some() {
            return Err(bad(format!("{s:?} must not carry a query")));
        }
        Ok(BaseUrl {
            scheme,
            host,
            port: uri.port_u16(),
            path_prefix: uri.path().trim_end_matches('/').to_string(),
        })
    }

    /// The `Host` header: `host[:port]`, the port left out when it is the scheme's default.
    pub fn host_header(&self) -> String {
        match (self.scheme.as_str(), self.port) {
            ("https", Some(443)) | ("http", Some(80)) | (_, None) => self.host.clone(),
            (_, Some(p)) => format!("{}:{p}", self.host),
        }
    }
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme,
            self.host_header(),
            self.path_prefix
        )
    }
}

/// Which usage-push endpoint to use (docs/protocol.md, outbound §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageEndpointChoice {
    /// `…/global/v1/isv/usage-data` with the header signature (and API Gateway signing when an
    /// IAM AK/SK is configured, D17).
    New,
    /// `/rest/marketplace/v1/isv/usage-data`, API Gateway signing only; needs `product_id`.
    Old,
}

/// Marketplace settings, from `KOOGATE_MARKETPLACE_*` variables.
#[derive(Debug, Clone)]
pub struct MarketplaceSettings {
    pub site: Site,
    pub base: BaseUrl,
    pub fallback: Option<BaseUrl>,
    /// Per-attempt timeout of calls made while a callback waits.
    pub callback_attempt_timeout: Duration,
    /// Per-attempt timeout of background calls (usage push, CLI).
    pub background_attempt_timeout: Duration,
    pub usage_endpoint: UsageEndpointChoice,
    /// Whether the operator named the marketplace (`KOOGATE_MARKETPLACE_SITE` or
    /// `KOOGATE_MARKETPLACE_URL`): without that, or an IAM AK/SK, `koogate serve` never calls it.
    pub explicit: bool,
}

impl MarketplaceSettings {
    /// Reads the settings through `get` (see the README's configuration table).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let site = match var("KOOGATE_MARKETPLACE_SITE").as_deref() {
            None | Some("cn") => Site::Cn,
            Some("intl") => Site::Intl,
            Some("eu") => Site::Eu,
            Some(other) => {
                return Err(ConfigError {
                    var: "KOOGATE_MARKETPLACE_SITE",
                    reason: format!("{other:?} is not one of cn, intl, eu"),
                })
            }
        };
        let (default_base, default_fallback) = site.defaults();
        let overridden = var("KOOGATE_MARKETPLACE_URL");
        let base = BaseUrl::parse(
            "KOOGATE_MARKETPLACE_URL",
            overridden.as_deref().unwrap_or(default_base),
        )?;
        // An overridden base URL has no implied fallback: the .cn host belongs to the default.
        let fallback = match var("KOOGATE_MARKETPLACE_FALLBACK_URL") {
            Some(f) if f == "none" => None,
            Some(f) => Some(BaseUrl::parse("KOOGATE_MARKETPLACE_FALLBACK_URL", &f)?),
            None if overridden.is_some() => None,
            None => default_fallback
                .map(|f| BaseUrl::parse("KOOGATE_MARKETPLACE_FALLBACK_URL", f))
                .transpose()?,
        };
        let ms = |name: &'static str, default: u64| -> Result<Duration, ConfigError> {
            match var(name) {
                None => Ok(Duration::from_millis(default)),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Duration::from_millis)
                    .map_err(|_| ConfigError {
                        var: name,
                        reason: format!("{v:?} is not a whole number of milliseconds"),
                    }),
            }
        };
        let usage_endpoint = match var("KOOGATE_USAGE_ENDPOINT").as_deref() {
            None | Some("new") => UsageEndpointChoice::New,
            Some("old") => UsageEndpointChoice::Old,
            Some(other) => {
                return Err(ConfigError {
                    var: "KOOGATE_USAGE_ENDPOINT",
                    reason: format!("{other:?} is neither \"new\" nor \"old\""),
                })
            }
        };
        Ok(MarketplaceSettings {
            site,
            base,
            fallback,
            callback_attempt_timeout: ms("KOOGATE_MARKETPLACE_TIMEOUT_MS", 1_500)?,
            background_attempt_timeout: ms("KOOGATE_MARKETPLACE_PUSH_TIMEOUT_MS", 10_000)?,
            usage_endpoint,
            explicit: var("KOOGATE_MARKETPLACE_SITE").is_some() || overridden.is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<MarketplaceSettings, ConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        MarketplaceSettings::from_lookup(|k| {
            pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_are_the_cn_hosts_with_the_cn_fallback() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.base.to_string(), "https://mkt.myhuaweicloud.com");
        assert_eq!(
            s.fallback.unwrap().to_string(),
            "https://mkt.myhuaweicloud.cn"
        );
        let s = settings(&[("KOOGATE_MARKETPLACE_SITE", "intl")]).unwrap();
        assert_eq!(s.base.host, "mkt-intl.myhuaweicloud.com");
        assert!(s.fallback.is_none());
        assert_eq!(
            settings(&[("KOOGATE_MARKETPLACE_SITE", "eu")])
                .unwrap()
                .base
                .host,
            "mkt.myhuaweicloud.eu"
        );
    }

    #[test]
    fn the_override_allows_plain_http_only_on_loopback() {
        let s = settings(&[("KOOGATE_MARKETPLACE_URL", "http://127.0.0.1:8123/")]).unwrap();
        assert_eq!(s.base.host_header(), "127.0.0.1:8123");
        assert!(s.fallback.is_none());
        let e = settings(&[("KOOGATE_MARKETPLACE_URL", "http://mkt.example.com")]).unwrap_err();
        assert_eq!(e.var, "KOOGATE_MARKETPLACE_URL");
        assert!(settings(&[("KOOGATE_MARKETPLACE_URL", "ftp://x")]).is_err());
        let s = settings(&[("KOOGATE_MARKETPLACE_URL", "https://mkt.example.com:443/p")]).unwrap();
        assert_eq!(s.base.host_header(), "mkt.example.com");
        assert_eq!(s.base.path_prefix, "/p");
    }

    #[test]
    fn bad_values_name_the_variable() {
        assert_eq!(
            settings(&[("KOOGATE_MARKETPLACE_SITE", "mars")])
                .unwrap_err()
                .var,
            "KOOGATE_MARKETPLACE_SITE"
        );
        assert_eq!(
            settings(&[("KOOGATE_USAGE_ENDPOINT", "v3")])
                .unwrap_err()
                .var,
            "KOOGATE_USAGE_ENDPOINT"
        );
    }
}
