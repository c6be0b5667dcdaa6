//! License 2.0 merchant calls (docs/protocol.md, inbound-basic §6) and `orderNotify` (§7), with the spec's
//! example bodies copied here.

use koogate_protocol::license_request::{
    RefreshLicenseCode, ReleaseLicenseCode, UpdateLicenseCodeStatus,
};
use koogate_protocol::{
    parse_license, parse_order_notify, Answer, InstanceStatusChange, LicenseActivity,
    LicenseRequest, OrderNotify, RequestError, ResultCode, Scene, MAX_BODY_BYTES,
};

fn license(body: &str) -> Result<LicenseRequest, RequestError> {
    parse_license(body.as_bytes())
}

fn notify(body: &str) -> Result<OrderNotify, RequestError> {
    parse_order_notify(body.as_bytes())
}

// ---- License 2.0 -------------------------------------------------------------------------------

const REFRESH: &str = r#"{"activity":"refreshLicenseCode","expireTime":"20230523201932","license":"LC-0001","orderId":"CS2305231900AAAAA","orderLineId":"CS2305231900AAAAA-000001","productId":"OFFI000000000000000001","scene":"RENEWAL","testFlag":"1"}"#;

#[test]
fn refresh_license_code_example() {
    let req = license(REFRESH).unwrap();
    assert_eq!(req.activity(), LicenseActivity::RefreshLicenseCode);
    assert_eq!(req.license(), "LC-0001");
    assert!(req.is_debug());
    assert_eq!(
        req,
        LicenseRequest::RefreshLicenseCode(RefreshLicenseCode {
            license: "LC-0001".into(),
            order_id: "CS2305231900AAAAA".into(),
            order_line_id: "CS2305231900AAAAA-000001".into(),
            scene: Scene::Renewal,
            product_id: Some("OFFI000000000000000001".into()),
            expire_time: "20230523201932".into(),
            expire_time_ms: 1_684_873_172_000,
            test_flag: true,
        })
    );
}

