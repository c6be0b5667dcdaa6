//! Non-secret settings, from environment variables (design §6). Read once at start-up; a bad
//! value stops the process with a message naming the variable, rather than running with a guess.

use std::path::PathBuf;
use std::time::Duration;

use koogate_protocol::aes_credentials::EncryptType;

/// Where records live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// DynamoDB table (endpoint from the AWS SDK's own settings, e.g. `AWS_ENDPOINT_URL_DYNAMODB`).
    DynamoDb { table: String },
    /// Embedded SQLite database file.
    Sqlite { path: PathBuf },
}

impl StoreConfig {
    /// The backend's name, as its cargo feature spells it.
    pub fn backend(&self) -> &'static str {
        match self {
            StoreConfig::DynamoDb { .. } => "dynamodb",
            StoreConfig::Sqlite { .. } => "sqlite",
        }
    }
}

/// Where the secrets document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsSource {
    File(PathBuf),
    SecretsManager {
        secret_id: String,
    },
    /// The document itself in `KOOGATE_SECRETS_JSON` (a FunctionGraph encrypted environment
    /// variable): read once, changed by redeploying.
    Inline(String),
}

/// Synchronous provisioning answers `000000` within the callback; asynchronous answers `000004`
/// at once and provisions afterwards (D7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisioningMode {
    Sync,
    Async,
}

/// Every setting of the runtime.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    pub secrets: SecretsSource,
    /// Accepted clock difference for `timestamp` (D3), both directions.
    pub clock_skew: Duration,
    /// V1 `timeStamp` freshness (D16), both directions; `None` disables the check.
    pub v1_window: Option<Duration>,
    /// AES key length of the encrypted V1 `mobilePhone`/`email` (fixed per product at publication).
    pub v1_contact_encryption: EncryptType,
    /// How long a request may work before it answers `000005` (the marketplace waits 5 s).
    pub request_budget: Duration,
    pub provisioning: ProvisioningMode,
    /// `{instanceId}` is replaced by the instance ID.
    pub front_end_url_template: String,
    pub admin_url_template: String,
    /// D9: credentials in queryInstance are plain unless this is set.
    pub credential_encryption: Option<EncryptType>,
    /// Emit one CloudWatch embedded-metric-format line per request.
    pub emit_metrics: bool,
    /// Outbound calls: site, base URL (override), timeouts, usage endpoint.
    pub marketplace: crate::marketplace::MarketplaceSettings,
    /// Query Order enrichment of newInstance, upgradeInstance and orderNotify (see README).
    pub enrichment: Enrichment,
    /// The ISV's product: event sinks, provisioning and license requests (README, "Connecting
    /// your product").
    pub isv: IsvSettings,
    /// `KOOGATE_SECRETS_TTL_SECS`: how long a secrets document from Secrets Manager is used
    /// before it is read again (a file is re-read when it changes).
    pub secrets_ttl: Duration,
}

/// Who provisions an instance of the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionerKind {
    /// URLs from templates and a generated administrator account (the product learns of it
    /// from `instance.created`).
    Template,
    /// A signed request to `KOOGATE_PROVISION_URL`.
    Webhook,
}

/// Who issues license strings (old License `getLicense`, online License `getLicenseAsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenseIssuerKind {
    Random,
    Webhook,
}

/// The settings of koogate's side towards the ISV's product.
#[derive(Debug, Clone)]
pub struct IsvSettings {
    /// `KOOGATE_WEBHOOK_URL`: every event is POSTed here.
    pub webhook_url: Option<String>,
    /// `KOOGATE_EVENT_BUS`: an EventBridge bus name or ARN (AWS).
    pub event_bus: Option<String>,
    /// `KOOGATE_EVENTS_DEBUG`: debug traffic produces events too (`data.debug = true`).
    pub events_debug: bool,
    pub provisioner: ProvisionerKind,
    pub license_issuer: LicenseIssuerKind,
    /// `KOOGATE_PROVISION_URL`: provisioning, change-check and license-issue requests.
    pub provision_url: Option<String>,
    /// `KOOGATE_EVENTS_RETRY_SCHEDULE`: the delays between attempts (the last one repeats).
    pub retry_schedule: Vec<Duration>,
    /// `KOOGATE_EVENTS_GIVE_UP_SECS`: an event still undelivered this long after it was
    /// recorded is `failed`.
    pub give_up_after: Duration,
}

impl IsvSettings {
    /// Whether any sink is configured (otherwise events are recorded but not delivered).
    pub fn has_sink(&self) -> bool {
        self.webhook_url.is_some() || self.event_bus.is_some()
    }
}

