//! The provisioner hook (design §7): how an instance of the ISV's own product comes to exist.
//!
//! koogate cannot know the ISV's SaaS, so the default [`TemplateProvisioner`] fills `appInfo`
//! from URL templates and a generated administrator account, enough for a product with
//! self-service onboarding to go live. An ISV with real provisioning implements [`Provisioner`].
//! Implementations must be idempotent per `instance_id`: after a crash or a timeout the same
//! instance is provisioned again.

use async_trait::async_trait;
use koogate_protocol::request::TargetProduct;
use koogate_protocol::result_code::ResultCode;
use koogate_store::{AppInfo, Instance};
use rand::{Rng, SeedableRng};

/// What is being bought.
#[derive(Debug, Clone)]
pub struct ProvisionRequest<'a> {
    pub instance_id: &'a str,
    pub order_id: &'a str,
    pub order_line_id: &'a str,
    pub product_id: Option<&'a str>,
    pub sku_code: Option<&'a str>,
}

/// Why provisioning did not complete.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProvisionError {
    /// A business refusal with its creation code (`000100`–`000107`); the reason is shown to the
    /// marketplace. The next delivery tries again with the same instanceId (D7).
    #[error("refused ({code:?}): {reason}")]
    Refused { code: ResultCode, reason: String },
    /// Something that may work next time (a timeout, a downstream outage): `000005`.
    #[error("transient failure: {0}")]
    Transient(String),
}

impl ProvisionError {
    /// The answer for the marketplace: a refusal's own code and reason, or `000005` with
    /// "`what` failed, please retry" (the transient cause is logged, not shown).
    pub fn answer(&self, what: &str) -> koogate_protocol::envelope::Answer {
        use koogate_protocol::envelope::Answer;
        match self {
            ProvisionError::Refused { code, reason } => Answer::error(*code, reason.clone()),
            ProvisionError::Transient(_) => Answer::error(
                ResultCode::InternalError,
                format!("{what} failed, please retry"),
            ),
        }
    }
}

/// The ISV's side of an instance's life.
#[async_trait]
pub trait Provisioner: Send + Sync + 'static {
    /// Creates the product's resources and says how the buyer reaches them.
    async fn provision(&self, req: &ProvisionRequest<'_>) -> Result<AppInfo, ProvisionError>;

    /// changeInstanceCheck (D12): `Ok` allows the change, `Err(reason)` refuses it.
    async fn check_change(&self, instance: &Instance, target: &TargetProduct)
        -> Result<(), String>;

    /// The `appInfo` shown for debug-console instances (D6): no account is created, so no
    /// password; deterministic, so that replayed console cases see identical answers.
    fn demo_app_info(&self, instance_id: &str) -> AppInfo;
}

/// The default provisioner: URLs from templates, a generated administrator account.
#[derive(Debug, Clone)]
pub struct TemplateProvisioner {
    front_end_url_template: String,
    admin_url_template: String,
}

impl TemplateProvisioner {
    /// `{instanceId}` in a template is replaced by the instance ID.
    pub fn new(
        front_end_url_template: impl Into<String>,
        admin_url_template: impl Into<String>,
    ) -> Self {
        TemplateProvisioner {
            front_end_url_template: front_end_url_template.into(),
            admin_url_template: admin_url_template.into(),
        }
    }

    fn urls(&self, instance_id: &str) -> (String, String) {
        (
            self.front_end_url_template
                .replace("{instanceId}", instance_id),
            self.admin_url_template.replace("{instanceId}", instance_id),
        )
    }
}

fn pick(rng: &mut impl Rng, set: &[u8]) -> char {
    set.get(rng.gen_range(0..set.len().max(1)))
        .copied()
        .unwrap_or(b'x') as char
}

/// A 16-character password with upper, lower, digit and symbol, seeded from the OS random source.
pub fn generate_password() -> String {
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"#@%+=";
    // One draw from the OS seeds a generator for the 20 picks below (a system call per pick
    // was half the CPU of a first-time newInstance).
    let mut rng = rand::rngs::StdRng::from_rng(rand::rngs::OsRng)
        .unwrap_or_else(|_| rand::rngs::StdRng::from_entropy());
    let mut chars: Vec<char> = Vec::with_capacity(16);
    for set in [UPPER, LOWER, DIGIT, SYMBOL] {
        chars.push(pick(&mut rng, set));
    }
    let all: Vec<u8> = [UPPER, LOWER, DIGIT].concat();
    while chars.len() < 16 {
        chars.push(pick(&mut rng, &all));
    }
    // Move the fixed-class characters away from the front.
    for i in (1..chars.len()).rev() {
        chars.swap(i, rng.gen_range(0..=i));
    }
    chars.into_iter().collect()
}

