//! The FunctionGraph code package, end to end on this machine: `packaging/huaweicloud/package.sh
//! --arch host --profile debug` (the host-architecture part of `make package-huaweicloud`, a debug
//! build so that CI stays fast; the release x86_64/aarch64 zips are built by
//! `make package-huaweicloud` only), then the zip's `bootstrap` is started as FunctionGraph starts
//! it and must answer on port 8000 (or `KOOGATE_ADDR` when 8000 is taken) — once with
//! `KOOGATE_SECRETS_FILE`, once with the secrets document in `KOOGATE_SECRETS_JSON` (the encrypted
//! environment variable of infra/huaweicloud), which the bootstrap must turn into a private file.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use koogate_tests::{free_port, http_request, signed_query, KillOnDrop};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn python() -> PathBuf {
    let venv = workspace().join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

/// Unpacks the zip with its Unix modes and returns (entry name, mode) of every entry.
fn unpack(zip: &Path, into: &Path) -> Vec<(String, u32)> {
    const SCRIPT: &str = r#"
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        mode = (info.external_attr >> 16) & 0o7777
        target = os.path.join(sys.argv[2], info.filename)
        with open(target, "wb") as f:
            f.write(z.read(info))
        os.chmod(target, mode)
        print(f"{info.filename} {mode:o}")
"#;
    let out = Command::new(python())
        .args(["-c", SCRIPT])
        .arg(zip)
        .arg(into)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "cannot unpack {}: {}",
        zip.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (name, mode) = l.split_once(' ').unwrap();
            (name.to_string(), u32::from_str_radix(mode, 8).unwrap())
        })
        .collect()
}

/// Starts the bootstrap with `env`, waits for an answer to a debug `queryInstance` on `POST /saas`
/// signed with the basic `key` of the secrets document, and returns that answer's body after
/// checking it is signed (`Body-Sign`): koogate verified the request with the key it read.
async fn start_and_call(dir: &Path, env: &[(&str, String)], addr: &str, key: &str) -> String {
    let mut cmd = Command::new(dir.join("bootstrap"));
    cmd.current_dir(dir)
        .env_remove("KOOGATE_SECRETS_FILE")
        .env_remove("KOOGATE_SECRET_ID")
        .env_remove("KOOGATE_SECRETS_JSON")
        .env_remove("KOOGATE_ADDR")
        .env("KOOGATE_USAGE_PUSH_INTERVAL_SECS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let _child = KillOnDrop(cmd.spawn().expect("bootstrap starts"));
    let body = r#"{"activity":"queryInstance","instanceId":"smoke","testFlag":"1"}"#;
    let started = Instant::now();
    loop {
        let url = format!("http://{addr}/saas?{}", signed_query(key, body.as_bytes()));
        match http_request("POST", &url, &[], body.as_bytes().to_vec()).await {
            Ok((status, headers, bytes)) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                assert_eq!(
                    status, 200,
                    "koogate answers marketplace routes with HTTP 200"
                );
                assert!(
                    headers.iter().any(|(k, _)| k == "body-sign"),
                    "a verified request's answer carries Body-Sign: {text}"
                );
                for refused in ["000001", "000002"] {
                    assert!(
                        !text.contains(&format!("\"resultCode\":\"{refused}\"")),
                        "the signature did not verify with the document's basic key: {text}"
                    );
                }
                return text;
            }
            Err(e) if started.elapsed() > Duration::from_secs(30) => {
                panic!("nothing answers on {addr} 30 s after the bootstrap started: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_zip_bootstrap_serves_on_port_8000() {
    if !cfg!(target_os = "linux") {
        eprintln!("SKIPPED: FunctionGraph packages are Linux binaries");
        return;
    }
    let tmp = std::env::temp_dir().join(format!("koogate-hwc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let (out, unpacked) = (tmp.join("dist"), tmp.join("code"));
    std::fs::create_dir_all(&unpacked).unwrap();

    let status = Command::new(workspace().join("packaging/huaweicloud/package.sh"))
        .args(["--arch", "host", "--profile", "debug", "--out"])
        .arg(&out)
        .status()
        .expect("package.sh runs");
    assert!(status.success(), "package.sh --arch host failed");
    let zip = out.join(format!(
        "koogate-huaweicloud-host-{}.zip",
        std::env::consts::ARCH
    ));
    assert!(zip.exists(), "no {}", zip.display());
    assert!(out.join("SHA256SUMS").exists());

    let entries = unpack(&zip, &unpacked);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["bootstrap", "koogate"],
        "the zip's root holds exactly these"
    );
    for (name, mode) in &entries {
        assert_eq!(
            mode & 0o755,
            0o755,
            "{name} is not executable (mode {mode:o})"
        );
    }

    let secrets = tmp.join("secrets.json");
    let init = Command::new(unpacked.join("koogate"))
        .arg("init-secrets")
        .arg(&secrets)
        .status()
        .unwrap();
    assert!(init.success());
    let secrets_json = std::fs::read_to_string(&secrets).unwrap();
    let document: serde_json::Value = serde_json::from_str(&secrets_json).unwrap();
    let key = document["access_keys"]["basic"][0]
        .as_str()
        .expect("access_keys.basic[0]")
        .to_string();

    // Port 8000 as on FunctionGraph when it is free here; otherwise the override.
    let port_8000_free = TcpListener::bind("0.0.0.0:8000").is_ok();
    let (addr_env, addr) = if port_8000_free {
        (None, "127.0.0.1:8000".to_string())
    } else {
        let a = format!("127.0.0.1:{}", free_port());
        (Some(a.clone()), a)
    };
    eprintln!("port 8000 free: {port_8000_free}; calling {addr}");

    // 1. KOOGATE_SECRETS_FILE and a SQLite store (an ECS-like start of the same package).
    let mut env = vec![
        ("KOOGATE_SECRETS_FILE", secrets.display().to_string()),
        (
            "KOOGATE_STORE",
            format!("sqlite:{}", tmp.join("file.db").display()),
        ),
    ];
    if let Some(a) = &addr_env {
        env.push(("KOOGATE_ADDR", a.clone()));
    }
    let answer = start_and_call(&unpacked, &env, &addr, &key).await;
    assert!(answer.contains("\"resultCode\""), "{answer}");

    // 2. The FunctionGraph way: the document in KOOGATE_SECRETS_JSON, written to a private file.
    let private_tmp = tmp.join("fgs-tmp");
    std::fs::create_dir_all(&private_tmp).unwrap();
    let mut env = vec![
        ("KOOGATE_SECRETS_JSON", secrets_json.clone()),
        ("TMPDIR", private_tmp.display().to_string()),
        (
            "KOOGATE_STORE",
            format!("sqlite:{}", tmp.join("json.db").display()),
        ),
    ];
    if let Some(a) = &addr_env {
        env.push(("KOOGATE_ADDR", a.clone()));
    }
    let answer = start_and_call(&unpacked, &env, &addr, &key).await;
    assert!(answer.contains("\"resultCode\""), "{answer}");
    let written: Vec<_> = std::fs::read_dir(&private_tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(written.len(), 1, "one secrets file: {written:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&written[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the secrets file is private");
    assert_eq!(std::fs::read_to_string(&written[0]).unwrap(), secrets_json);

    let _ = std::fs::remove_dir_all(&tmp);
}
