//! `koogate sim`: the seller console's debugger, run locally against any endpoint in seconds.
//!
//! It builds the requests the console builds (docs/protocol.md, console §2, §6): signed with the keys of a
//! secrets document, `testFlag` 1 unless `--production`; checks every answer as the console
//! does ([`console`]); probes idempotency, nonce replay and bad signatures; prints a table, writes
//! JSON and JUnit reports on request, and exits non-zero on any failure.

mod console;
mod suites;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use koogate_runtime::routes::InterfaceType;
use koogate_runtime::secrets::Secrets;
use serde_json::{json, Value};

pub use console::Expect;

/// The suites, in the order they run.
const SUITES: [&str; 5] = ["saas", "kit", "license", "notify", "legacy"];

/// The console's own wait limit, and the marketplace's for production traffic.
const CONSOLE_LIMIT: Duration = Duration::from_secs(20);
const PRODUCTION_LIMIT: Duration = Duration::from_secs(5);

/// One request of a case.
pub enum Request {
    /// POST `path_and_query` with extra headers and a body.
    Post {
        path_and_query: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// GET `path_and_query` (V1).
    Get { path_and_query: String },
}

/// The outcome of one case.
pub struct CaseResult {
    pub suite: &'static str,
    pub name: String,
    /// `None`: passed. `Some`: the console's message.
    pub failure: Option<String>,
    pub result_code: String,
    pub elapsed: Duration,
}

/// Sends cases and records their results.
pub struct Runner {
    base: String,
    secrets: Secrets,
    /// `true`: console debug traffic (testFlag 1).
    pub debug: bool,
    limit: Duration,
    pub results: Vec<CaseResult>,
}

impl Runner {
    /// The current key of an interface type (empty when the document has none: the case then
    /// fails on the endpoint's answer, which names the problem).
    pub fn key(&self, interface: InterfaceType) -> String {
        self.secrets
            .keys(interface)
            .first()
            .cloned()
            .unwrap_or_default()
    }

    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// `testFlag` as the basic interfaces send it.
    pub fn test_flag(&self) -> &'static str {
        if self.debug {
            "1"
        } else {
            "0"
        }
    }

    /// Sends `request`, applies the console's checks with `key`, then the case's own `fields`
    /// checks; records the result and returns the answer's JSON when every check passed.
    pub async fn case(
        &mut self,
        suite: &'static str,
        name: impl Into<String>,
        key: &str,
        request: Request,
        expect: Expect,
        fields: impl FnOnce(&Value) -> Result<(), String>,
    ) -> Option<Value> {
        let started = Instant::now();
        let sent = match request {
            Request::Post {
                path_and_query,
                headers,
                body,
            } => {
                let url = format!("{}{path_and_query}", self.base);
                tokio::time::timeout(
                    self.limit,
                    crate::client::send("POST", &url, &headers, body),
                )
                .await
            }
            Request::Get { path_and_query } => {
                let url = format!("{}{path_and_query}", self.base);
                tokio::time::timeout(
                    self.limit,
                    crate::client::send("GET", &url, &[], Vec::new()),
                )
                .await
            }
        };
        let elapsed = started.elapsed();
        let outcome = match sent {
            Err(_) => Err(format!("调测失败,调用接口超时{}s", self.limit.as_secs())),
            Ok(Err(e)) => Err(format!("调测失败,生产地址不可达 ({e})")),
            Ok(Ok(r)) => console::check(
                &console::Received {
                    status: r.status,
                    headers: &r.headers,
                    body: &r.body,
                    elapsed,
                },
                key,
                self.limit,
                expect,
            ),
        };
        let (result_code, failure, json) = match outcome {
            Ok(json) => {
                let code = json["resultCode"].as_str().unwrap_or("").to_string();
                match fields(&json) {
                    Ok(()) => (code, None, Some(json)),
                    Err(e) => (code, Some(e), None),
                }
            }
            Err(e) => (String::new(), Some(e), None),
        };
        self.results.push(CaseResult {
            suite,
            name: name.into(),
            failure,
            result_code,
            elapsed,
        });
        json
    }

