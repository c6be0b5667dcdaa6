//! Everything a function needs, built once per process (cold start) and shared by every request.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use koogate_protocol::client_secret::{ClientSecretError, MerchantKey};

use koogate_store::Store;

use tokio::sync::Notify;

use crate::config::{Config, LicenseIssuerKind, ProvisionerKind, StoreConfig};
use crate::isv::client::ProductClient;
use crate::isv::dispatch::{Dispatcher, EventSink, WebhookSink};
use crate::isv::eventbridge::EventBridgeSink;
use crate::isv::provision::{WebhookLicenseIssuer, WebhookProvisioner};
use crate::provisioner::{LicenseIssuer, Provisioner, RandomLicenseIssuer, TemplateProvisioner};
use crate::routes::InterfaceType;
use crate::secrets::{self, Secrets};

/// The shared state of a process.
pub struct App {
    pub config: Config,
    /// The secrets document and what is derived from it, replaced as a whole when the document
    /// changes (see [`App::reload_secrets`]): rotating a key needs no restart.
    loaded: RwLock<Arc<Loaded>>,
    pub store: Arc<dyn Store>,
    pub provisioner: Arc<dyn Provisioner>,
    pub license_issuer: Arc<dyn LicenseIssuer>,
    /// Delivers recorded events to the configured sinks (none: events are recorded only).
    pub dispatcher: Arc<Dispatcher>,
    /// Signs requests to the ISV's product; `None` without a webhook secret.
    pub product: Option<ProductClient>,
    /// Woken by every commit that recorded events, so `koogate serve` delivers at once.
    events_recorded: Arc<Notify>,
    /// The interface types whose keys a reloaded document must still have.
    serves: Vec<InterfaceType>,
    /// When the secrets were last loaded or checked (epoch ms), for [`App::refresh_secrets`].
    secrets_checked_ms: AtomicI64,
}

/// One generation of the secrets document and the clients built from it.
struct Loaded {
    secrets: Arc<Secrets>,
    /// The file's modification time when it was read (file sources only).
    modified: Option<std::time::SystemTime>,
    /// The merchant's RSA key (D15), parsed at start-up when configured (a broken key stops it)
    /// and otherwise on first use.
    merchant_key: OnceLock<Result<Arc<MerchantKey>, ClientSecretError>>,
    /// The marketplace client, built on first use: most callbacks never call the marketplace,
    /// and the cold start should not pay for its TLS setup.
    marketplace: OnceLock<Option<crate::marketplace::Marketplace>>,
}

impl Loaded {
    fn new(secrets: Secrets, modified: Option<std::time::SystemTime>) -> Loaded {
        Loaded {
            secrets: Arc::new(secrets),
            modified,
            merchant_key: OnceLock::new(),
            marketplace: OnceLock::new(),
        }
    }

    /// Parses the RSA key now, failing when one is configured and does not parse.
    fn check_merchant_key(&self) -> Result<(), StartError> {
        if let Some(pem) = &self.secrets.rsa_private_key_pem {
            let key = MerchantKey::from_pem(pem).map_err(|e| {
                StartError::Unusable(format!(
                    "rsa_private_key_pem in the secrets document cannot be used: {e}"
                ))
            })?;
            let _ = self.merchant_key.set(Ok(Arc::new(key)));
        }
        Ok(())
    }
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
    /// A setting or secret cannot be used (a webhook without a webhook secret, an RSA key that
    /// does not parse); the message names it.
    #[error("{0}")]
    Unusable(String),
}

/// Builds an [`App`]: the one way every Lambda main, `koogate serve` and the CLI put a process
/// together. Everything not given is built from the configuration: the secrets and the store
/// from their sources, the provisioner and license issuer from `KOOGATE_PROVISIONER` and
/// `KOOGATE_LICENSE_ISSUER`, the event sinks from `KOOGATE_WEBHOOK_URL` and `KOOGATE_EVENT_BUS`.
/// A Rust ISV passes its own parts instead:
///
/// ```no_run
/// # async fn example(my_provisioner: std::sync::Arc<dyn koogate_runtime::provisioner::Provisioner>)
/// # -> Result<(), koogate_runtime::app::StartError> {
/// use koogate_runtime::{config::Config, routes::InterfaceType, App};
/// let app = App::builder(Config::from_env("dynamodb")?)
///     .serves(&[InterfaceType::Basic])
///     .provisioner(my_provisioner)
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
pub struct AppBuilder {
    config: Config,
    serves: Vec<InterfaceType>,
    secrets: Option<Secrets>,
    store: Option<Arc<dyn Store>>,
    provisioner: Option<Arc<dyn Provisioner>>,
    license_issuer: Option<Arc<dyn LicenseIssuer>>,
    sinks: Option<Vec<Arc<dyn EventSink>>>,
}