/// An http(s) URL koogate may call the product at: `https://`, or `http://` to a loopback host.
fn product_url(
    var_name: &'static str,
    value: Option<String>,
) -> Result<Option<String>, ConfigError> {
    let Some(url) = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    let bad = |reason: &str| ConfigError {
        var: var_name,
        reason: format!("{url:?} {reason}"),
    };
    let uri: hyper::Uri = url.parse().map_err(|_| bad("is not a URL"))?;
    let host = uri.host().ok_or_else(|| bad("has no host"))?;
    match uri.scheme_str() {
        Some("https") => Ok(Some(url)),
        Some("http") if is_loopback(host) => Ok(Some(url)),
        Some("http") => Err(bad(
            "must be https:// (plain http:// only to a loopback host)",
        )),
        _ => Err(bad("must be an https:// URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn parse_isv(var: &dyn Fn(&str) -> Option<String>) -> Result<IsvSettings, ConfigError> {
    let flag = |name: &'static str| match var(name).as_deref().map(str::trim) {
        None | Some("") | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(ConfigError {
            var: name,
            reason: format!("{other:?} is neither true nor false"),
        }),
    };
    let provision_url = product_url("KOOGATE_PROVISION_URL", var("KOOGATE_PROVISION_URL"))?;
    let needs_url = |var_name: &'static str| {
        if provision_url.is_none() {
            Err(ConfigError {
                var: var_name,
                reason: "webhook needs KOOGATE_PROVISION_URL".into(),
            })
        } else {
            Ok(())
        }
    };
    let provisioner = match var("KOOGATE_PROVISIONER").as_deref().map(str::trim) {
        None | Some("") | Some("template") => ProvisionerKind::Template,
        Some("webhook") => {
            needs_url("KOOGATE_PROVISIONER")?;
            ProvisionerKind::Webhook
        }
        Some(other) => {
            return Err(ConfigError {
                var: "KOOGATE_PROVISIONER",
                reason: format!("{other:?} is neither template nor webhook"),
            })
        }
    };
    let license_issuer = match var("KOOGATE_LICENSE_ISSUER").as_deref().map(str::trim) {
        None | Some("") | Some("random") => LicenseIssuerKind::Random,
        Some("webhook") => {
            needs_url("KOOGATE_LICENSE_ISSUER")?;
            LicenseIssuerKind::Webhook
        }
        Some(other) => {
            return Err(ConfigError {
                var: "KOOGATE_LICENSE_ISSUER",
                reason: format!("{other:?} is neither random nor webhook"),
            })
        }
    };
    let retry_schedule = match var("KOOGATE_EVENTS_RETRY_SCHEDULE") {
        None => [10, 30, 120, 600, 1800, 3600]
            .iter()
            .map(|s| Duration::from_secs(*s))
            .collect(),
        Some(v) => v
            .split(',')
            .map(|p| p.trim().parse::<u64>().map(Duration::from_secs))
            .collect::<Result<Vec<_>, _>>()
            .ok()
            .filter(|d| !d.is_empty())
            .ok_or_else(|| ConfigError {
                var: "KOOGATE_EVENTS_RETRY_SCHEDULE",
                reason: format!("{v:?} is not a comma-separated list of seconds"),
            })?,
    };
    Ok(IsvSettings {
        webhook_url: product_url("KOOGATE_WEBHOOK_URL", var("KOOGATE_WEBHOOK_URL"))?,
        event_bus: var("KOOGATE_EVENT_BUS")
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty()),
        events_debug: flag("KOOGATE_EVENTS_DEBUG")?,
        provisioner,
        license_issuer,
        provision_url,
        retry_schedule,
        give_up_after: Duration::from_secs(parse_num(
            "KOOGATE_EVENTS_GIVE_UP_SECS",
            var("KOOGATE_EVENTS_GIVE_UP_SECS"),
            3 * 24 * 3600,
        )?),
    })
}

/// Whether callbacks ask Query Order for the order details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enrichment {
    /// Inside the callback, bounded by what is left of the request budget; a failure leaves
    /// the record `pending` and never changes the answer.
    Inline,
    /// Never (no IAM AK/SK, or not wanted).
    Off,
}

