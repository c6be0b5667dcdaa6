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

use crate::flag_value;

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn required<'a>(args: &'a [String], name: &str) -> Result<&'a str, String> {
    flag_value(args, name).ok_or_else(|| format!("{name} is required"))
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
pub fn usage(args: &[String]) -> Result<(), String> {
    let (sub, rest) = args
        .split_first()
        .ok_or("usage: koogate usage record|resend|push …")?;
    runtime()?.block_on(async {
        match sub.as_str() {
            "record" => {
                let app = app(&[]).await?;
                let input = UsageInput {
                    instance_id: required(rest, "--instance")?.into(),
                    begin_time: required(rest, "--begin")?.into(),
                    end_time: required(rest, "--end")?.into(),
                    usage_value: required(rest, "--value")?.into(),
                    product_id: flag_value(rest, "--product").map(str::to_string),
                    relate_pkg_instance: flag_value(rest, "--package").map(str::to_string),
                };
                let out = usage::record(&app, &input).await;
                println!("{}", usage::answer(&out));
                out.map(|_| ()).map_err(|e| e.to_string())
            }
            "resend" => {
                let app = app(&[]).await?;
                let key = koogate_store::UsageKey {
                    instance_id: required(rest, "--instance")?.into(),
                    begin_time: required(rest, "--begin")?.into(),
                    end_time: required(rest, "--end")?.into(),
                };
                let out =
                    usage::resend(&*app.store, &key, koogate_runtime::pipeline::now_ms()).await;
                println!("{}", usage::answer(&out));
                out.map(|_| ()).map_err(|e| e.to_string())
            }
            "push" => {
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
            other => Err(format!(
                "unknown usage command {other:?}: record, resend or push"
            )),
        }
    })
}

/// `koogate license activate|query`.
pub fn license(args: &[String]) -> Result<(), String> {
    let (sub, rest) = args
        .split_first()
        .ok_or("usage: koogate license activate|query --license CODE …")?;
    runtime()?.block_on(async {
        let app = app(&[]).await?;
        let m = client(&app)?;
        let code = required(rest, "--license")?;
        match sub.as_str() {
            "activate" => {
                let a = m
                    .activate_license(code, flag_value(rest, "--effective-time"), retry(&m))
                    .await
                    .map_err(|e| e.to_string())?;
                println!(
                    "{}",
                    json!({"activated": true, "already_active": a.already_active, "data": a.data})
                );
                Ok(())
            }
            "query" => {
                let data = m
                    .query_license(
                        code,
                        flag_value(rest, "--account"),
                        flag_value(rest, "--ip"),
                        retry(&m),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                println!("{data}");
                Ok(())
            }
            other => Err(format!(
                "unknown license command {other:?}: activate or query"
            )),
        }
    })
}

/// `koogate upload --event ID (--text S | --file PATH)`.
pub fn upload(args: &[String]) -> Result<(), String> {
    runtime()?.block_on(async {
        let app = app(&[]).await?;
        let m = client(&app)?;
        let event = required(args, "--event")?;
        let file;
        let upload = match (flag_value(args, "--text"), flag_value(args, "--file")) {
            (Some(t), None) => Upload::Characters(t),
            (None, Some(path)) => {
                file = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
                let name = std::path::Path::new(path)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("file");
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
