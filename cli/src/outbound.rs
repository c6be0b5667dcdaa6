//! Commands that call the marketplace or report usage, for people and for the ISV's client
//! software:
//!
//! * `koogate usage record --instance ID --begin T --end T --value V [--product P] [--package I]`
//!   records usage in the configured store (the `koogate serve` database by default); on an
//!   interval whose record the marketplace refused (failed), it records the corrected value as
//!   a new revision with a new `metering_sn` (docs/usage.md); exits non-zero when rejected;
//! * `koogate usage resend --instance ID --begin T --end T` re-queues a failed record unchanged
//!   (new revision, new `metering_sn`);
//! * `koogate usage push` pushes everything due now, once, prints the run (counts, failures by
//!   code, what is still pending and why) and, with `KOOGATE_METRICS=emf`, its EMF metric line;
//!   exits non-zero when records failed, a configuration error stopped it, or the store failed;
//! * `koogate license activate --license CODE [--effective-time yyyyMMddHHmmss]` and
//!   `koogate license query --license CODE [--account A] [--ip IP]` (License 2.0, v1 APIs);
//! * `koogate upload --event ID (--text S | --file PATH)` delivers a string or a file.
//!
//! Each prints one JSON line with the outcome and exits non-zero on failure.

use koogate_protocol::open_api::Upload;
use koogate_runtime::config::Config;
use koogate_runtime::marketplace::{Marketplace, Retry};
use koogate_runtime::routes::InterfaceType;
use koogate_runtime::usage::{self, UsageInput};
use koogate_runtime::App;
use serde_json::json;

use clap::{ArgGroup, Args, Subcommand};

pub const USAGE_EXAMPLES: &str = "Examples:
  koogate usage record --instance 10e758d0-31ad-4c4b-8f1b-81d03469a10e --begin 20250101T000000Z --end 20250101T010000Z --value 12.5
  koogate usage resend --instance 10e758d0-31ad-4c4b-8f1b-81d03469a10e --begin 20250101T000000Z --end 20250101T010000Z
  koogate usage push

Environment: KOOGATE_STORE (default sqlite:.koogate/koogate.db, the database of koogate serve),
KOOGATE_SECRETS_FILE (the iam AK/SK for push), KOOGATE_MARKETPLACE_SITE, KOOGATE_MARKETPLACE_URL,
KOOGATE_USAGE_ENDPOINT, KOOGATE_METRICS (see README.md, 'Configuration').";

pub const LICENSE_EXAMPLES: &str = "Examples:
  koogate license activate --license LIC-0123456789
  koogate license activate --license LIC-0123456789 --effective-time 20250101120000
  koogate license query --license LIC-0123456789 --account alice --ip 192.0.2.10

Environment: KOOGATE_SECRETS_FILE (the iam AK/SK), KOOGATE_MARKETPLACE_SITE, KOOGATE_MARKETPLACE_URL
(see README.md, 'Configuration').";

pub const UPLOAD_EXAMPLES: &str = "Examples:
  koogate upload --event 8e5694c8 --text 'activation code: 1234-5678'
  koogate upload --event 8e5694c8 --file license.lic";

pub const UPLOAD_LONG: &str = "Examples:
  koogate upload --event 8e5694c8 --text 'activation code: 1234-5678'
  koogate upload --event 8e5694c8 --file license.lic

Environment: KOOGATE_SECRETS_FILE (the iam AK/SK), KOOGATE_MARKETPLACE_SITE, KOOGATE_MARKETPLACE_URL
(see README.md, 'Configuration').";

/// One usage interval of an instance.
#[derive(Args, Debug)]
pub struct Interval {
    /// The instance the usage belongs to
    #[arg(long = "instance", value_name = "ID")]
    pub instance: String,
    /// Start of the interval (UTC)
    #[arg(long, value_name = "yyyyMMddTHHmmssZ")]
    pub begin: String,
    /// End of the interval (UTC)
    #[arg(long, value_name = "yyyyMMddTHHmmssZ")]
    pub end: String,
}

#[derive(Subcommand, Debug)]
pub enum UsageCommand {
    /// Record usage of an interval (a refused interval: record the corrected value)
    #[command(after_help = "Examples:
  koogate usage record --instance 10e758d0-31ad-4c4b-8f1b-81d03469a10e --begin 20250101T000000Z --end 20250101T010000Z --value 12.5
  koogate usage record --instance ID --begin 20250101T000000Z --end 20250101T010000Z --value 3 --product OFFI461867333479178240 --package PKG-1

Prints one JSON line; exits non-zero when the record is rejected.
Environment: KOOGATE_STORE (default sqlite:.koogate/koogate.db), KOOGATE_SECRETS_FILE.")]
    Record {
        #[command(flatten)]
        interval: Interval,
        /// The usage value
        #[arg(long, value_name = "V")]
        value: String,
        /// The product id (optional)
        #[arg(long, value_name = "P")]
        product: Option<String>,
        /// The related package instance (optional)
        #[arg(long, value_name = "I")]
        package: Option<String>,
    },
    /// Re-queue a failed usage record unchanged (new revision, new metering_sn)
    #[command(after_help = "Examples:
  koogate usage resend --instance 10e758d0-31ad-4c4b-8f1b-81d03469a10e --begin 20250101T000000Z --end 20250101T010000Z

Environment: KOOGATE_STORE (default sqlite:.koogate/koogate.db), KOOGATE_SECRETS_FILE.")]
    Resend {
        #[command(flatten)]
        interval: Interval,
    },
    /// Push every usage record due now, once, and print the run
    #[command(after_help = "Examples:
  koogate usage push
  KOOGATE_METRICS=emf koogate usage push

Exits non-zero when records failed, a configuration error stopped it, or the store failed.
Environment: KOOGATE_STORE, KOOGATE_SECRETS_FILE (iam), KOOGATE_MARKETPLACE_URL, KOOGATE_USAGE_ENDPOINT.")]
    Push,
}

