//! The secrets document (design §6): access keys per interface type (current first, then
//! previous), the RSA private key, the IAM AK/SK. Read once per cold start.
//!
//! Nothing here implements `Display`, and `Debug` prints only counts, so a secret cannot reach a
//! log line by accident.

use std::collections::HashMap;

use serde::Deserialize;

use crate::routes::InterfaceType;

/// The parsed secrets document.
#[derive(Clone, Deserialize, Default)]
pub struct Secrets {
    #[serde(default)]
    access_keys: HashMap<String, Vec<String>>,
    #[serde(default)]
    pub rsa_private_key_pem: Option<String>,
    #[serde(default)]
    pub iam: Option<IamCredentials>,
    /// Standard Webhooks secrets (`whsec_…`), current first: every request to the ISV's product
    /// is signed with each (README, "Connecting your product").
    #[serde(default)]
    pub webhook_secrets: Vec<String>,
    /// Bearer tokens of the Product API (`/isv/v1`), any of which is accepted.
    #[serde(default)]
    pub isv_api_tokens: Vec<String>,
}

/// The merchant's Huawei Cloud IAM AK/SK for outbound calls.
#[derive(Clone, Deserialize)]
pub struct IamCredentials {
    pub ak: String,
    pub sk: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts: HashMap<&str, usize> = self
            .access_keys
            .iter()
            .map(|(k, v)| (k.as_str(), v.len()))
            .collect();
        f.debug_struct("Secrets")
            .field("access_key_counts", &counts)
            .field(
                "rsa_private_key",
                &self.rsa_private_key_pem.as_ref().map(|_| "<set>"),
            )
            .field("iam", &self.iam.as_ref().map(|_| "<set>"))
            .field("webhook_secrets", &self.webhook_secrets.len())
            .field("isv_api_tokens", &self.isv_api_tokens.len())
            .finish()
    }
}

/// Why the secrets document could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot read secrets file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot fetch secret {secret_id} from Secrets Manager: {reason}")]
    Fetch { secret_id: String, reason: String },
    /// The message names the JSON problem's position, never the content.
    #[error("secrets document is not valid: {0}")]
    Invalid(String),
    #[error("secrets document has no access key for interface type {0:?} (access_keys.{0})")]
    MissingKeys(&'static str),
}

impl Secrets {
    /// Parses the JSON document. Empty key strings are dropped; key order is kept (current first).
    pub fn parse(json: &str) -> Result<Secrets, SecretsError> {
        let mut s: Secrets = serde_json::from_str(json).map_err(|e| {
            SecretsError::Invalid(format!(
                "line {} column {}: {}",
                e.line(),
                e.column(),
                classify(&e)
            ))
        })?;
        for keys in s.access_keys.values_mut() {
            keys.retain(|k| !k.trim().is_empty());
        }
        s.webhook_secrets.retain(|k| !k.trim().is_empty());
        s.isv_api_tokens.retain(|k| !k.trim().is_empty());
        Ok(s)
    }

    /// The keys of an interface type, current first; empty when none is configured.
    pub fn keys(&self, interface: InterfaceType) -> &[String] {
        self.access_keys
            .get(interface.name())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Fails unless every listed interface type has at least one key: checked at start-up so
    /// that a misconfigured function fails its first deploy instead of answering `000001`.
    pub fn require(&self, interfaces: &[InterfaceType]) -> Result<(), SecretsError> {
        for i in interfaces {
            if i.needs_key() && self.keys(*i).is_empty() {
                return Err(SecretsError::MissingKeys(i.name()));
            }
        }
        Ok(())
    }

    /// The webhook secrets, decoded; fails naming the position of a malformed one (never its
    /// value).
    pub fn webhook_secrets(
        &self,
    ) -> Result<Vec<koogate_protocol::webhook::WebhookSecret>, SecretsError> {
        self.webhook_secrets
            .iter()
            .enumerate()
            .map(|(i, w)| {
                koogate_protocol::webhook::WebhookSecret::parse(w, true)
                    .map_err(|e| SecretsError::Invalid(format!("webhook_secrets[{i}]: {e}")))
            })
            .collect()
    }

    /// A document with the given keys (tests, benchmarks, `koogate sign`).
    pub fn with_keys(pairs: &[(InterfaceType, &[&str])]) -> Secrets {
        Secrets {
            access_keys: pairs
                .iter()
                .map(|(i, ks)| {
                    (
                        i.name().to_string(),
                        ks.iter().map(|k| k.to_string()).collect(),
                    )
                })
                .collect(),
            ..Secrets::default()
        }
    }
}

/// serde_json's message can quote input; keep only its category.
fn classify(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Io => "I/O error",
        Category::Syntax => "syntax error",
        Category::Data => "a field has the wrong type",
        Category::Eof => "unexpected end",
    }
}

/// Reads the document from its configured source.
pub async fn load(source: &crate::config::SecretsSource) -> Result<Secrets, SecretsError> {
    match source {
        crate::config::SecretsSource::File(path) => {
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| SecretsError::Read {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
            Secrets::parse(&text)
        }
        crate::config::SecretsSource::SecretsManager { secret_id } => {
            let conf = crate::aws::sdk_config().await;
            let client = aws_sdk_secretsmanager::Client::new(&conf);
            let out = client
                .get_secret_value()
                .secret_id(secret_id)
                .send()
                .await
                .map_err(|e| SecretsError::Fetch {
                    secret_id: secret_id.clone(),
                    reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
                })?;
            let text = out.secret_string().ok_or_else(|| SecretsError::Fetch {
                secret_id: secret_id.clone(),
                reason: "the secret has no SecretString".into(),
            })?;
            Secrets::parse(text)
        }
        crate::config::SecretsSource::Inline(doc) => Secrets::parse(doc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_rotation_order_and_debug_prints_no_secret() {
        let s = Secrets::parse(
            r#"{"access_keys":{"basic":["current-key","","previous-key"]},"iam":{"ak":"AK1","sk":"SK1"}}"#,
        )
        .unwrap();
        assert_eq!(
            s.keys(InterfaceType::Basic),
            ["current-key", "previous-key"]
        );
        assert!(s.keys(InterfaceType::Kit).is_empty());
        let printed = format!("{s:?}");
        for secret in ["current-key", "previous-key", "AK1", "SK1"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(s.require(&[InterfaceType::Basic]).is_ok());
        assert!(matches!(
            s.require(&[InterfaceType::Kit]),
            Err(SecretsError::MissingKeys("kit"))
        ));
    }

    #[test]
    fn an_invalid_document_does_not_echo_its_content() {
        let e = Secrets::parse(r#"{"access_keys":{"basic":"super-secret-value"}}"#).unwrap_err();
        assert!(!e.to_string().contains("super-secret-value"), "{e}");
    }
}
