//! Parsing of every V2 basic activity, with the spec's example bodies (docs/protocol.md, inbound-basic §4, §5)
//! copied here, and the bad-input classes of D13 / D22.

use koogate_protocol::request::MAX_QUERY_IDS;
use koogate_protocol::{
    parse_basic, peek_activity, Activity, Answer, BasicRequest, InstanceStatusChange, RequestError,
    ResultCode, Scene, MAX_BODY_BYTES,
};

const INSTANCE: &str = "10e758d0-31ad-4c4b-8f1b-81d03469a10e";

fn parse(body: &str) -> Result<BasicRequest, RequestError> {
    parse_basic(body.as_bytes())
}

// ---- one test per activity, spec example bodies ------------------------------------------------

#[test]
fn new_instance_thin() {
    let body = r#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"0"}"#;
    let req = parse(body).unwrap();
    assert_eq!(req.activity(), Activity::NewInstance);
    assert!(!req.is_debug());
    let BasicRequest::NewInstance(r) = req else {
        panic!()
    };
    assert_eq!(r.order_id, "CS2211181819B4LVS");
    assert_eq!(r.order_line_id, "CS2211181819B4LVS-000001");
    assert_eq!(
        r.business_id.as_deref(),
        Some("87b94795-0603-4e24-8ae5-69420d60e3c8")
    );
    assert!(r.fat.is_none());
    assert_eq!(r.product_id(), None);
    assert_eq!(r.charging_mode(), None);
}