impl AppBuilder {
    /// The interface types whose keys must be in the secrets document (checked at start-up).
    pub fn serves(mut self, interfaces: &[InterfaceType]) -> Self {
        self.serves = interfaces.to_vec();
        self
    }

    pub fn secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = Some(secrets);
        self
    }

    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    pub fn provisioner(mut self, provisioner: Arc<dyn Provisioner>) -> Self {
        self.provisioner = Some(provisioner);
        self
    }

    pub fn license_issuer(mut self, issuer: Arc<dyn LicenseIssuer>) -> Self {
        self.license_issuer = Some(issuer);
        self
    }

    /// Replaces the configured event sinks (call [`AppBuilder::sink`] to add to them instead).
    pub fn sinks(mut self, sinks: Vec<Arc<dyn EventSink>>) -> Self {
        self.sinks = Some(sinks);
        self
    }

    /// Adds a sink to the configured ones.
    pub fn sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.get_or_insert_with(Vec::new).push(sink);
        self
    }

    /// Loads what was not given and puts the process together.
    pub async fn build(self) -> Result<Arc<App>, StartError> {
        let secrets = match self.secrets {
            Some(s) => s,
            None => secrets::load(&self.config.secrets).await?,
        };
        secrets.require(&self.serves)?;
        let store = match self.store {
            Some(s) => s,
            None => open_store(&self.config.store).await?,
        };
        let mut sinks = self.sinks;
        if let Some(bus) = self.config.isv.event_bus.clone() {
            let conf = crate::aws::sdk_config().await;
            let bridge: Arc<dyn EventSink> = Arc::new(EventBridgeSink::new(&conf, bus));
            sinks.get_or_insert_with(Vec::new).push(bridge);
        }
        let app = App::put_together(
            self.config,
            self.serves,
            secrets,
            store,
            self.provisioner,
            self.license_issuer,
            sinks,
        )?;
        // A configured key that does not parse is found now, not on the first applicationSync.
        app.current().check_merchant_key()?;
        Ok(app)
    }
}

impl App {
    /// Starts building an app from `config` (see [`AppBuilder`]).
    pub fn builder(config: Config) -> AppBuilder {
        AppBuilder {
            config,
            serves: Vec::new(),
            secrets: None,
            store: None,
            provisioner: None,
            license_issuer: None,
            sinks: None,
        }
    }

    /// Loads secrets, opens the store, and checks that every interface type in `serves` has a
    /// key, so that a misconfiguration fails at start-up rather than on the marketplace's call.
    pub async fn build(config: Config, serves: &[InterfaceType]) -> Result<Arc<App>, StartError> {
        App::builder(config).serves(serves).build().await
    }

    /// Puts the parts together with the configured provisioner and sinks (tests pass their own
    /// store). Panics only if the ISV settings cannot work, which tests do not configure.
    pub fn assemble(config: Config, secrets: Secrets, store: Arc<dyn Store>) -> Arc<App> {
        match App::put_together(config, Vec::new(), secrets, store, None, None, None) {
            Ok(app) => app,
            Err(e) => panic!("App::assemble: {e}"),
        }
    }