/// A setting that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl Config {
    /// Reads the process environment. `default_store` is what `KOOGATE_STORE` means when unset:
    /// `dynamodb` for a Lambda function, `sqlite:.koogate/koogate.db` for `koogate serve`.
    pub fn from_env(default_store: &str) -> Result<Config, ConfigError> {
        Self::from_lookup(default_store, |k| std::env::var(k).ok())
    }

    /// Like [`Config::from_env`], reading variables through `get` (tests).
    pub fn from_lookup(
        default_store: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let table = var("KOOGATE_TABLE").unwrap_or_else(|| "koogate".to_string());
        let store_spec = var("KOOGATE_STORE").unwrap_or_else(|| default_store.to_string());
        let store = parse_store(&store_spec, table)?;

        let secrets = match (
            var("KOOGATE_SECRETS_FILE"),
            var("KOOGATE_SECRET_ID"),
            var("KOOGATE_SECRETS_JSON"),
        ) {
            (Some(path), _, _) => SecretsSource::File(PathBuf::from(path)),
            (None, Some(secret_id), _) => SecretsSource::SecretsManager { secret_id },
            (None, None, Some(doc)) => SecretsSource::Inline(doc),
            (None, None, None) => {
                return Err(ConfigError {
                    var: "KOOGATE_SECRETS_FILE",
                    reason: "set KOOGATE_SECRETS_FILE (a local JSON file), KOOGATE_SECRET_ID \
                             (a Secrets Manager secret) or KOOGATE_SECRETS_JSON (the document \
                             itself) to the secrets document"
                        .into(),
                })
            }
        };

        let clock_skew = Duration::from_secs(parse_num(
            "KOOGATE_CLOCK_SKEW_SECS",
            var("KOOGATE_CLOCK_SKEW_SECS"),
            60,
        )?);
        let v1_window =
            match parse_num("KOOGATE_V1_WINDOW_SECS", var("KOOGATE_V1_WINDOW_SECS"), 900)? {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            };
        let v1_contact_encryption = match var("KOOGATE_V1_CONTACT_ENCRYPTION").as_deref() {
            None | Some("aes256") => EncryptType::Aes256,
            Some("aes128") => EncryptType::Aes128,
            Some(other) => {
                return Err(ConfigError {
                    var: "KOOGATE_V1_CONTACT_ENCRYPTION",
                    reason: format!("{other:?} is neither aes256 nor aes128"),
                })
            }
        };
        let request_budget = Duration::from_millis(parse_num(
            "KOOGATE_REQUEST_BUDGET_MS",
            var("KOOGATE_REQUEST_BUDGET_MS"),
            4_000,
        )?);
        let provisioning = match var("KOOGATE_PROVISIONING").as_deref() {
            None | Some("sync") => ProvisioningMode::Sync,
            Some("async") => ProvisioningMode::Async,
            Some(other) => {
                return Err(ConfigError {
                    var: "KOOGATE_PROVISIONING",
                    reason: format!("{other:?} is neither \"sync\" nor \"async\""),
                })
            }
        };
        let credential_encryption = match var("KOOGATE_CREDENTIAL_ENCRYPTION").as_deref() {
            None | Some("none") => None,
            Some("aes256") => Some(EncryptType::Aes256),
            Some("aes128") => Some(EncryptType::Aes128),
            Some(other) => {
                return Err(ConfigError {
                    var: "KOOGATE_CREDENTIAL_ENCRYPTION",
                    reason: format!("{other:?} is not one of none, aes256, aes128"),
                })
            }
        };
        let emit_metrics = match var("KOOGATE_METRICS").as_deref() {
            Some("emf") => true,
            Some("off") => false,
            Some(other) => {
                return Err(ConfigError {
                    var: "KOOGATE_METRICS",
                    reason: format!("{other:?} is neither \"emf\" nor \"off\""),
                })
            }
            // In Lambda, stdout is CloudWatch Logs, where EMF lines become metrics.
            None => get("AWS_LAMBDA_FUNCTION_NAME").is_some(),
        };
        let marketplace = crate::marketplace::MarketplaceSettings::from_lookup(&get)?;
        let enrichment = match var("KOOGATE_ENRICHMENT").as_deref() {
            None | Some("inline") => Enrichment::Inline,
            Some("off") => Enrichment::Off,
            Some(other) => {
                return Err(ConfigError {
                    var: "KOOGATE_ENRICHMENT",
                    reason: format!("{other:?} is neither \"inline\" nor \"off\""),
                })
            }
        };
        let isv = parse_isv(&var)?;
        let secrets_ttl = Duration::from_secs(parse_num(
            "KOOGATE_SECRETS_TTL_SECS",
            var("KOOGATE_SECRETS_TTL_SECS"),
            300,
        )?);
        Ok(Config {
            isv,
            secrets_ttl,
            marketplace,
            enrichment,
            store,
            secrets,
            clock_skew,
            v1_window,
            v1_contact_encryption,
            request_budget,
            provisioning,
            front_end_url_template: var("KOOGATE_FRONTEND_URL_TEMPLATE")
                .unwrap_or_else(|| "https://app.example.com/{instanceId}".into()),
            admin_url_template: var("KOOGATE_ADMIN_URL_TEMPLATE")
                .unwrap_or_else(|| "https://app.example.com/{instanceId}/admin".into()),
            credential_encryption,
            emit_metrics,
        })
    }

    /// How long a verified V1 authToken is remembered: twice the freshness window (a token is
    /// fresh from `timeStamp - window` to `timeStamp + window`), 30 minutes when the check is off.
    pub fn v1_token_retention(&self) -> Duration {
        self.v1_window.map_or(Duration::from_secs(1800), |w| w * 2)
    }

    /// How long a verified nonce is remembered: twice the window, at least 120 s (D4).
    pub fn nonce_retention(&self) -> Duration {
        (self.clock_skew * 2).max(Duration::from_secs(120))
    }
}

