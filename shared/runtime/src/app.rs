//! Everything a function needs, built once per process (cold start) and shared by every request.

use std::sync::{Arc, OnceLock};

use koogate_protocol::client_secret::{ClientSecretError, MerchantKey};

use koogate_store::dynamodb::DynamoStore;
use koogate_store::sqlite::SqliteStore;
use koogate_store::Store;

use crate::config::{Config, StoreConfig};
use crate::provisioner::{LicenseIssuer, Provisioner, RandomLicenseIssuer, TemplateProvisioner};
use crate::routes::InterfaceType;
use crate::secrets::{self, Secrets};

/// The shared state of a process.
pub struct App {
    pub config: Config,
    pub secrets: Secrets,
    pub store: Arc<dyn Store>,
    pub provisioner: Arc<dyn Provisioner>,
    pub license_issuer: Arc<dyn LicenseIssuer>,
    /// The merchant's RSA key (D15), parsed on first use: only the functions that decrypt a
    /// `clientSecret` pay for parsing it.
    merchant_key: OnceLock<Result<MerchantKey, ClientSecretError>>,
    /// The marketplace client, built on first use: most callbacks never call the marketplace,
    /// and the cold start should not pay for its TLS setup.
    marketplace: OnceLock<Option<crate::marketplace::Marketplace>>,
}

/// Why a process could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Secrets(#[from] secrets::SecretsError),
    #[error(transparent)]
    Store(#[from] koogate_store::StoreError),
}

impl App {
    /// Loads secrets, opens the store, and checks that every interface type in `serves` has a
    /// key, so that a misconfiguration fails at start-up rather than on the marketplace's call.
    pub async fn build(config: Config, serves: &[InterfaceType]) -> Result<Arc<App>, StartError> {
        let secrets = secrets::load(&config.secrets).await?;
        secrets.require(serves)?;
        let store = open_store(&config.store).await?;
        Ok(Self::assemble(config, secrets, store))
    }

    /// Puts the parts together with the default provisioner (tests pass their own store).
    pub fn assemble(config: Config, secrets: Secrets, store: Arc<dyn Store>) -> Arc<App> {
        let provisioner = Arc::new(TemplateProvisioner::new(
            config.front_end_url_template.clone(),
            config.admin_url_template.clone(),
        ));
        Arc::new(App {
            config,
            secrets,
            store,
            provisioner,
            license_issuer: Arc::new(RandomLicenseIssuer),
            merchant_key: OnceLock::new(),
            marketplace: OnceLock::new(),
        })
    }

    /// The marketplace client (outbound calls); `None` only if TLS could not be set up, which is
    /// logged once.
    pub fn marketplace(&self) -> Option<&crate::marketplace::Marketplace> {
        self.marketplace
            .get_or_init(|| {
                crate::marketplace::Marketplace::new(
                    self.config.marketplace.clone(),
                    self.secrets.iam.clone(),
                )
                .map_err(|e| tracing::error!(error = %e, "marketplace client unavailable"))
                .ok()
            })
            .as_ref()
    }

    /// The merchant's RSA private key from the secrets document (`rsa_private_key_pem`), which
    /// decrypts the `clientSecret` of applicationSync (D15).
    pub fn merchant_key(&self) -> Result<&MerchantKey, ClientSecretError> {
        self.merchant_key
            .get_or_init(|| match &self.secrets.rsa_private_key_pem {
                Some(pem) => MerchantKey::from_pem(pem),
                None => Err(ClientSecretError::NoPrivateKey),
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Opens the configured store.
pub async fn open_store(cfg: &StoreConfig) -> Result<Arc<dyn Store>, koogate_store::StoreError> {
    Ok(match cfg {
        StoreConfig::Sqlite { path } => Arc::new(SqliteStore::open(path)?),
        StoreConfig::DynamoDb { table } => {
            let conf = crate::aws::sdk_config().await;
            Arc::new(DynamoStore::new(
                &aws_sdk_dynamodb::Client::new(&conf),
                table.clone(),
            ))
        }
    })
}
