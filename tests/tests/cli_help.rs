//! The `koogate` command line: `--help` on every command prints help with examples and does
//! nothing else, `--version`, typos are errors (exit 2), `keygen` refuses before generating,
//! `keygen --public-from`, and `sign --send` against a stopped port and a running `koogate serve`
//! for every interface type.
//!
//! Runs the debug binary: `cargo build -p koogate-cli` first (make test does it). Every child
//! process is killed when its guard drops, also when an assertion fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use koogate_tests::{free_port, in_own_group, koogate_bin, spawn_serve, KillOnDrop};

/// A fresh empty directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("koogate-cli-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `koogate args` in `cwd` with no KOOGATE_* setting but `env`; killed (and the test
/// failed) if it has not finished within `limit`.
fn koogate_in(cwd: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let out_dir = TempDir::new();
    let out_path = out_dir.path().join("stdout");
    let err_path = out_dir.path().join("stderr");
    let mut cmd = Command::new(koogate_bin());
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .env("RUST_LOG", "warn");
    for (k, _) in std::env::vars() {
        if k.starts_with("KOOGATE_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    in_own_group(&mut cmd);
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < limit,
            "koogate {} did not finish in {limit:?}",
            args.join(" ")
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

fn koogate(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    koogate_in(cwd, args, env, Duration::from_secs(60))
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every command and subcommand.
const COMMANDS: &[&[&str]] = &[
    &[],
    &["serve"],
    &["sign"],
    &["init-secrets"],
    &["keygen"],
    &["sim"],
    &["usage"],
    &["usage", "record"],
    &["usage", "push"],
    &["usage", "resend"],
    &["license"],
    &["license", "activate"],
    &["license", "query"],
    &["upload"],
    &["events"],
    &["events", "list"],
    &["events", "redeliver"],
    &["events", "test"],
];

#[test]
fn help_on_every_command_prints_usage_and_examples_and_does_nothing_else() {
    for command in COMMANDS {
        for flag in ["--help", "-h"] {
            let dir = TempDir::new();
            let mut args = command.to_vec();
            args.push(flag);
            // With a secrets document named, a command that ran would have something to do.
            let out = koogate_in(
                dir.path(),
                &args,
                &[("KOOGATE_SECRETS_FILE", "secrets.json")],
                Duration::from_secs(10),
            );
            let shown = format!("koogate {}: {}", args.join(" "), text(&out));
            assert_eq!(out.status.code(), Some(0), "{shown}");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("Usage: koogate"), "{shown}");
            assert!(stdout.contains("Examples:"), "{shown}");
            let example = format!("koogate {}", command.join(" "));
            assert!(
                stdout.contains(example.trim_end()),
                "no example of {example}: {shown}"
            );
            assert!(
                dir.entries().is_empty(),
                "{shown}\ncreated {:?}",
                dir.entries()
            );
        }
    }
}

#[test]
fn serve_help_exits_at_once_without_listening() {
    let dir = TempDir::new();
    let started = Instant::now();
    let out = koogate_in(
        dir.path(),
        &["serve", "--help"],
        &[],
        Duration::from_secs(5),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--addr <HOST:PORT>"));
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
}

#[test]
fn init_secrets_help_writes_nothing() {
    let dir = TempDir::new();
    let out = koogate(dir.path(), &["init-secrets", "--help"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
    assert!(!dir.path().join("--help").exists());
}

#[test]
fn keygen_help_generates_no_key() {
    let dir = TempDir::new();
    let out = koogate(dir.path(), &["keygen", "--help"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("PRIVATE KEY"), "{stdout}");
    assert!(!stdout.contains("MII"), "{stdout}");
}

#[test]
fn version_flags_print_the_version() {
    let dir = TempDir::new();
    for flag in ["--version", "-V"] {
        let out = koogate(dir.path(), &[flag], &[]);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("koogate {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn unknown_flags_commands_and_arguments_exit_2() {
    let cases: &[&[&str]] = &[
        &["sim", "--sute", "x"],
        &["sim", "--url", "http://127.0.0.1:9/saas", "--suite", "sass"],
        &["serve", "--adr", "x"],
        &["events", "lst"],
        &["events", "list", "--faild"],
        &[
            "sign",
            "--url",
            "http://127.0.0.1:9/saas",
            "--activty",
            "newInstance",
        ],
        &[
            "sign",
            "--url",
            "http://127.0.0.1:9/saas",
            "--activity",
            "newInstanc",
        ],
        &["keygen", "--secret", "x.json"],
        &["init-secrets", "a.json", "b.json"],
        &["usage", "record", "--instance", "i"],
        &["upload", "--event", "e"],
        &["serv"],
        &[],
    ];
    for args in cases {
        let dir = TempDir::new();
        let out = koogate_in(dir.path(), args, &[], Duration::from_secs(10));
        assert_eq!(
            out.status.code(),
            Some(2),
            "koogate {}: {}",
            args.join(" "),
            text(&out)
        );
        assert!(
            dir.entries().is_empty(),
            "koogate {}: created {:?}",
            args.join(" "),
            dir.entries()
        );
    }
    let dir = TempDir::new();
    let out = koogate(dir.path(), &["serve", "--adr", "x"], &[]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--addr"),
        "the error suggests --addr: {}",
        text(&out)
    );
}

/// `koogate init-secrets NAME` in `dir`.
fn init_secrets(dir: &Path, name: &str) -> PathBuf {
    let out = koogate(dir, &["init-secrets", name], &[]);
    assert!(out.status.success(), "{}", text(&out));
    dir.join(name)
}

#[test]
fn keygen_checks_the_secrets_document_before_generating_a_key() {
    let dir = TempDir::new();
    std::fs::write(dir.path().join("text.json"), "not json").unwrap();
    std::fs::write(dir.path().join("array.json"), "[1, 2]").unwrap();
    let existing = init_secrets(dir.path(), "existing.json");
    let before = std::fs::read(&existing).unwrap();
    for (file, why) in [
        ("missing.json", "cannot read"),
        ("text.json", "is not JSON"),
        ("array.json", "is not a JSON object"),
        ("existing.json", "has an rsa_private_key_pem already"),
    ] {
        let out = koogate(dir.path(), &["keygen", "--secrets", file], &[]);
        assert!(!out.status.success(), "{file}: {}", text(&out));
        assert!(
            out.stdout.is_empty(),
            "{file}: nothing is generated or printed: {}",
            text(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(file) && stderr.contains(why),
            "{file}: {}",
            text(&out)
        );
    }
    assert_eq!(std::fs::read(&existing).unwrap(), before);
    assert!(!dir.path().join("missing.json").exists());
}

/// The Base64 SubjectPublicKeyInfo line and the PEM block of keygen's output.
fn printed_public_key(stdout: &str) -> (String, String) {
    let b64 = stdout
        .lines()
        .find(|l| l.starts_with("MII") && !l.contains(' '))
        .expect("a Base64 public key line")
        .to_string();
    let start = stdout.find("-----BEGIN PUBLIC KEY-----").expect("PEM");
    let end = stdout.find("-----END PUBLIC KEY-----").expect("PEM end");
    (b64, stdout[start..end + 24].to_string())
}

/// The public key of the document's rsa_private_key_pem, as DER.
fn public_der_of(doc: &Path) -> Vec<u8> {
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(doc).unwrap()).unwrap();
    let key =
        rsa::RsaPrivateKey::from_pkcs8_pem(v["rsa_private_key_pem"].as_str().unwrap()).unwrap();
    key.to_public_key()
        .to_public_key_der()
        .unwrap()
        .as_bytes()
        .to_vec()
}

#[test]
fn keygen_public_from_prints_the_public_key_of_a_secrets_document() {
    use rsa::pkcs8::DecodePublicKey;
    let dir = TempDir::new();
    let doc = init_secrets(dir.path(), "secrets.json");
    let before = std::fs::read(&doc).unwrap();
    let out = koogate(
        dir.path(),
        &["keygen", "--public-from", "secrets.json"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("PRIVATE"), "{stdout}");
    let (b64, pem) = printed_public_key(&stdout);
    let der = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .unwrap();
    assert_eq!(der, public_der_of(&doc));
    assert_eq!(
        rsa::RsaPublicKey::from_public_key_pem(&pem).unwrap(),
        rsa::RsaPublicKey::from_public_key_der(&der).unwrap()
    );
    assert_eq!(
        std::fs::read(&doc).unwrap(),
        before,
        "the document is unchanged"
    );

    // --force replaces the key; the public key printed is the new one's.
    let out = koogate(
        dir.path(),
        &["keygen", "--secrets", "secrets.json", "--force"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let (replaced, _) = printed_public_key(&String::from_utf8_lossy(&out.stdout));
    assert_ne!(replaced, b64);
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&replaced)
            .unwrap(),
        public_der_of(&doc)
    );

    // A document without a key.
    std::fs::write(dir.path().join("bare.json"), r#"{"access_keys": {}}"#).unwrap();
    let out = koogate(dir.path(), &["keygen", "--public-from", "bare.json"], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no rsa_private_key_pem"));
}

#[test]
fn sign_send_to_a_stopped_port_fails_naming_the_url() {
    let dir = TempDir::new();
    let doc = init_secrets(dir.path(), "secrets.json");
    let url = format!("http://127.0.0.1:{}/saas", free_port());
    let out = koogate(
        dir.path(),
        &["sign", "--url", &url, "--activity", "newInstance", "--send"],
        &[("KOOGATE_SECRETS_FILE", doc.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot reach {url}: connection refused")),
        "{}",
        text(&out)
    );
}

/// A running `koogate serve` with a fresh secrets document, and `koogate sign` against it.
struct Served {
    dir: TempDir,
    doc: PathBuf,
    port: u16,
    _serve: KillOnDrop,
}

impl Served {
    fn start() -> Served {
        let dir = TempDir::new();
        let doc = init_secrets(dir.path(), "secrets.json");
        let port = free_port();
        let serve = spawn_serve(dir.path(), &doc, port, &[]);
        Served {
            dir,
            doc,
            port,
            _serve: serve,
        }
    }

    fn sign(&self, extra: &[&str]) -> Output {
        let url = format!("http://127.0.0.1:{}/saas", self.port);
        let mut args = vec!["sign", "--url", &url, "--send"];
        args.extend_from_slice(extra);
        koogate(
            self.dir.path(),
            &args,
            &[("KOOGATE_SECRETS_FILE", self.doc.to_str().unwrap())],
        )
    }
}

fn result_code(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let body = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no answer printed: {}", text(out)));
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["resultCode"].as_str().unwrap_or("").to_string()
}

#[test]
fn sign_send_exits_zero_only_for_000000() {
    let s = Served::start();
    let out = s.sign(&["--activity", "newInstance"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(result_code(&out), "000000");

    // The general key for /saas: the answer (printed) is 000001, and the exit status says so.
    let out = s.sign(&["--activity", "newInstance", "--key-type", "general"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(result_code(&out), "000001");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("resultCode \"000001\""),
        "{}",
        text(&out)
    );

    // Production traffic for an instance that was never created: 000003, non-zero.
    let out = s.sign(&["--activity", "queryInstance", "--production"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(result_code(&out), "000003");
}

#[test]
fn sign_send_signs_every_interface_type_as_koogate_serve_verifies_it() {
    let s = Served::start();
    let cases: &[&[&str]] = &[
        // kit V2 (x-sign headers, kit key)
        &["--activity", "tenantSync"],
        &["--activity", "applicationSync"],
        &["--activity", "authSync"],
        &["--activity", "singleOrgSync"],
        &["--activity", "allOrgSync"],
        &["--activity", "tenantSync", "--production"],
        // kit V1 (authToken header, legacy key)
        &["--activity", "tenantSync", "--v1"],
        &["--activity", "authSync", "--v1"],
        // License 2.0 (license key)
        &["--activity", "refreshLicenseCode"],
        &["--activity", "updateLicenseCodeStatus"],
        &["--activity", "releaseLicenseCode"],
        // order notification (general key)
        &["--activity", "orderNotify"],
        &["--activity", "orderNotify", "--production"],
        // V1 GET (authToken in the query, legacy key)
        &["--activity", "newInstance", "--v1"],
        &["--activity", "newInstance", "--v1", "--production"],
        &["--activity", "instanceStatus"],
        &["--activity", "getLicense"],
        &["--activity", "getLicense", "--production"],
        // the other V2 basic activities
        &["--activity", "changeInstanceCheck"],
        &["--activity", "getLicenseAsync"],
    ];
    for extra in cases {
        let out = s.sign(extra);
        assert!(
            out.status.success(),
            "koogate sign {}: {}",
            extra.join(" "),
            text(&out)
        );
        assert_eq!(result_code(&out), "000000", "{}", extra.join(" "));
    }
    // Without --send: a curl command with the kit headers, to the kit path.
    let url = format!("http://127.0.0.1:{}/saas", s.port);
    let out = koogate(
        s.dir.path(),
        &["sign", "--url", &url, "--activity", "authSync"],
        &[("KOOGATE_SECRETS_FILE", s.doc.to_str().unwrap())],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout.starts_with("curl ")
            && stdout.contains(&format!("{url}/produceAPI/v2/authSync"))
            && stdout.contains("-H 'x-sign: "),
        "{stdout}"
    );
}