#[derive(Subcommand, Debug)]
pub enum LicenseCommand {
    /// Activate a License 2.0 code (92020003, already active, counts as success)
    #[command(after_help = "Examples:
  koogate license activate --license LIC-0123456789
  koogate license activate --license LIC-0123456789 --effective-time 20250101120000")]
    Activate {
        /// The license code
        #[arg(long, value_name = "CODE")]
        license: String,
        /// When the license takes effect
        #[arg(long, value_name = "yyyyMMddHHmmss")]
        effective_time: Option<String>,
    },
    /// Query a License 2.0 code
    #[command(after_help = "Examples:
  koogate license query --license LIC-0123456789
  koogate license query --license LIC-0123456789 --account alice --ip 192.0.2.10")]
    Query {
        /// The license code
        #[arg(long, value_name = "CODE")]
        license: String,
        /// The account using the license
        #[arg(long, value_name = "A")]
        account: Option<String>,
        /// The IP address using the license
        #[arg(long, value_name = "IP")]
        ip: Option<String>,
    },
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("content").required(true).args(["text", "file"])))]
pub struct UploadArgs {
    /// The event the upload answers
    #[arg(long, value_name = "ID")]
    pub event: String,
    /// Deliver this string
    #[arg(long, value_name = "S")]
    pub text: Option<String>,
    /// Deliver this file
    #[arg(long, value_name = "PATH")]
    pub file: Option<std::path::PathBuf>,
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

async fn app(serves: &[InterfaceType]) -> Result<std::sync::Arc<App>, String> {
    let config = Config::from_env("sqlite:.koogate/koogate.db").map_err(|e| e.to_string())?;
    App::build(config, serves).await.map_err(|e| e.to_string())
}

fn client(app: &App) -> Result<Marketplace, String> {
    app.marketplace()
        .ok_or_else(|| "the marketplace client could not be built".to_string())
}

fn retry(m: &Marketplace) -> Retry {
    Retry::background(m.settings().background_attempt_timeout)
}

/// `koogate usage record|resend|push`.
pub fn usage(command: &UsageCommand) -> Result<(), String> {
    runtime()?.block_on(async {
        match command {
            UsageCommand::Record {
                interval,
                value,
                product,
                package,
            } => {
                let app = app(&[]).await?;
                let input = UsageInput {
                    instance_id: interval.instance.clone(),
                    begin_time: interval.begin.clone(),
                    end_time: interval.end.clone(),
                    usage_value: value.clone(),
                    product_id: product.clone(),
                    relate_pkg_instance: package.clone(),
                };
                let out = usage::record(&app, &input).await;
                println!("{}", usage::answer(&out));
                out.map(|_| ()).map_err(|e| e.to_string())
            }
            UsageCommand::Resend { interval } => {
                let app = app(&[]).await?;
                let key = koogate_store::UsageKey {
                    instance_id: interval.instance.clone(),
                    begin_time: interval.begin.clone(),
                    end_time: interval.end.clone(),
                };
                let out =
                    usage::resend(&*app.store, &key, koogate_runtime::pipeline::now_ms()).await;
                println!("{}", usage::answer(&out));
                out.map(|_| ()).map_err(|e| e.to_string())
            }
            UsageCommand::Push => {
                let app = app(&[]).await?;
                let pusher = koogate_usage_push::Pusher::from_app(
                    &app,
                    koogate_usage_push::PushOptions::default(),
                )?;
                let r = pusher.run().await;
                println!("{}", r.to_json());
                if r.is_error() {
                    let why = r
                        .config_error
                        .clone()
                        .or_else(|| r.store_error.clone())
                        .map_or_else(
                            || format!("{} usage records failed: {:?}", r.failed, r.failures),
                            |e| format!("usage push stopped: {e}"),
                        );
                    return Err(why);
                }
                Ok(())
            }
        }
    })
}

/// `koogate license activate|query`.
pub fn license(command: &LicenseCommand) -> Result<(), String> {
    runtime()?.block_on(async {
        let app = app(&[]).await?;
        let m = client(&app)?;
        match command {
            LicenseCommand::Activate {
                license,
                effective_time,
            } => {
                let a = m
                    .activate_license(license, effective_time.as_deref(), retry(&m))
                    .await
                    .map_err(|e| e.to_string())?;
                println!(
                    "{}",
                    json!({"activated": true, "already_active": a.already_active, "data": a.data})
                );
                Ok(())
            }
            LicenseCommand::Query {
                license,
                account,
                ip,
            } => {
                let data = m
                    .query_license(license, account.as_deref(), ip.as_deref(), retry(&m))
                    .await
                    .map_err(|e| e.to_string())?;
                println!("{data}");
                Ok(())
            }
        }
    })
}

/// `koogate upload --event ID (--text S | --file PATH)`.
pub fn upload(args: &UploadArgs) -> Result<(), String> {
    runtime()?.block_on(async {
        let app = app(&[]).await?;
        let m = client(&app)?;
        let event = args.event.as_str();
        let file;
        let upload = match (&args.text, &args.file) {
            (Some(t), None) => Upload::Characters(t),
            (None, Some(path)) => {
                file = std::fs::read(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
                Upload::File { name, bytes: &file }
            }
            _ => return Err("give exactly one of --text or --file".into()),
        };
        m.upload(event, upload, retry(&m))
            .await
            .map_err(|e| e.to_string())?;
        println!("{}", json!({"uploaded": true, "event_id": event}));
        Ok(())
    })
}
