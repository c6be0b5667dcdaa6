//! The members `functions/saas` copies into events, kept by the typed requests so the handler no
//! longer re-parses the body: `releaseInstance.scene` and the `upgradeInstance` sizes. The
//! expectations are what the handler computed with `serde_json` from the raw body.

use koogate_protocol::request::{
    parse_basic, BasicRequest, ReleaseInstance, UpgradeInstance, UPGRADE_SIZE_MEMBERS,
};
use serde_json::{json, Map, Value};

fn release(members: &str) -> ReleaseInstance {
    let body = format!(r#"{{"activity":"releaseInstance","instanceId":"i"{members}}}"#);
    match parse_basic(body.as_bytes()).unwrap() {
        BasicRequest::ReleaseInstance(r) => r,
        other => panic!("not a release: {other:?}"),
    }
}

fn upgrade_body(members: &str) -> String {
    format!(
        r#"{{"activity":"upgradeInstance","instanceId":"i","orderId":"o","orderLineId":"l"{members}}}"#
    )
}

fn upgrade(members: &str) -> UpgradeInstance {
    match parse_basic(upgrade_body(members).as_bytes()).unwrap() {
        BasicRequest::UpgradeInstance(r) => r,
        other => panic!("not an upgrade: {other:?}"),
    }
}

/// What the SaaS handler computed when it re-parsed the raw body for the sizes.
fn sizes_by_serde_json(body: &str) -> Map<String, Value> {
    let parsed: Value = serde_json::from_str(body).unwrap();
    UPGRADE_SIZE_MEMBERS
        .iter()
        .filter_map(|n| parsed.get(*n).map(|v| ((*n).to_owned(), v.clone())))
        .collect()
}

#[test]
fn release_scene_is_kept_when_it_is_a_string() {
    for (members, scene) in [
        (r#","scene":"UNSUBSCRIBE""#, Some("UNSUBSCRIBE")),
        (r#","scene":" ""#, Some(" ")),
        (r#","scene":"""#, Some("")),
        (r#","scene":"a","scene":"b""#, Some("b")),
        (r#","scene":"\u00e9\/""#, Some("\u{e9}/")),
        (r#","scene":5"#, None),
        (r#","scene":null"#, None),
        (r#","scene":{"s":"x"}"#, None),
        ("", None),
    ] {
        assert_eq!(release(members).scene.as_deref(), scene, "{members}");
    }
}

#[test]
fn upgrade_sizes_are_the_members_as_serde_json_reads_them() {
    for members in [
        "",
        r#","amount":5,"diskSize":"100","bandWidth":null,"linearValue":12.780,"periodNumber":-0"#,
        r#","amount":1,"amount":"2","other":3"#,
        r#","diskSize":[1,{"x":2,"x":[3e2]}],"bandWidth":{"unit":"Mbit/s","value":1.5E+3}"#,
        r#","linearValue":18446744073709551615,"periodNumber":18446744073709551616"#,
        r#","amount":-9223372036854775808,"diskSize":true,"bandWidth":" 7 ""#,
    ] {
        let body = upgrade_body(members);
        assert_eq!(
            upgrade(members).sizes,
            sizes_by_serde_json(&body),
            "{members}"
        );
    }
}

#[test]
fn upgrade_sizes_keep_numbers_numbers_and_strings_strings() {
    let sizes = upgrade(r#","amount":5,"diskSize":"100","unrelated":1"#).sizes;
    assert_eq!(
        Value::Object(sizes),
        json!({"amount": 5, "diskSize": "100"})
    );
}

#[test]
fn an_unrepresentable_number_leaves_only_its_member_out() {
    let sizes = upgrade(r#","amount":1e400,"diskSize":[1,-1e999],"bandWidth":2"#).sizes;
    assert_eq!(Value::Object(sizes), json!({"bandWidth": 2}));
}
