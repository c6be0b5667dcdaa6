//! The login's settings, from `KOOGATE_SSO_*` environment variables (README, "Joint-operation
//! login"). Read once at start-up; a bad value names its variable.

use std::time::Duration;

use koogate_runtime::config::ConfigError;

/// Every setting of the login.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The appId of the merchant's app credential (`KOOGATE_SSO_APP_ID`). Unset: the tenant's one
    /// synced app is used, which needs the tenant on `/sso/login`.
    pub app_id: Option<String>,
    /// The unified login page (`KOOGATE_SSO_LOGIN_PAGE`, default the China site's).
    pub login_page: String,
    /// This deployment's public base URL, e.g. `https://app.example.com`
    /// (`KOOGATE_SSO_PUBLIC_URL`): makes the `redirect_uri` of the token call
    /// (`{base}/sso/callback`) and an absolute logout target. Unset: neither is sent.
    pub public_url: Option<String>,
    /// Hosts an absolute return target may name (`KOOGATE_SSO_RETURN_HOSTS`, comma-separated,
    /// `host` or `host:port`). Relative paths are always allowed.
    pub return_hosts: Vec<String>,
    /// Where the browser goes after login or logout without a `return_to` (`KOOGATE_SSO_HOME`,
    /// default `/`).
    pub home: String,
    /// Absolute lifetime of a session (`KOOGATE_SSO_SESSION_SECS`, default 8 h).
    pub session_ttl: Duration,
    /// Lifetime of a started login, its state cookie included (10 min).
    pub login_ttl: Duration,
    /// The access token is refreshed when it has less than this left
    /// (`KOOGATE_SSO_REFRESH_MARGIN_SECS`, default 300).
    pub refresh_margin: Duration,
    /// Accept `http://` identity domains (`KOOGATE_SSO_ALLOW_HTTP_IDP=true`): local tests and
    /// development only; tokens and the client secret would travel unencrypted.
    pub allow_http_idp: bool,
    /// Time limit of one identity-domain call (`KOOGATE_SSO_IDP_TIMEOUT_MS`, default 2000): the
    /// callback makes two within the function's 5 s.
    pub idp_timeout: Duration,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`Settings::from_env`], reading variables through `get` (tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let secs = |name: &'static str, default: u64| -> Result<Duration, ConfigError> {
            match var(name) {
                None => Ok(Duration::from_secs(default)),
                Some(v) => v.parse().map(Duration::from_secs).map_err(|_| ConfigError {
                    var: name,
                    reason: format!("{v:?} is not a whole number of seconds"),
                }),
            }
        };
        let public_url = var("KOOGATE_SSO_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string());
        if let Some(u) = &public_url {
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(ConfigError {
                    var: "KOOGATE_SSO_PUBLIC_URL",
                    reason: format!("{u:?} is not an http(s) URL"),
                });
            }
        }
        let allow_http_idp = match var("KOOGATE_SSO_ALLOW_HTTP_IDP").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ConfigError {
                    var: "KOOGATE_SSO_ALLOW_HTTP_IDP",
                    reason: format!("{other:?} is neither \"true\" nor \"false\""),
                })
            }
        };
        let idp_timeout_ms = match var("KOOGATE_SSO_IDP_TIMEOUT_MS") {
            None => 2000,
            Some(v) => v.parse().map_err(|_| ConfigError {
                var: "KOOGATE_SSO_IDP_TIMEOUT_MS",
                reason: format!("{v:?} is not a whole number of milliseconds"),
            })?,
        };
        let home = var("KOOGATE_SSO_HOME").unwrap_or_else(|| "/".into());
        let return_hosts: Vec<String> = var("KOOGATE_SSO_RETURN_HOSTS")
            .map(|v| {
                v.split(',')
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if koogate_protocol::sso::check_return_target(&home, &return_hosts).is_err() {
            return Err(ConfigError {
                var: "KOOGATE_SSO_HOME",
                reason: format!(
                    "{home:?} is neither a local path nor on a host of KOOGATE_SSO_RETURN_HOSTS"
                ),
            });
        }
        Ok(Settings {
            app_id: var("KOOGATE_SSO_APP_ID"),
            login_page: var("KOOGATE_SSO_LOGIN_PAGE")
                .unwrap_or_else(|| koogate_protocol::sso::UNIFIED_LOGIN_PAGE.to_string()),
            public_url,
            return_hosts,
            home,
            session_ttl: secs("KOOGATE_SSO_SESSION_SECS", 8 * 3600)?,
            login_ttl: Duration::from_secs(600),
            refresh_margin: secs("KOOGATE_SSO_REFRESH_MARGIN_SECS", 300)?,
            allow_http_idp,
            idp_timeout: Duration::from_millis(idp_timeout_ms),
        })
    }

    /// The callback URL registered with the app credential, when the public URL is known.
    pub fn callback_url(&self) -> Option<String> {
        self.public_url
            .as_ref()
            .map(|u| format!("{u}/sso/callback"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_values() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert!(s
            .login_page
            .starts_with("https://macroverse.huaweicloud.com/"));
        assert!(!s.allow_http_idp);
        assert_eq!(s.home, "/");
        assert_eq!(s.callback_url(), None);
        let e = Settings::from_lookup(|k| (k == "KOOGATE_SSO_HOME").then(|| "//evil".into()))
            .unwrap_err();
        assert_eq!(e.var, "KOOGATE_SSO_HOME");
        let e =
            Settings::from_lookup(|k| (k == "KOOGATE_SSO_ALLOW_HTTP_IDP").then(|| "yes".into()))
                .unwrap_err();
        assert_eq!(e.var, "KOOGATE_SSO_ALLOW_HTTP_IDP");
    }
}