    /// Records a case that could not be built (a missing key, say), as a failure.
    pub fn cannot_run(&mut self, suite: &'static str, name: &str, why: String) {
        self.results.push(CaseResult {
            suite,
            name: name.to_string(),
            failure: Some(why),
            result_code: String::new(),
            elapsed: Duration::ZERO,
        });
    }
}

pub const EXAMPLES: &str = "Examples:
  koogate sim --url http://127.0.0.1:8080/saas --keys .koogate/secrets.json
  koogate sim --url http://127.0.0.1:8080/saas --keys .koogate/secrets.json --suite kit --junit sim.xml
  koogate sim --url https://isv.example.com/saas --keys secrets.json --production --json report.json";

pub const LONG: &str = "Examples:
  koogate sim --url http://127.0.0.1:8080/saas --keys .koogate/secrets.json
  koogate sim --url http://127.0.0.1:8080/saas --keys .koogate/secrets.json --suite kit --junit sim.xml
  koogate sim --url https://isv.example.com/saas --keys secrets.json --production --json report.json

The URL is the production interface URL registered in the console (ending in /saas); each suite
adds its interface's path to its base (/license, /order-notify, /saas/produceAPI/...). The exit
status is non-zero on any failed case.

Environment:
  KOOGATE_SECRETS_FILE   the secrets document, when --keys is not given";

/// The suites `--suite` accepts.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    All,
    Saas,
    Kit,
    License,
    Notify,
    Legacy,
}

/// `koogate sim`.
#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// The production interface URL, e.g. http://127.0.0.1:8080/saas
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// The suite to run
    #[arg(long, value_enum, default_value_t = Suite::All)]
    pub suite: Suite,
    /// The secrets document with the keys of each interface type [default: $KOOGATE_SECRETS_FILE]
    #[arg(long, value_name = "FILE")]
    pub keys: Option<String>,
    /// Send production traffic (testFlag 0, 5 s limit) instead of console debug traffic
    #[arg(long)]
    pub production: bool,
    /// Write a JSON report to FILE
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
    /// Write a JUnit XML report to FILE
    #[arg(long, value_name = "FILE")]
    pub junit: Option<String>,
    /// Time limit per case in milliseconds [default: 20000, 5000 with --production]
    #[arg(long, value_name = "N")]
    pub time_limit_ms: Option<u64>,
}

/// `koogate sim --url URL [--suite all|saas|kit|license|notify|legacy] [--keys FILE]
/// [--production] [--json FILE] [--junit FILE] [--time-limit-ms N]`.
pub fn run(args: &SimArgs) -> Result<(), String> {
    let url = args.url.as_str();
    let base = base_of(url)?;
    let suites: Vec<&'static str> = match args.suite {
        Suite::All => SUITES.to_vec(),
        Suite::Saas => vec!["saas"],
        Suite::Kit => vec!["kit"],
        Suite::License => vec!["license"],
        Suite::Notify => vec!["notify"],
        Suite::Legacy => vec!["legacy"],
    };
    let keys_path = args
        .keys
        .clone()
        .or_else(|| std::env::var("KOOGATE_SECRETS_FILE").ok())
        .ok_or("sim needs --keys FILE (or KOOGATE_SECRETS_FILE): the secrets document")?;
    let text =
        std::fs::read_to_string(&keys_path).map_err(|e| format!("cannot read {keys_path}: {e}"))?;
    let secrets = Secrets::parse(&text).map_err(|e| format!("{keys_path}: {e}"))?;
    let debug = !args.production;
    let limit = match args.time_limit_ms {
        Some(ms) => Duration::from_millis(ms),
        None if debug => CONSOLE_LIMIT,
        None => PRODUCTION_LIMIT,
    };
    let mut runner = Runner {
        base,
        secrets,
        debug,
        limit,
        results: Vec::new(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let started = Instant::now();
    runtime.block_on(async {
        for s in &suites {
            suites::run(&mut runner, s).await;
        }
    });
    let total = started.elapsed();
    print!("{}", table(&runner.results));
    if let Some(path) = &args.json {
        std::fs::write(path, json_report(&runner.results, url, debug).to_string())
            .map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, junit(&runner.results, total))
            .map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    let failed = runner
        .results
        .iter()
        .filter(|r| r.failure.is_some())
        .count();
    println!(
        "{} cases, {} passed, {failed} failed in {:.1} s ({} traffic, limit {} s)",
        runner.results.len(),
        runner.results.len() - failed,
        total.as_secs_f64(),
        if debug {
            "debug (testFlag 1)"
        } else {
            "production"
        },
        limit.as_secs_f64()
    );
    if failed > 0 {
        return Err(format!("{failed} case(s) failed"));
    }
    Ok(())
}

/// The endpoint's base: the URL given, without a trailing `/saas` (the suites add each
/// interface's path, as the console adds it to the registered address).
fn base_of(url: &str) -> Result<String, String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("{url}: give an http:// or https:// URL"));
    }
    let trimmed = url.trim_end_matches('/');
    Ok(trimmed.strip_suffix("/saas").unwrap_or(trimmed).to_string())
}