    fn put_together(
        config: Config,
        serves: Vec<InterfaceType>,
        secrets: Secrets,
        store: Arc<dyn Store>,
        provisioner: Option<Arc<dyn Provisioner>>,
        license_issuer: Option<Arc<dyn LicenseIssuer>>,
        sinks: Option<Vec<Arc<dyn EventSink>>>,
    ) -> Result<Arc<App>, StartError> {
        let isv = &config.isv;
        let webhook_secrets = secrets.webhook_secrets()?;
        let product = if webhook_secrets.is_empty() {
            None
        } else {
            Some(ProductClient::new(webhook_secrets).map_err(StartError::Unusable)?)
        };
        let need_product = |what: &str| {
            product.clone().ok_or_else(|| {
                StartError::Unusable(format!(
                    "{what} needs a webhook secret: add \"webhook_secrets\": [\"whsec_…\"] to the \
                     secrets document (koogate init-secrets writes one)"
                ))
            })
        };
        let template = TemplateProvisioner::new(
            config.front_end_url_template.clone(),
            config.admin_url_template.clone(),
        );
        let provisioner: Arc<dyn Provisioner> = match (provisioner, isv.provisioner) {
            (Some(p), _) => p,
            (None, ProvisionerKind::Template) => Arc::new(template),
            (None, ProvisionerKind::Webhook) => Arc::new(WebhookProvisioner::new(
                need_product("KOOGATE_PROVISIONER=webhook")?,
                isv.provision_url.clone().unwrap_or_default(),
                template,
            )),
        };
        let license_issuer: Arc<dyn LicenseIssuer> = match (license_issuer, isv.license_issuer) {
            (Some(l), _) => l,
            (None, LicenseIssuerKind::Random) => Arc::new(RandomLicenseIssuer),
            (None, LicenseIssuerKind::Webhook) => Arc::new(WebhookLicenseIssuer::new(
                need_product("KOOGATE_LICENSE_ISSUER=webhook")?,
                isv.provision_url.clone().unwrap_or_default(),
            )),
        };
        let mut sinks = sinks.unwrap_or_default();
        if let Some(url) = &isv.webhook_url {
            let client = need_product("KOOGATE_WEBHOOK_URL")?;
            sinks.insert(0, Arc::new(WebhookSink::new(client, url.clone())));
        }
        let events_recorded = Arc::new(Notify::new());
        let dispatcher = Arc::new(Dispatcher::new(
            Arc::clone(&store),
            sinks,
            isv,
            config.emit_metrics,
            Arc::clone(&events_recorded),
        ));
        let modified = secrets_modified(&config.secrets);
        Ok(Arc::new(App {
            config,
            loaded: RwLock::new(Arc::new(Loaded::new(secrets, modified))),
            serves,
            secrets_checked_ms: AtomicI64::new(crate::pipeline::now_ms()),
            store,
            provisioner,
            license_issuer,
            dispatcher,
            product,
            events_recorded,
        }))
    }

    /// Tells the dispatcher that a commit recorded events (a no-op without `koogate serve`'s
    /// background dispatcher).
    pub fn events_recorded(&self) {
        self.events_recorded.notify_one();
    }

    /// [`Store::put_instance`] with its events, waking the dispatcher when they were recorded.
    pub async fn put_instance(
        &self,
        instance: &koogate_store::Instance,
        expected_version: Option<u64>,
        events: &[koogate_store::EventDraft],
    ) -> Result<koogate_store::VersionedWrite, koogate_store::StoreError> {
        let written = self
            .store
            .put_instance(instance, expected_version, events)
            .await;
        self.woken_if(&written, events);
        written
    }

    /// [`Store::put_record`] with its events, waking the dispatcher when they were recorded.
    pub async fn put_record(
        &self,
        key: &str,
        record: &koogate_store::Record,
        expected_version: Option<u64>,
        events: &[koogate_store::EventDraft],
    ) -> Result<koogate_store::VersionedWrite, koogate_store::StoreError> {
        let written = self
            .store
            .put_record(key, record, expected_version, events)
            .await;
        self.woken_if(&written, events);
        written
    }

    fn woken_if(
        &self,
        written: &Result<koogate_store::VersionedWrite, koogate_store::StoreError>,
        events: &[koogate_store::EventDraft],
    ) {
        if !events.is_empty() && matches!(written, Ok(koogate_store::VersionedWrite::Written)) {
            self.events_recorded();
        }
    }

