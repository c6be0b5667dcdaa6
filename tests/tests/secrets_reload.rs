//! Rotating a key needs no restart: a changed secrets file is read again on the next request
//! (checked at most once a second), and a broken one keeps the previous document in force.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use koogate_runtime::App;
use koogate_tests::{event, invoke, signed_query};
use serde_json::json;

fn write(path: &std::path::Path, text: &str, age: Duration) {
    std::fs::write(path, text).unwrap();
    // An explicit modification time: two writes within one filesystem tick still differ.
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
}

fn doc(basic: &str) -> String {
    json!({"access_keys": {"basic": [basic]}}).to_string()
}

async fn code(app: &Arc<App>, key: &str) -> String {
    let body = r#"{"activity":"queryInstance","instanceId":"nobody","testFlag":"1"}"#;
    invoke(
        app,
        event("POST", &signed_query(key, body.as_bytes()), body.as_bytes()),
    )
    .await
    .code()
    .to_string()
}

#[tokio::test]
async fn a_rotated_key_is_used_without_a_restart() {
    let dir = std::env::temp_dir().join(format!("koogate-reload-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("secrets.json");
    write(&path, &doc("key-one"), Duration::from_secs(60));
    let config = koogate_runtime::config::Config::from_lookup("sqlite:unused", |k| match k {
        "KOOGATE_SECRETS_FILE" => Some(path.display().to_string()),
        _ => None,
    })
    .unwrap();
    let app = App::builder(config)
        .serves(&[koogate_runtime::routes::InterfaceType::Basic])
        .store(Arc::new(
            koogate_store::sqlite::SqliteStore::in_memory().unwrap(),
        ))
        .build()
        .await
        .unwrap();
    assert_ne!(code(&app, "key-one").await, "000001");
    assert_eq!(code(&app, "key-two").await, "000001");

    write(&path, &doc("key-two"), Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_ne!(
        code(&app, "key-two").await,
        "000001",
        "the new key is in force"
    );
    assert_eq!(code(&app, "key-one").await, "000001", "the old one is not");

    // A broken document is refused and the one in force stays.
    write(&path, "{not json", Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_ne!(code(&app, "key-two").await, "000001");
    let _ = std::fs::remove_dir_all(&dir);
}