#[test]
fn refresh_license_code_variants() {
    // 17 digits, refund scene, unknown scene kept (D22), no productId, numeric testFlag.
    let body = REFRESH
        .replace("20230523201932", "20230523201932500")
        .replace(r#","productId":"OFFI000000000000000001""#, "")
        .replace(r#""testFlag":"1""#, r#""testFlag":1"#);
    let LicenseRequest::RefreshLicenseCode(r) = license(&body).unwrap() else {
        panic!()
    };
    assert_eq!(r.expire_time_ms, 1_684_873_172_500);
    assert_eq!(r.product_id, None);
    assert!(r.test_flag);
    for (wire, scene) in [
        (
            "UNSUBSCRIBE_RENEWAL_PERIOD",
            Scene::UnsubscribeRenewalPeriod,
        ),
        ("CANCEL_RENEW", Scene::Other("CANCEL_RENEW".into())),
    ] {
        let LicenseRequest::RefreshLicenseCode(r) =
            license(&REFRESH.replace("\"RENEWAL\"", &format!("\"{wire}\""))).unwrap()
        else {
            panic!()
        };
        assert_eq!(r.scene, scene);
    }
}

#[test]
fn refresh_license_code_errors() {
    let without = |field: &str| REFRESH.replace(&format!("\"{field}\""), &format!("\"_{field}\""));
    for field in ["scene", "orderId", "orderLineId", "license", "expireTime"] {
        assert_eq!(
            license(&without(field)),
            Err(RequestError::MissingField(field)),
            "{field}"
        );
    }
    for bad in ["2023052320193", "20230532201932", "2023-05-23 20:19:32"] {
        assert!(
            matches!(
                license(&REFRESH.replace("20230523201932", bad)),
                Err(RequestError::InvalidField {
                    field: "expireTime",
                    ..
                })
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        license(&REFRESH.replace(r#""LC-0001""#, "1")),
        Err(RequestError::InvalidField {
            field: "license",
            ..
        })
    ));
}

#[test]
fn update_license_code_status_example() {
    let body = r#"{"activity":"updateLicenseCodeStatus","license":"LC-0001","status":"FREEZE","testFlag":"1"}"#;
    assert_eq!(
        license(body).unwrap(),
        LicenseRequest::UpdateLicenseCodeStatus(UpdateLicenseCodeStatus {
            license: "LC-0001".into(),
            status: InstanceStatusChange::Freeze,
            test_flag: true,
        })
    );
    let LicenseRequest::UpdateLicenseCodeStatus(r) =
        license(&body.replace("FREEZE", "UNFREEZE")).unwrap()
    else {
        panic!()
    };
    assert_eq!(r.status, InstanceStatusChange::Unfreeze);
    for bad in ["NORMAL", "freeze", "RELEASE"] {
        let err = license(&body.replace("FREEZE", bad)).unwrap_err();
        assert!(
            matches!(
                err,
                RequestError::InvalidField {
                    field: "status",
                    ..
                }
            ),
            "{bad}"
        );
        assert_eq!(err.result_code(), ResultCode::InvalidParam);
    }
    assert_eq!(
        license(r#"{"activity":"updateLicenseCodeStatus","license":"LC-0001"}"#),
        Err(RequestError::MissingField("status"))
    );
    assert_eq!(
        license(r#"{"activity":"updateLicenseCodeStatus","status":"FREEZE"}"#),
        Err(RequestError::MissingField("license"))
    );
}

#[test]
fn release_license_code_example() {
    let body = r#"{"activity":"releaseLicenseCode","license":"LC-0001","orderId":"CS2305231900BBBBB","orderLineId":"CS2305231900BBBBB-000001","testFlag":"1"}"#;
    assert_eq!(
        license(body).unwrap(),
        LicenseRequest::ReleaseLicenseCode(ReleaseLicenseCode {
            license: "LC-0001".into(),
            order_id: Some("CS2305231900BBBBB".into()),
            order_line_id: Some("CS2305231900BBBBB-000001".into()),
            test_flag: true,
        })
    );
    let LicenseRequest::ReleaseLicenseCode(r) =
        license(r#"{"activity":"releaseLicenseCode","license":"LC-0001"}"#).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (r.order_id, r.order_line_id, r.test_flag),
        (None, None, false)
    );
    assert_eq!(
        license(r#"{"activity":"releaseLicenseCode","license":"  "}"#),
        Err(RequestError::MissingField("license"))
    );
}

#[test]
fn license_activity_errors() {
    let err = license(r#"{"activity":"refreshInstance"}"#).unwrap_err();
    assert_eq!(
        err,
        RequestError::UnsupportedActivity {
            activity: "refreshInstance".into(),
            supported: "refreshLicenseCode, updateLicenseCodeStatus, releaseLicenseCode",
        }
    );
    assert_eq!(
        err.to_string(),
        "unsupported activity \"refreshInstance\"; supported activities: refreshLicenseCode, updateLicenseCodeStatus, releaseLicenseCode"
    );
    assert_eq!(
        license(r#"{"license":"x"}"#),
        Err(RequestError::MissingActivity)
    );
    assert!(matches!(license("[]"), Err(RequestError::Malformed(_))));
    assert!(matches!(license("{"), Err(RequestError::Malformed(_))));
    let big = format!(
        r#"{{"activity":"releaseLicenseCode","license":"x","pad":"{}"}}"#,
        "x".repeat(MAX_BODY_BYTES)
    );
    assert_eq!(license(&big), Err(RequestError::BodyTooLarge));
    let answer: Answer = err.into();
    assert!(String::from_utf8(answer.render())
        .unwrap()
        .starts_with(r#"{"resultCode":"000002","resultMsg":"unsupported activity"#));
}

// ---- orderNotify -------------------------------------------------------------------------------

const NOTIFY: &str = r#"{"activity":"orderNotify","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#;

#[test]
fn order_notify_example() {
    assert_eq!(
        notify(NOTIFY).unwrap(),
        OrderNotify {
            order_id: "CS2211181819B4LVS".into(),
            order_line_id: "CS2211181819B4LVS-000001".into(),
            test_flag: true,
        }
    );
    assert!(
        !notify(&NOTIFY.replace(r#""testFlag":"1""#, r#""testFlag":"0""#))
            .unwrap()
            .test_flag
    );
    assert!(
        notify(&NOTIFY.replace(r#""testFlag":"1""#, r#""testFlag":1"#))
            .unwrap()
            .test_flag
    );
    // D6: an absent testFlag is real traffic, not an error.
    let without_flag = NOTIFY.replace(r#","testFlag":"1""#, "");
    assert!(!notify(&without_flag).unwrap().test_flag);
}

#[test]
fn order_notify_errors() {
    assert_eq!(
        notify(&NOTIFY.replace(r#""orderId""#, r#""_orderId""#)),
        Err(RequestError::MissingField("orderId"))
    );
    assert_eq!(
        notify(&NOTIFY.replace(
            r#""orderLineId":"CS2211181819B4LVS-000001""#,
            r#""orderLineId":null"#
        )),
        Err(RequestError::MissingField("orderLineId"))
    );
    let err = notify(r#"{"activity":"newInstance","orderId":"o","orderLineId":"l"}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported activity \"newInstance\"; supported activities: orderNotify"
    );
    assert_eq!(
        notify(r#"{"activity":""}"#),
        Err(RequestError::MissingActivity)
    );
    assert!(matches!(
        notify(r#"{"activity":1}"#),
        Err(RequestError::InvalidField {
            field: "activity",
            ..
        })
    ));
    assert!(matches!(notify("\"x\""), Err(RequestError::Malformed(_))));
}