fn parse_store(spec: &str, table: String) -> Result<StoreConfig, ConfigError> {
    if spec == "dynamodb" {
        return Ok(StoreConfig::DynamoDb { table });
    }
    if let Some(path) = spec.strip_prefix("sqlite:") {
        if !path.is_empty() {
            return Ok(StoreConfig::Sqlite {
                path: PathBuf::from(path),
            });
        }
    }
    Err(ConfigError {
        var: "KOOGATE_STORE",
        reason: format!("{spec:?} is neither \"dynamodb\" nor \"sqlite:<path>\""),
    })
}

fn parse_num(var: &'static str, value: Option<String>, default: u64) -> Result<u64, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ConfigError {
            var,
            reason: format!("{v:?} is not a whole number"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup("sqlite:.koogate/koogate.db", |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = cfg(&[("KOOGATE_SECRETS_FILE", "s.json")]).unwrap();
        assert_eq!(
            c.store,
            StoreConfig::Sqlite {
                path: ".koogate/koogate.db".into()
            }
        );
        assert_eq!(c.clock_skew, Duration::from_secs(60));
        assert_eq!(c.nonce_retention(), Duration::from_secs(120));
        assert_eq!(c.provisioning, ProvisioningMode::Sync);
        assert!(c.credential_encryption.is_none());
        assert!(!c.emit_metrics);
    }

    #[test]
    fn product_urls_are_https_or_loopback_http() {
        let base = [("KOOGATE_SECRETS_FILE", "s")];
        let with = |k: &'static str, v: &'static str| {
            let mut p = base.to_vec();
            p.push((k, v));
            cfg(&p)
        };
        let c = with("KOOGATE_WEBHOOK_URL", "http://127.0.0.1:9/hook").unwrap();
        assert_eq!(
            c.isv.webhook_url.as_deref(),
            Some("http://127.0.0.1:9/hook")
        );
        assert!(c.isv.has_sink());
        assert!(with("KOOGATE_WEBHOOK_URL", "https://isv.example.com/h").is_ok());
        let e = with("KOOGATE_WEBHOOK_URL", "http://isv.example.com/h").unwrap_err();
        assert_eq!(e.var, "KOOGATE_WEBHOOK_URL");
        let e = with("KOOGATE_PROVISIONER", "webhook").unwrap_err();
        assert_eq!(e.var, "KOOGATE_PROVISIONER", "webhook needs a URL");
        let e = with("KOOGATE_EVENTS_RETRY_SCHEDULE", "1,x").unwrap_err();
        assert_eq!(e.var, "KOOGATE_EVENTS_RETRY_SCHEDULE");
        let c = cfg(&base).unwrap();
        assert!(!c.isv.has_sink() && !c.isv.events_debug);
        assert_eq!(c.isv.retry_schedule.first(), Some(&Duration::from_secs(10)));
        assert_eq!(c.isv.give_up_after, Duration::from_secs(259_200));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = cfg(&[("KOOGATE_SECRETS_FILE", "s"), ("KOOGATE_STORE", "postgres")]).unwrap_err();
        assert_eq!(e.var, "KOOGATE_STORE");
        let e = cfg(&[
            ("KOOGATE_SECRETS_FILE", "s"),
            ("KOOGATE_CLOCK_SKEW_SECS", "1m"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "KOOGATE_CLOCK_SKEW_SECS");
        let e = cfg(&[]).unwrap_err();
        assert_eq!(e.var, "KOOGATE_SECRETS_FILE");
    }

    #[test]
    fn dynamodb_takes_the_table_and_retention_follows_the_window() {
        let c = cfg(&[
            ("KOOGATE_SECRET_ID", "arn:x"),
            ("KOOGATE_STORE", "dynamodb"),
            ("KOOGATE_TABLE", "t1"),
            ("KOOGATE_CLOCK_SKEW_SECS", "300"),
        ])
        .unwrap();
        assert_eq!(c.store, StoreConfig::DynamoDb { table: "t1".into() });
        assert_eq!(
            c.secrets,
            SecretsSource::SecretsManager {
                secret_id: "arn:x".into()
            }
        );
        assert_eq!(c.nonce_retention(), Duration::from_secs(600));
    }
}