fn table(results: &[CaseResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<8} {:<58} {:<6} {:>8}  result",
        "suite", "case", "code", "ms"
    );
    for r in results {
        let _ = writeln!(
            s,
            "{:<8} {:<58} {:<6} {:>8.1}  {}",
            r.suite,
            r.name,
            r.result_code,
            r.elapsed.as_secs_f64() * 1000.0,
            r.failure
                .as_deref()
                .map_or("ok".to_string(), |f| format!("FAIL {f}"))
        );
    }
    s
}

fn json_report(results: &[CaseResult], url: &str, debug: bool) -> Value {
    json!({
        "url": url,
        "traffic": if debug { "debug" } else { "production" },
        "passed": results.iter().filter(|r| r.failure.is_none()).count(),
        "failed": results.iter().filter(|r| r.failure.is_some()).count(),
        "cases": results.iter().map(|r| json!({
            "suite": r.suite, "case": r.name, "resultCode": r.result_code,
            "ms": r.elapsed.as_secs_f64() * 1000.0, "ok": r.failure.is_none(),
            "message": r.failure,
        })).collect::<Vec<_>>(),
    })
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn junit(results: &[CaseResult], total: Duration) -> String {
    let failed = results.iter().filter(|r| r.failure.is_some()).count();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuite name=\"koogate sim\" tests=\"{}\" failures=\"{failed}\" time=\"{:.3}\">",
        results.len(),
        total.as_secs_f64()
    );
    for r in results {
        let _ = write!(
            s,
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            r.suite,
            xml_escape(&r.name),
            r.elapsed.as_secs_f64()
        );
        match &r.failure {
            None => s.push_str("/>\n"),
            Some(f) => {
                let _ = writeln!(s, "><failure message=\"{}\"/></testcase>", xml_escape(f));
            }
        }
    }
    s.push_str("</testsuite>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_drops_the_basic_path() {
        assert_eq!(
            base_of("http://127.0.0.1:8080/saas").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(base_of("http://h:1/").unwrap(), "http://h:1");
        assert_eq!(
            base_of("https://isv.example.com/saas").unwrap(),
            "https://isv.example.com"
        );
        assert!(base_of("isv.example.com/saas").is_err());
    }

    #[test]
    fn junit_escapes_and_counts() {
        let r = vec![CaseResult {
            suite: "saas",
            name: "a <b>".into(),
            failure: Some("x & \"y\"".into()),
            result_code: "000001".into(),
            elapsed: Duration::from_millis(3),
        }];
        let x = junit(&r, Duration::from_millis(3));
        assert!(x.contains("failures=\"1\""));
        assert!(x.contains("name=\"a &lt;b&gt;\""));
        assert!(x.contains("message=\"x &amp; &quot;y&quot;\""));
    }
}