#[test]
fn new_instance_thin_without_business_id_is_accepted() {
    // D7: a missing businessId means "generate a UUID", not a refused paid order.
    let r = parse(r#"{"activity":"newInstance","orderId":"O","orderLineId":"L","testFlag":"1"}"#)
        .unwrap();
    let BasicRequest::NewInstance(r) = r else {
        panic!()
    };
    assert_eq!(r.business_id, None);
    assert!(r.test_flag);
}

const FAT_BODY: &str = r#"{"activity":"newInstance","buyerInfo":{"customerId":"688055390f3049f283fe9f1aa90f1858","customerName":"buyer_demo_01","userId":"1e86066c22754361933f607df834e4fe","userName":"buyer_demo_01","mobilePhone":"13800000000","email":"buyer@example.com"},"orderInfo":[{"businessId":"8a2c4e6f-405a-4f8d-8e24-f41090522646","orderId":"CS2210101920BWXLK","trialFlag":"0","orderAmount":12.78,"chargingMode":"PERIOD","periodType":"month","periodNumber":5,"provisionType":1,"productInfo":[{"skuCode":"a63ee5c9-4f86-11ed-9f95-fa163e8cb3b2","productId":"OFFI788963615933718528","linearValue":20}],"createTime":"20221024194509","expireTime":"20221224194509","extendParams":[{"name":"emailDomainName","value":"test.example.com"}]}],"testFlag":"1"}"#;

#[test]
fn new_instance_fat() {
    let req = parse(FAT_BODY).unwrap();
    assert!(req.is_debug());
    let BasicRequest::NewInstance(r) = req else {
        panic!()
    };
    assert_eq!(r.order_id, "CS2210101920BWXLK");
    assert_eq!(r.order_line_id, "");
    assert_eq!(
        r.business_id.as_deref(),
        Some("8a2c4e6f-405a-4f8d-8e24-f41090522646")
    );
    assert_eq!(r.product_id(), Some("OFFI788963615933718528"));
    assert_eq!(r.charging_mode(), Some("PERIOD"));
    let fat = r.fat.as_ref().unwrap();
    assert_eq!(
        fat.customer_id.as_deref(),
        Some("688055390f3049f283fe9f1aa90f1858")
    );
    assert_eq!(fat.customer_name.as_deref(), Some("buyer_demo_01"));
    assert_eq!(
        fat.user_id.as_deref(),
        Some("1e86066c22754361933f607df834e4fe")
    );
    assert_eq!(fat.user_name.as_deref(), Some("buyer_demo_01"));
    assert_eq!(fat.mobile_phone.as_deref(), Some("13800000000"));
    assert_eq!(fat.email.as_deref(), Some("buyer@example.com"));
    assert!(!fat.trial_flag);
    assert_eq!(fat.order_amount.as_deref(), Some("12.78"));
    assert_eq!(fat.period_type.as_deref(), Some("month"));
    assert_eq!(fat.period_number, Some(5));
    assert_eq!(fat.provision_type, Some(1));
    assert_eq!(
        fat.sku_code.as_deref(),
        Some("a63ee5c9-4f86-11ed-9f95-fa163e8cb3b2")
    );
    assert_eq!(fat.linear_value, Some(20));
    assert_eq!(fat.create_time.as_deref(), Some("20221024194509"));
    assert_eq!(fat.expire_time.as_deref(), Some("20221224194509"));
    assert_eq!(
        fat.extend_params,
        vec![("emailDomainName".to_owned(), "test.example.com".to_owned())]
    );
}

#[test]
fn fat_order_debug_redacts_contact_data() {
    let BasicRequest::NewInstance(r) = parse(FAT_BODY).unwrap() else {
        panic!()
    };
    for printed in [format!("{r:?}"), format!("{:#?}", r.fat.as_ref().unwrap())] {
        assert!(!printed.contains("13800000000"), "{printed}");
        assert!(!printed.contains("buyer@example.com"), "{printed}");
        assert!(printed.contains("<redacted>"));
        assert!(printed.contains("CS2210101920BWXLK"));
    }
}

#[test]
fn new_instance_fat_literal_amount_and_string_numbers() {
    let body = r#"{"activity":"newInstance","orderInfo":[{"orderId":"O","orderAmount":12.780,"periodNumber":"3","trialFlag":1,"productInfo":[{"linearValue":"7"}]}]}"#;
    let BasicRequest::NewInstance(r) = parse(body).unwrap() else {
        panic!()
    };
    let fat = r.fat.unwrap();
    assert_eq!(fat.order_amount.as_deref(), Some("12.780"));
    assert_eq!(fat.period_number, Some(3));
    assert_eq!(fat.linear_value, Some(7));
    assert!(fat.trial_flag);
    assert_eq!(r.business_id, None);
}

#[test]
fn new_instance_fat_errors() {
    assert_eq!(
        parse(r#"{"activity":"newInstance","orderInfo":[{"businessId":"b"}]}"#),
        Err(RequestError::MissingField("orderInfo[0].orderId"))
    );
    assert!(matches!(
        parse(r#"{"activity":"newInstance","orderInfo":[]}"#),
        Err(RequestError::InvalidField {
            field: "orderInfo",
            ..
        })
    ));
    assert!(matches!(
        parse(r#"{"activity":"newInstance","orderInfo":"x"}"#),
        Err(RequestError::InvalidField {
            field: "orderInfo",
            ..
        })
    ));
}

#[test]
fn query_instance() {
    let body =
        format!(r#"{{"activity":"queryInstance","instanceId":"{INSTANCE}","testFlag":"0"}}"#);
    let BasicRequest::QueryInstance(r) = parse(&body).unwrap() else {
        panic!()
    };
    assert_eq!(r.instance_ids, vec![INSTANCE.to_owned()]);
    assert!(!r.test_flag);
}

#[test]
fn query_instance_splits_trims_and_dedupes() {
    let BasicRequest::QueryInstance(r) =
        parse(r#"{"activity":"queryInstance","instanceId":" b, a ,,b , c,","testFlag":"1"}"#)
            .unwrap()
    else {
        panic!()
    };
    assert_eq!(r.instance_ids, vec!["b", "a", "c"]);
    assert!(r.test_flag);
}

#[test]
fn query_instance_limits() {
    assert_eq!(
        parse(r#"{"activity":"queryInstance","instanceId":" , ,"}"#),
        Err(RequestError::MissingField("instanceId"))
    );
    let ids = |n: usize| {
        (0..n)
            .map(|i| format!("id-{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let body = |n| {
        format!(
            r#"{{"activity":"queryInstance","instanceId":"{}"}}"#,
            ids(n)
        )
    };
    let BasicRequest::QueryInstance(r) = parse(&body(MAX_QUERY_IDS)).unwrap() else {
        panic!()
    };
    assert_eq!(r.instance_ids.len(), 100);
    let err = parse(&body(101)).unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::InvalidField {
                field: "instanceId",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.result_code(), ResultCode::InvalidParam);
    assert!(err.to_string().contains("instanceId"));
    // 150 entries but only 100 distinct: accepted.
    let repeated = format!(
        r#"{{"activity":"queryInstance","instanceId":"{},{}"}}"#,
        ids(100),
        ids(50)
    );
    assert!(parse(&repeated).is_ok());
}

#[test]
fn refresh_instance() {
    let body = r#"{"activity":"refreshInstance","expireTime":"20221124023618256","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","productId":"OFFI461867333479178240","scene":"RENEWAL","testFlag":"1"}"#;
    let BasicRequest::RefreshInstance(r) = parse(body).unwrap() else {
        panic!()
    };
    assert_eq!(r.instance_id, INSTANCE);
    assert_eq!(r.order_id, "CS2211181819B4LVS");
    assert_eq!(r.order_line_id, "CS2211181819B4LVS-000001");
    assert_eq!(r.scene, Scene::Renewal);
    assert_eq!(r.product_id.as_deref(), Some("OFFI461867333479178240"));
    assert_eq!(r.expire_time, "20221124023618256");
    assert_eq!(r.expire_time_ms, 1_669_257_378_256);
    assert!(r.test_flag);
}

fn refresh_body(expire: &str, scene: &str) -> String {
    format!(
        r#"{{"activity":"refreshInstance","expireTime":"{expire}","instanceId":"i","orderId":"o","orderLineId":"l","scene":"{scene}"}}"#
    )
}

#[test]
fn refresh_instance_expire_time_formats() {
    let BasicRequest::RefreshInstance(r) =
        parse(&refresh_body("20221124023618", "RENEWAL")).unwrap()
    else {
        panic!()
    };
    assert_eq!(r.expire_time_ms, 1_669_257_378_000);
    assert_eq!(r.product_id, None);
    for bad in [
        "2022112402361",
        "202211240236182",
        "20221324023618",
        "20230229000000",
        "2022-11-24",
    ] {
        let err = parse(&refresh_body(bad, "RENEWAL")).unwrap_err();
        assert!(
            matches!(
                err,
                RequestError::InvalidField {
                    field: "expireTime",
                    ..
                }
            ),
            "{bad}: {err:?}"
        );
    }
    assert_eq!(
        parse(&refresh_body("", "RENEWAL")),
        Err(RequestError::MissingField("expireTime"))
    );
}

#[test]
fn refresh_instance_scenes() {
    for (wire, scene) in [
        ("TRIAL_TO_FORMAL", Scene::TrialToFormal),
        ("RENEWAL", Scene::Renewal),
        (
            "UNSUBSCRIBE_RENEWAL_PERIOD",
            Scene::UnsubscribeRenewalPeriod,
        ),
        ("RENEWAL_CHANGE", Scene::RenewalChange),
        ("CANCEL_RENEW", Scene::Other("CANCEL_RENEW".into())),
    ] {
        let BasicRequest::RefreshInstance(r) =
            parse(&refresh_body("20221124023618", wire)).unwrap()
        else {
            panic!()
        };
        assert_eq!(r.scene, scene);
        assert_eq!(r.scene.as_str(), wire);
    }
    assert_eq!(
        parse(&refresh_body("20221124023618", "")),
        Err(RequestError::MissingField("scene"))
    );
}

#[test]
fn update_instance_status() {
    let body = r#"{"activity":"updateInstanceStatus","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","status":"FREEZE","testFlag":"1"}"#;
    let BasicRequest::UpdateInstanceStatus(r) = parse(body).unwrap() else {
        panic!()
    };
    assert_eq!(r.instance_id, INSTANCE);
    assert_eq!(r.status, InstanceStatusChange::Freeze);
    assert!(r.test_flag);
    let BasicRequest::UpdateInstanceStatus(r) = parse(&body.replace("FREEZE", "UNFREEZE")).unwrap()
    else {
        panic!()
    };
    assert_eq!(r.status, InstanceStatusChange::Unfreeze);
    let err = parse(&body.replace("FREEZE", "DELETE")).unwrap_err();
    assert!(matches!(
        err,
        RequestError::InvalidField {
            field: "status",
            ..
        }
    ));
    assert!(err.to_string().contains("status"));
}

#[test]
fn release_instance() {
    let body = r#"{"activity":"releaseInstance","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#;
    let BasicRequest::ReleaseInstance(r) = parse(body).unwrap() else {
        panic!()
    };
    assert_eq!(r.instance_id, INSTANCE);
    assert_eq!(r.order_id.as_deref(), Some("CS2211181819B4LVS"));
    assert_eq!(r.order_line_id.as_deref(), Some("CS2211181819B4LVS-000001"));
    let BasicRequest::ReleaseInstance(r) =
        parse(r#"{"activity":"releaseInstance","instanceId":"x"}"#).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (r.order_id, r.order_line_id, r.test_flag),
        (None, None, false)
    );
}

#[test]
fn upgrade_instance() {
    let body = r#"{"activity":"upgradeInstance","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"0"}"#;
    let req = parse(body).unwrap();
    assert_eq!(req.instance_id(), Some(INSTANCE));
    let BasicRequest::UpgradeInstance(r) = req else {
        panic!()
    };
    assert_eq!(r.order_id, "CS2211181819B4LVS");
    assert_eq!(r.order_line_id, "CS2211181819B4LVS-000001");
    assert!(!r.test_flag);
    assert_eq!(
        parse(r#"{"activity":"upgradeInstance","instanceId":"i","orderId":"o"}"#),
        Err(RequestError::MissingField("orderLineId"))
    );
}

const CHANGE_BODY: &str = r#"{"activity":"changeInstanceCheck","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","productInfo":{"productId":"OFFI461867333479178240","skuCode":"a63ee5c9-4f86-11ed-9f95-fa163e8cb3b2","linearValue":50,"productName":"Basic edition"},"testFlag":"1"}"#;

#[test]
fn change_instance_check() {
    let BasicRequest::ChangeInstanceCheck(r) = parse(CHANGE_BODY).unwrap() else {
        panic!()
    };
    assert_eq!(r.instance_id, INSTANCE);
    assert_eq!(r.product.product_id, "OFFI461867333479178240");
    assert_eq!(r.product.sku_code, "a63ee5c9-4f86-11ed-9f95-fa163e8cb3b2");
    assert_eq!(r.product.product_name, "Basic edition");
    assert_eq!(r.product.linear_value, Some(50));
    assert!(r.test_flag);
}

#[test]
fn change_instance_check_product_info_as_string() {
    let body = r#"{"activity":"changeInstanceCheck","instanceId":"i","productInfo":"{\"productId\":\"P\",\"skuCode\":\"S\",\"linearValue\":\"12\",\"productName\":\"\u4e13\u4e1a\u7248\"}"}"#;
    let BasicRequest::ChangeInstanceCheck(r) = parse(body).unwrap() else {
        panic!()
    };
    assert_eq!(r.product.product_id, "P");
    assert_eq!(r.product.sku_code, "S");
    assert_eq!(r.product.product_name, "专业版");
    assert_eq!(r.product.linear_value, Some(12));
}

#[test]
fn change_instance_check_errors() {
    let without =
        |field: &str| CHANGE_BODY.replace(&format!("\"{field}\""), &format!("\"_{field}\""));
    assert_eq!(
        parse(&without("productInfo")),
        Err(RequestError::MissingField("productInfo"))
    );
    assert_eq!(
        parse(&without("skuCode")),
        Err(RequestError::MissingField("productInfo.skuCode"))
    );
    assert_eq!(
        parse(&without("productName")),
        Err(RequestError::MissingField("productInfo.productName"))
    );
    let BasicRequest::ChangeInstanceCheck(r) = parse(&without("linearValue")).unwrap() else {
        panic!()
    };
    assert_eq!(r.product.linear_value, None);
    assert!(matches!(
        parse(&CHANGE_BODY.replace("50", "\"fifty\"")),
        Err(RequestError::InvalidField {
            field: "productInfo.linearValue",
            ..
        })
    ));
    assert!(matches!(
        parse(r#"{"activity":"changeInstanceCheck","instanceId":"i","productInfo":"[1]"}"#),
        Err(RequestError::InvalidField {
            field: "productInfo",
            ..
        })
    ));
    assert!(matches!(
        parse(r#"{"activity":"changeInstanceCheck","instanceId":"i","productInfo":"{oops"}"#),
        Err(RequestError::InvalidField {
            field: "productInfo",
            ..
        })
    ));
    assert!(matches!(
        parse(r#"{"activity":"changeInstanceCheck","instanceId":"i","productInfo":7}"#),
        Err(RequestError::InvalidField {
            field: "productInfo",
            ..
        })
    ));
}

#[test]
fn get_license_async() {
    let body = r#"{"activity":"getLicenseAsync","eventId":"8e5694c8","instanceId":"RA24LVS","effectiveTime":"2023-10-27 10:30:15 z","expireTime":"2024-10-27 10:30:15 z","deviceFingerprint":"86034e260e1"}"#;
    let BasicRequest::GetLicenseAsync(r) = parse(body).unwrap() else {
        panic!()
    };
    assert_eq!(r.instance_id, "RA24LVS");
    assert_eq!(r.event_id, "8e5694c8");
    assert_eq!(r.effective_time, "2023-10-27 10:30:15 z");
    assert_eq!(r.effective_time_ms, 1_698_402_615_000);
    assert_eq!(r.expire_time.as_deref(), Some("2024-10-27 10:30:15 z"));
    assert_eq!(r.expire_time_ms, Some(1_730_025_015_000));
    assert_eq!(r.device_fingerprint.as_deref(), Some("86034e260e1"));
    assert!(!r.test_flag);
}

#[test]
fn get_license_async_optional_fields_and_errors() {
    let BasicRequest::GetLicenseAsync(r) = parse(
        r#"{"activity":"getLicenseAsync","eventId":"e","instanceId":"i","effectiveTime":"2023-10-27 10:30:15","testFlag":"1"}"#,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(
        (r.expire_time, r.expire_time_ms, r.device_fingerprint),
        (None, None, None)
    );
    assert!(r.test_flag);
    assert_eq!(
        parse(
            r#"{"activity":"getLicenseAsync","instanceId":"i","effectiveTime":"2023-10-27 10:30:15"}"#
        ),
        Err(RequestError::MissingField("eventId"))
    );
    assert!(matches!(
        parse(
            r#"{"activity":"getLicenseAsync","eventId":"e","instanceId":"i","effectiveTime":"2023-13-27 10:30:15"}"#
        ),
        Err(RequestError::InvalidField {
            field: "effectiveTime",
            ..
        })
    ));
    assert!(matches!(
        parse(
            r#"{"activity":"getLicenseAsync","eventId":"e","instanceId":"i","effectiveTime":"2023-10-27 10:30:15","expireTime":"tomorrow"}"#
        ),
        Err(RequestError::InvalidField {
            field: "expireTime",
            ..
        })
    ));
}

// ---- bad input classes (D13) -------------------------------------------------------------------

#[test]
fn missing_fields_are_named() {
    let cases = [
        (
            r#"{"activity":"newInstance","orderLineId":"L","businessId":"b"}"#,
            "orderId",
        ),
        (
            r#"{"activity":"newInstance","orderId":"O","businessId":"b"}"#,
            "orderLineId",
        ),
        (
            r#"{"activity":"newInstance","orderId":"O","orderLineId":"  ","businessId":"b"}"#,
            "orderLineId",
        ),
        (
            r#"{"activity":"newInstance","orderId":null,"orderLineId":"L"}"#,
            "orderId",
        ),
        (r#"{"activity":"queryInstance"}"#, "instanceId"),
        (
            r#"{"activity":"updateInstanceStatus","instanceId":"i"}"#,
            "status",
        ),
        (
            r#"{"activity":"releaseInstance","orderId":"o"}"#,
            "instanceId",
        ),
        (
            r#"{"activity":"changeInstanceCheck","productInfo":{}}"#,
            "instanceId",
        ),
        (
            r#"{"activity":"getLicenseAsync","instanceId":"i","eventId":"e"}"#,
            "effectiveTime",
        ),
    ];
    for (body, field) in cases {
        let err = parse(body).unwrap_err();
        assert_eq!(err, RequestError::MissingField(field), "{body}");
        assert_eq!(err.to_string(), format!("missing mandatory field: {field}"));
        assert_eq!(err.result_code(), ResultCode::InvalidParam);
    }
}

#[test]
fn wrong_types_are_named() {
    let err = parse(r#"{"activity":"newInstance","orderId":123,"orderLineId":"L"}"#).unwrap_err();
    assert_eq!(
        err,
        RequestError::InvalidField {
            field: "orderId",
            reason: "must be a string, got a number".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "invalid field orderId: must be a string, got a number"
    );
    assert!(matches!(
        parse(r#"{"activity":"releaseInstance","instanceId":"i","orderId":["o"]}"#),
        Err(RequestError::InvalidField {
            field: "orderId",
            ..
        })
    ));
    assert!(matches!(
        parse(r#"{"activity":7}"#),
        Err(RequestError::InvalidField {
            field: "activity",
            ..
        })
    ));
}

#[test]
fn unknown_and_missing_activity() {
    let err = parse(r#"{"activity":"orderNotify","orderId":"o"}"#).unwrap_err();
    assert_eq!(err, RequestError::UnknownActivity("orderNotify".into()));
    let msg = err.to_string();
    for a in Activity::ALL {
        assert!(msg.contains(a.name()), "{msg}");
    }
    assert!(msg.contains("orderNotify"));
    assert!(msg.len() <= 255);
    let long = format!(r#"{{"activity":"{}"}}"#, "x".repeat(1000));
    let msg = parse(&long).unwrap_err().to_string();
    assert!(msg.len() <= 255, "{}", msg.len());
    assert!(msg.contains("getLicenseAsync"));

    assert_eq!(
        parse(r#"{"orderId":"o"}"#),
        Err(RequestError::MissingActivity)
    );
    assert_eq!(
        parse(r#"{"activity":""}"#),
        Err(RequestError::MissingActivity)
    );
    assert_eq!(
        parse(r#"{"activity":null}"#),
        Err(RequestError::MissingActivity)
    );
}

#[test]
fn malformed_bodies() {
    for body in [
        "",
        "{",
        "[]",
        "\"x\"",
        "{\"activity\":\"newInstance\",}",
        "nul",
        "{} {}",
    ] {
        assert!(
            matches!(parse(body), Err(RequestError::Malformed(_))),
            "{body:?}"
        );
    }
    assert!(matches!(
        parse_basic(b"{\"a\":\"\xff\"}"),
        Err(RequestError::Malformed(_))
    ));
    let deep = format!(
        r#"{{"activity":"queryInstance","instanceId":"i","x":{}{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    assert!(matches!(parse(&deep), Err(RequestError::Malformed(_))));
    let err = parse("{").unwrap_err();
    assert!(err.to_string().starts_with("malformed JSON: "));
}

#[test]
fn oversized_body() {
    let padding = "x".repeat(MAX_BODY_BYTES);
    let body = format!(r#"{{"activity":"queryInstance","instanceId":"i","pad":"{padding}"}}"#);
    assert_eq!(parse(&body), Err(RequestError::BodyTooLarge));
    assert_eq!(
        RequestError::BodyTooLarge.result_code(),
        ResultCode::InvalidParam
    );
}

#[test]
fn test_flag_values() {
    let body = |flag: &str| {
        format!(r#"{{"activity":"releaseInstance","instanceId":"i","testFlag":{flag}}}"#)
    };
    for (flag, expected) in [
        ("\"1\"", true),
        ("1", true),
        ("\"0\"", false),
        ("0", false),
        ("null", false),
        ("true", false),
        ("\"true\"", false),
        ("\" 1\"", false),
        ("1.0", false),
        ("\"\"", false),
    ] {
        assert_eq!(parse(&body(flag)).unwrap().is_debug(), expected, "{flag}");
    }
}

#[test]
fn unknown_fields_are_ignored_and_last_duplicate_wins() {
    let r = parse(
        r#"{"activity":"releaseInstance","instanceId":"a","instanceId":"b","future":{"x":[1]}}"#,
    )
    .unwrap();
    assert_eq!(r.instance_id(), Some("b"));
}

#[test]
fn errors_render_as_answers() {
    let answer: Answer = RequestError::MissingField("orderLineId").into();
    assert_eq!(
        answer.render(),
        br#"{"resultCode":"000002","resultMsg":"missing mandatory field: orderLineId"}"#
    );
}

#[test]
fn peek_activity_on_examples() {
    assert_eq!(
        peek_activity(CHANGE_BODY.as_bytes()).as_deref(),
        Some("changeInstanceCheck")
    );
    assert_eq!(
        peek_activity(FAT_BODY.as_bytes()).as_deref(),
        Some("newInstance")
    );
    assert_eq!(
        peek_activity(b"{\"activity\":\"refreshLicenseCode\"}").as_deref(),
        Some("refreshLicenseCode")
    );
    assert_eq!(peek_activity(b"garbage"), None);
}

/// A refused body names its activity when it named a supported one, so the refusal's log line can
/// say which activity failed without the body being parsed again.
#[test]
fn a_refusal_names_the_activity_when_the_body_did() {
    use koogate_protocol::request::parse_basic_refusing;
    let named = parse_basic_refusing(br#"{"activity":"queryInstance"}"#).unwrap_err();
    assert_eq!(named.activity, Some(Activity::QueryInstance));
    assert_eq!(named.error, RequestError::MissingField("instanceId"));
    for (body, error) in [
        (
            &br#"{"activity":"nope"}"#[..],
            RequestError::UnknownActivity("nope".into()),
        ),
        (&br#"{"instanceId":"x"}"#[..], RequestError::MissingActivity),
    ] {
        let refusal = parse_basic_refusing(body).unwrap_err();
        assert_eq!((refusal.activity, refusal.error), (None, error));
    }
    assert!(parse_basic_refusing(b"[1]").unwrap_err().activity.is_none());
}