#[async_trait]
impl Provisioner for TemplateProvisioner {
    async fn provision(&self, req: &ProvisionRequest<'_>) -> Result<AppInfo, ProvisionError> {
        let (front_end_url, admin_url) = self.urls(req.instance_id);
        Ok(AppInfo {
            front_end_url,
            admin_url: Some(admin_url),
            user_name: Some("admin".to_string()),
            password: Some(generate_password()),
            memo: Some("Please change the administrator password after the first sign-in.".into()),
        })
    }

    async fn check_change(
        &self,
        _instance: &Instance,
        _target: &TargetProduct,
    ) -> Result<(), String> {
        // The template provisioner has no usage to compare against: every change is possible.
        Ok(())
    }

    fn demo_app_info(&self, instance_id: &str) -> AppInfo {
        let (front_end_url, admin_url) = self.urls(instance_id);
        AppInfo {
            front_end_url,
            admin_url: Some(admin_url),
            user_name: Some("demo-admin".into()),
            password: None,
            memo: Some("Debug instance: no account was created.".into()),
        }
    }
}

/// What an old-License (V1 `getLicense`) purchase asks for.
#[derive(Debug, Clone)]
pub struct LicenseIssueRequest<'a> {
    pub instance_id: &'a str,
    pub order_id: &'a str,
    pub product_id: &'a str,
    pub sku_code: Option<&'a str>,
}

/// The license-issuer hook of the old License interface, where the merchant issues the license
/// string. Called once per order: the answer is stored and replayed for every repeat.
#[async_trait]
pub trait LicenseIssuer: Send + Sync + 'static {
    async fn issue(&self, req: &LicenseIssueRequest<'_>) -> Result<String, ProvisionError>;

    /// Whether `issue` answers within the callback budget. An online-License application
    /// (getLicenseAsync) is then answered `000000` with the license; otherwise it is recorded
    /// and answered `000004` for later delivery.
    fn is_synchronous(&self) -> bool {
        true
    }
}

/// The default issuer: an opaque random code, `LIC-` and 32 upper-case hex digits.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomLicenseIssuer;

#[async_trait]
impl LicenseIssuer for RandomLicenseIssuer {
    async fn issue(&self, _req: &LicenseIssueRequest<'_>) -> Result<String, ProvisionError> {
        let bytes: [u8; 16] = rand::rngs::OsRng.gen();
        let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
        Ok(format!("LIC-{hex}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn random_licenses_are_opaque_and_distinct() {
        let req = LicenseIssueRequest {
            instance_id: "i",
            order_id: "o",
            product_id: "p",
            sku_code: None,
        };
        let a = RandomLicenseIssuer.issue(&req).await.unwrap();
        let b = RandomLicenseIssuer.issue(&req).await.unwrap();
        assert!(a.starts_with("LIC-") && a.len() == 36, "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn passwords_have_every_class_and_differ() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
        assert!(a.chars().any(|c| c.is_ascii_uppercase()));
        assert!(a.chars().any(|c| c.is_ascii_lowercase()));
        assert!(a.chars().any(|c| c.is_ascii_digit()));
        assert!(a.chars().any(|c| "#@%+=".contains(c)));
    }

    #[tokio::test]
    async fn templates_fill_the_instance_id() {
        let p = TemplateProvisioner::new("https://x/{instanceId}", "https://x/{instanceId}/admin");
        let req = ProvisionRequest {
            instance_id: "i-1",
            order_id: "o",
            order_line_id: "l",
            product_id: None,
            sku_code: None,
        };
        let info = p.provision(&req).await.unwrap();
        assert_eq!(info.front_end_url, "https://x/i-1");
        assert_eq!(info.admin_url.as_deref(), Some("https://x/i-1/admin"));
        assert_eq!(
            p.demo_app_info("i-1"),
            p.demo_app_info("i-1"),
            "demo info is repeatable"
        );
    }
}