    fn current(&self) -> Arc<Loaded> {
        match self.loaded.read() {
            Ok(l) => Arc::clone(&l),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The secrets document in force now.
    pub fn secrets(&self) -> Arc<Secrets> {
        Arc::clone(&self.current().secrets)
    }

    /// Reads the secrets document again when it may have changed: a file whose modification time
    /// moved (checked at most once a second), or Secrets Manager once `KOOGATE_SECRETS_TTL_SECS`
    /// (default 300) has passed since the last read. A document that does not load or lacks a
    /// key the process serves is logged and the previous one kept. Cheap when nothing is due: one
    /// atomic read.
    pub async fn refresh_secrets(&self) {
        let now = crate::pipeline::now_ms();
        let every_ms = match &self.config.secrets {
            crate::config::SecretsSource::File(_) => 1_000,
            crate::config::SecretsSource::SecretsManager { .. } => {
                i64::try_from(self.config.secrets_ttl.as_millis()).unwrap_or(i64::MAX)
            }
            crate::config::SecretsSource::Inline(_) => return,
        };
        let last = self.secrets_checked_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < every_ms
            || self
                .secrets_checked_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let modified = secrets_modified(&self.config.secrets);
        if modified.is_some() && modified == self.current().modified {
            return;
        }
        if let Err(e) = self.reload_secrets().await {
            tracing::error!(error = %e, "the secrets document could not be reloaded; the previous one stays in force");
        }
    }

    /// Reads the secrets document now and puts it in force (signal handlers, tests).
    pub async fn reload_secrets(&self) -> Result<(), StartError> {
        let modified = secrets_modified(&self.config.secrets);
        let secrets = secrets::load(&self.config.secrets).await?;
        secrets.require(&self.serves)?;
        let loaded = Loaded::new(secrets, modified);
        loaded.check_merchant_key()?;
        match self.loaded.write() {
            Ok(mut l) => *l = Arc::new(loaded),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(loaded),
        }
        tracing::info!("secrets document reloaded");
        Ok(())
    }

    /// Whether the operator configured the marketplace (an IAM AK/SK in the secrets, or
    /// `KOOGATE_MARKETPLACE_SITE` / `KOOGATE_MARKETPLACE_URL`): background calls (the usage
    /// push of `koogate serve`) are made only then.
    pub fn marketplace_configured(&self) -> bool {
        self.secrets().iam.is_some() || self.config.marketplace.explicit
    }

    /// The marketplace client (outbound calls, cheap to clone); `None` only if TLS could not be
    /// set up, which is logged.
    pub fn marketplace(&self) -> Option<crate::marketplace::Marketplace> {
        let loaded = self.current();
        loaded
            .marketplace
            .get_or_init(|| {
                crate::marketplace::Marketplace::new(
                    self.config.marketplace.clone(),
                    loaded.secrets.iam.clone(),
                )
                .map_err(|e| tracing::error!(error = %e, "marketplace client unavailable"))
                .ok()
            })
            .clone()
    }

    /// The merchant's RSA private key from the secrets document (`rsa_private_key_pem`), which
    /// decrypts the `clientSecret` of applicationSync (D15).
    pub fn merchant_key(&self) -> Result<Arc<MerchantKey>, ClientSecretError> {
        let loaded = self.current();
        loaded
            .merchant_key
            .get_or_init(|| match &loaded.secrets.rsa_private_key_pem {
                Some(pem) => MerchantKey::from_pem(pem).map(Arc::new),
                None => Err(ClientSecretError::NoPrivateKey),
            })
            .clone()
    }
}

/// The modification time of a secrets file (`None` for Secrets Manager or an unreadable file).
fn secrets_modified(source: &crate::config::SecretsSource) -> Option<std::time::SystemTime> {
    match source {
        crate::config::SecretsSource::File(path) => {
            std::fs::metadata(path).and_then(|m| m.modified()).ok()
        }
        crate::config::SecretsSource::SecretsManager { .. }
        | crate::config::SecretsSource::Inline(_) => None,
    }
}

/// Opens the configured store. A backend this build was compiled without (cargo features
/// `sqlite`, `dynamodb`) is refused with a message naming the feature.
pub async fn open_store(cfg: &StoreConfig) -> Result<Arc<dyn Store>, koogate_store::StoreError> {
    match cfg {
        #[cfg(feature = "sqlite")]
        StoreConfig::Sqlite { path } => {
            Ok(Arc::new(koogate_store::sqlite::SqliteStore::open(path)?))
        }
        #[cfg(feature = "dynamodb")]
        StoreConfig::DynamoDb { table } => {
            let conf = crate::aws::sdk_config().await;
            Ok(Arc::new(koogate_store::dynamodb::DynamoStore::new(
                &aws_sdk_dynamodb::Client::new(&conf),
                table.clone(),
            )))
        }
        #[allow(unreachable_patterns)]
        other => Err(koogate_store::StoreError::Unavailable(format!(
            "this binary was built without the {} backend (cargo feature `{}` of koogate-runtime)",
            other.backend(),
            other.backend()
        ))),
    }
}
