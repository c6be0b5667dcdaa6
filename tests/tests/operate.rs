//! Operator commands against both stores: `koogate list` and `koogate inspect` answer "what
//! happened to order X?" from the store alone, without a Scan on DynamoDB.

use std::process::Command;
use std::sync::Arc;

use koogate_store::Store;
use koogate_tests::{app, koogate_bin, post, MotoServer};
use serde_json::Value;

/// Runs `koogate ARGS` against the store described by `env`, returning its parsed stdout.
fn koogate(env: &[(String, String)], args: &[&str]) -> Value {
    let dir = std::env::temp_dir().join(format!("koogate-op-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let secrets = dir.join("secrets.json");
    std::fs::write(&secrets, r#"{"access_keys":{"basic":["unused"]}}"#).unwrap();
    let out = Command::new(koogate_bin())
        .args(args)
        .env("KOOGATE_SECRETS_FILE", &secrets)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "koogate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

async fn history_of_an_order(store: Arc<dyn Store>, env: Vec<(String, String)>) {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let a = app(Arc::clone(&store), &[]);
    let (order, id) = (format!("CSOP{tag}"), format!("op-{tag}"));
    let new = format!(
        r#"{{"activity":"newInstance","businessId":"{id}","orderId":"{order}","orderLineId":"{order}-1","testFlag":"0"}}"#
    );
    assert_eq!(post(&a, &new).await.code(), "000000");
    let renew = format!(
        r#"{{"activity":"refreshInstance","instanceId":"{id}","orderId":"R{order}","orderLineId":"R{order}-1","expireTime":"20351124023618","scene":"RENEWAL","testFlag":"0"}}"#
    );
    assert_eq!(post(&a, &renew).await.code(), "000000");
    let freeze = format!(
        r#"{{"activity":"updateInstanceStatus","instanceId":"{id}","status":"FREEZE","testFlag":"0"}}"#
    );
    assert_eq!(post(&a, &freeze).await.code(), "000000");

    let listed = koogate(&env, &["list", "instances", "--state", "frozen", "--json"]);
    let mine: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["instanceId"] == id.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{listed}");
    assert_eq!(mine[0]["version"], 3);
    let active = koogate(&env, &["list", "instances", "--state", "active", "--json"]);
    assert!(!active
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["instanceId"] == id.as_str()));

    let orders = koogate(&env, &["list", "orders", "--json"]);
    let of_mine: Vec<&Value> = orders
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["instanceId"] == id.as_str())
        .collect();
    assert_eq!(of_mine.len(), 2, "newInstance and the renewal: {orders}");

    let inspected = koogate(&env, &["inspect", "instance", &id]);
    assert_eq!(inspected["state"], "frozen");
    let types: Vec<&str> = inspected["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    for t in ["instance.created", "instance.renewed", "instance.frozen"] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }
    let order_view = koogate(&env, &["inspect", "order", &format!("R{order}")]);
    assert_eq!(order_view["instances"][0]["instanceId"], id.as_str());
    assert_eq!(order_view["events"][0]["type"], "instance.renewed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_inspect_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("koogate-op-db-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    let store = Arc::new(koogate_store::sqlite::SqliteStore::open(&path).unwrap());
    let env = vec![(
        "KOOGATE_STORE".to_string(),
        format!("sqlite:{}", path.display()),
    )];
    history_of_an_order(store, env).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_inspect_on_dynamodb() {
    let Some(moto) = MotoServer::shared() else {
        return;
    };
    let store = moto.store().await;
    let env = vec![
        ("KOOGATE_STORE".to_string(), "dynamodb".to_string()),
        ("KOOGATE_TABLE".to_string(), store.table().to_string()),
        (
            "AWS_ENDPOINT_URL_DYNAMODB".to_string(),
            moto.endpoint.clone(),
        ),
        ("AWS_ACCESS_KEY_ID".to_string(), "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), "test".to_string()),
        ("AWS_REGION".to_string(), "us-east-1".to_string()),
        ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
    ];
    history_of_an_order(Arc::new(store), env).await;
}
