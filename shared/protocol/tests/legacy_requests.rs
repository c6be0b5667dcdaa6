//! V1 GET requests of the SaaS V1 and old License interfaces (docs/protocol.md, inbound-legacy §2, §3), with
//! the spec's example queries copied here, `saasExtendParams` (§6), encrypted contact data (§5)
//! and the V1 answers.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use koogate_protocol::aes_credentials::{self, EncryptType};
use koogate_protocol::legacy_answer::{
    get_license_answer, new_instance_answer, query_instance_answer, V1AppInfo, V1InstanceInfo,
    V1UsageInfo,
};
use koogate_protocol::legacy_request::{
    decode_extend_params, decrypt_contact, parse_legacy_on, LinearValues,
};
use koogate_protocol::v1_auth::encode_component as encode;
use koogate_protocol::v1_auth::{sign_get, Decoding};
use koogate_protocol::{
    parse_legacy, verify_get, AesError, InstanceStatusChange, LegacyActivity, LegacyRequest,
    LegacyRoute, RequestError, ResultCode, V1Verification,
};

const LEGACY_KEY: &str = "test-access-key-123";

fn query(q: &str) -> Vec<(String, String)> {
    koogate_protocol::v1_auth::decode_query(q, Decoding::Strict)
}

fn parse(q: &str) -> Result<LegacyRequest, RequestError> {
    parse_legacy(&query(q))
}

/// Signs a decoded query with the legacy key and returns the full raw query, as the
/// marketplace sends it.
fn signed_query(q: &str) -> String {
    let token = sign_get(LEGACY_KEY, &query(q));
    format!("{q}&authToken={}", encode(&token))
}

// ---- SaaS V1, spec examples ---------------------------------------------------------------------

const NEW_INSTANCE: &str = "activity=newInstance&businessId=61e834ba-7b97-4418-b8f7-e5345137278c&customerId=68cbc86abc2018ab880d92f36422fa0e&expireTime=20200727153156&orderId=CS1906666666ABCDE&productId=00301-666666-0--0&testFlag=1&timeStamp=20200727073711903";

#[test]
fn new_instance_example_end_to_end() {
    let raw = signed_query(NEW_INSTANCE);
    let V1Verification::Verified { params, .. } = verify_get(&[LEGACY_KEY.to_owned()], &raw) else {
        panic!("example does not verify")
    };
    let req = parse_legacy(&params).unwrap();
    assert_eq!(req.activity(), LegacyActivity::NewInstance);
    assert!(req.is_debug());
    assert_eq!(req.instance_id(), None);
    let LegacyRequest::NewInstance(r) = req else {
        panic!()
    };
    assert_eq!(
        r.business_id.as_deref(),
        Some("61e834ba-7b97-4418-b8f7-e5345137278c")
    );
    assert_eq!(r.customer_id, "68cbc86abc2018ab880d92f36422fa0e");
    assert_eq!(r.order_id, "CS1906666666ABCDE");
    assert_eq!(r.product_id, "00301-666666-0--0");
    assert_eq!(r.expire_time.as_deref(), Some("20200727153156"));
    assert_eq!(r.expire_time_ms, Some(1_595_863_916_000));
    assert!(r.test_flag);
    assert!(!r.trial_flag);
    assert_eq!(r.linear, LinearValues::default());
    assert_eq!((r.mobile_phone, r.email), (None, None));
    assert!(r.extend_params.is_empty());
}

#[test]
fn new_instance_all_parameters() {
    let extend = STANDARD.encode(r#"[{"name":"idNumber","value":"110101199001011234"}]"#);
    let q = format!(
        "activity=newInstance&customerId=C&customerName=buyer&userId=U&userName=admin&businessId=B&orderId=O&skuCode=S&productId=P&trialFlag=1&expireTime=20200727153156&chargingMode=1&periodType=month&periodNumber=3&orderAmount=12.780&provisionType=2&amount=20&diskSize=100&bandWidth=5&saasExtendParams={}&timeStamp=20200727073711903",
        encode(&extend)
    );
    let LegacyRequest::NewInstance(r) = parse(&q).unwrap() else {
        panic!()
    };
    assert_eq!(r.customer_name.as_deref(), Some("buyer"));
    assert_eq!(r.user_id.as_deref(), Some("U"));
    assert_eq!(r.user_name.as_deref(), Some("admin"));
    assert_eq!(r.sku_code.as_deref(), Some("S"));
    assert!(r.trial_flag);
    assert_eq!(r.charging_mode.as_deref(), Some("1"));
    assert_eq!(r.period_type.as_deref(), Some("month"));
    assert_eq!(r.period_number, Some(3));
    assert_eq!(r.order_amount.as_deref(), Some("12.780"));
    assert_eq!(r.provision_type.as_deref(), Some("2"));
    assert_eq!(
        r.linear,
        LinearValues {
            amount: Some(20),
            disk_size: Some(100),
            band_width: Some(5)
        }
    );
    assert_eq!(r.saas_extend_params.as_deref(), Some(extend.as_str()));
    assert_eq!(
        r.extend_params,
        vec![("idNumber".to_owned(), "110101199001011234".to_owned())]
    );
    assert!(!r.test_flag);
}

#[test]
fn new_instance_lenient_and_strict_parts() {
    // D7: no businessId → the caller generates a UUID.
    let q = NEW_INSTANCE.replace("businessId=61e834ba-7b97-4418-b8f7-e5345137278c&", "");
    let LegacyRequest::NewInstance(r) = parse(&q).unwrap() else {
        panic!()
    };
    assert_eq!(r.business_id, None);
    // An unparsable informational expiry is kept, not refused.
    let LegacyRequest::NewInstance(r) =
        parse(&NEW_INSTANCE.replace("20200727153156", "2020-07-27")).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (r.expire_time.as_deref(), r.expire_time_ms),
        (Some("2020-07-27"), None)
    );
    // Integer parameters must be integers.
    for (name, value) in [
        ("periodNumber", "two"),
        ("amount", "1.5"),
        ("diskSize", "x"),
        ("bandWidth", "9999999999999999999999"),
    ] {
        let err = parse(&format!("{NEW_INSTANCE}&{name}={value}")).unwrap_err();
        assert!(
            matches!(&err, RequestError::InvalidField { field, .. } if *field == name),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(name));
    }
    // Blank optional values are absent; surrounding spaces around integers are tolerated.
    let LegacyRequest::NewInstance(r) = parse(&format!(
        "{NEW_INSTANCE}&amount=%207%20&periodNumber=&skuCode="
    ))
    .unwrap() else {
        panic!()
    };
    assert_eq!(r.linear.amount, Some(7));
    assert_eq!((r.period_number, r.sku_code), (None, None));
}

#[test]
fn new_instance_encrypted_contact_data() {
    let phone = aes_credentials::encrypt_with_iv(
        LEGACY_KEY,
        EncryptType::Aes256,
        "A1b2C3d4E5f6G7h8",
        "13800000000",
    )
    .unwrap();
    let email = aes_credentials::encrypt_with_iv(
        LEGACY_KEY,
        EncryptType::Aes128,
        "Zz9Yy8Xx7Ww6Vv5U",
        "buyer@example.com",
    )
    .unwrap();
    let q = format!(
        "{NEW_INSTANCE}&mobilePhone={}&email={}",
        encode(&phone),
        encode(&email)
    );
    let raw = signed_query(&q);
    let V1Verification::Verified { params, .. } = verify_get(&[LEGACY_KEY.to_owned()], &raw) else {
        panic!()
    };
    let LegacyRequest::NewInstance(r) = parse_legacy(&params).unwrap() else {
        panic!()
    };
    // Ciphertext as received; decrypted only after verification.
    assert_eq!(r.mobile_phone.as_deref(), Some(phone.as_str()));
    assert_eq!(
        decrypt_contact(
            LEGACY_KEY,
            EncryptType::Aes256,
            r.mobile_phone.as_deref().unwrap()
        ),
        Ok("13800000000".to_owned())
    );
    assert_eq!(
        decrypt_contact(LEGACY_KEY, EncryptType::Aes128, r.email.as_deref().unwrap()),
        Ok("buyer@example.com".to_owned())
    );
    // A form-decoded ciphertext (`+` turned into spaces) still decrypts.
    let spaced = phone.replace('+', " ");
    assert_eq!(
        decrypt_contact(LEGACY_KEY, EncryptType::Aes256, &spaced),
        Ok("13800000000".to_owned())
    );
    // Wrong key size: a decryption error for the caller to answer 000002 with.
    assert!(decrypt_contact(LEGACY_KEY, EncryptType::Aes128, &phone).is_err());
    assert_eq!(
        decrypt_contact(LEGACY_KEY, EncryptType::Aes256, "short"),
        Err(AesError::MissingIv)
    );
    // Debug never shows the contact data, encrypted or not.
    let printed = format!("{r:?}");
    assert!(!printed.contains(&phone[16..]), "{printed}");
    assert!(!printed.contains(&email[16..]), "{printed}");
    assert!(printed.contains("<redacted>"));
    assert!(printed.contains("CS1906666666ABCDE"));
}

#[test]
fn refresh_instance_example() {
    let q = "activity=refreshInstance&expireTime=20180725000000&instanceId=03pf80c2bae96vc49b80b917bea776d7&orderId=HWS001014ED483AA1E8&timeStamp=20170725025113409&testFlag=1";
    let req = parse(q).unwrap();
    assert_eq!(req.instance_id(), Some("03pf80c2bae96vc49b80b917bea776d7"));
    let LegacyRequest::RefreshInstance(r) = req else {
        panic!()
    };
    assert_eq!(r.order_id, "HWS001014ED483AA1E8");
    assert_eq!(r.expire_time, "20180725000000");
    assert_eq!(r.expire_time_ms, 1_532_476_800_000);
    assert!(r.test_flag);
    assert!(!r.trial_to_formal);
    assert_eq!(
        (r.product_id, r.period_type, r.period_number, r.order_amount),
        (None, None, None, None)
    );
    let LegacyRequest::RefreshInstance(r) = parse(&format!(
        "{q}&trialToFormal=1&productId=P2&periodType=year&periodNumber=1&orderAmount=-12.5"
    ))
    .unwrap() else {
        panic!()
    };
    assert!(r.trial_to_formal);
    assert_eq!(r.product_id.as_deref(), Some("P2"));
    assert_eq!(r.order_amount.as_deref(), Some("-12.5"));
    assert_eq!(r.period_number, Some(1));
    // 17 digits are accepted too (D11); bad ones are named.
    let LegacyRequest::RefreshInstance(r) =
        parse(&q.replace("20180725000000", "20180725000000123")).unwrap()
    else {
        panic!()
    };
    assert_eq!(r.expire_time_ms, 1_532_476_800_123);
    for bad in ["2018072500000", "20181325000000", "tomorrow"] {
        assert!(
            matches!(
                parse(&q.replace("20180725000000", bad)),
                Err(RequestError::InvalidField {
                    field: "expireTime",
                    ..
                })
            ),
            "{bad}"
        );
    }
    assert_eq!(
        parse(&q.replace("expireTime=20180725000000", "expireTime=")),
        Err(RequestError::MissingField("expireTime"))
    );
}

#[test]
fn expire_instance_example() {
    let q = "activity=expireInstance&instanceId=03pf80c2bae96vc49b80b917bea776d7&orderId=CS1906666666ABCDE&timeStamp=20170725025113409&testFlag=1";
    let LegacyRequest::ExpireInstance(r) = parse(q).unwrap() else {
        panic!()
    };
    assert_eq!(r.instance_id, "03pf80c2bae96vc49b80b917bea776d7");
    assert_eq!(r.order_id, "CS1906666666ABCDE");
    assert!(r.test_flag);
}

#[test]
fn release_instance() {
    let q = "activity=releaseInstance&instanceId=03pf80c2bae96vc49b80b917bea776d7&orderId=CS1906666666ABCDE&orderAmount=0&timeStamp=20170725025113409";
    let LegacyRequest::ReleaseInstance(r) = parse(q).unwrap() else {
        panic!()
    };
    assert_eq!(r.instance_id, "03pf80c2bae96vc49b80b917bea776d7");
    assert_eq!(r.order_id, "CS1906666666ABCDE");
    assert_eq!(r.order_amount.as_deref(), Some("0"));
    assert!(!r.test_flag);
}

#[test]
fn upgrade() {
    let extend = "W3sibmFtZSI6ImsiLCJ2YWx1ZSI6ImE+YiJ9XQ=="; // [{"name":"k","value":"a>b"}]
    let q = format!(
        "activity=upgrade&instanceId=I&orderId=CS-UP&skuCode=S2&productId=P2&amount=50&saasExtendParams={}&testFlag=1&timeStamp=20170725025113409",
        encode(extend)
    );
    let LegacyRequest::Upgrade(r) = parse(&q).unwrap() else {
        panic!()
    };
    assert_eq!(
        (
            r.instance_id.as_str(),
            r.order_id.as_str(),
            r.sku_code.as_str(),
            r.product_id.as_str()
        ),
        ("I", "CS-UP", "S2", "P2")
    );
    assert_eq!(r.linear.amount, Some(50));
    assert_eq!(r.extend_params, vec![("k".to_owned(), "a>b".to_owned())]);
    assert!(r.test_flag);
    assert_eq!(
        parse("activity=upgrade&instanceId=I&orderId=O&productId=P"),
        Err(RequestError::MissingField("skuCode"))
    );
    // The V2 name is not a V1 activity.
    let err = parse("activity=upgradeInstance&instanceId=I").unwrap_err();
    assert!(
        matches!(&err, RequestError::UnsupportedActivity { activity, .. } if activity == "upgradeInstance"),
        "{err:?}"
    );
    assert_eq!(err.result_code(), ResultCode::InvalidParam);
}

#[test]
fn instance_status_example() {
    let q = "activity=instanceStatus&instanceId=huaweitest123456&instanceStatus=FREEZE&testFlag=1&timeStamp=20230327070251713";
    let LegacyRequest::InstanceStatus(r) = parse(q).unwrap() else {
        panic!()
    };
    assert_eq!(r.instance_id, "huaweitest123456");
    assert_eq!(r.status, InstanceStatusChange::Freeze);
    assert!(r.test_flag);
    for unfreeze in ["NORMAL", "UNFREEZE"] {
        let LegacyRequest::InstanceStatus(r) = parse(&q.replace("FREEZE", unfreeze)).unwrap()
        else {
            panic!()
        };
        assert_eq!(r.status, InstanceStatusChange::Unfreeze);
    }
    for bad in ["freeze", "DELETE", "NORMAL "] {
        let err = parse(&q.replace("=FREEZE", &format!("={bad}"))).unwrap_err();
        assert!(
            matches!(
                err,
                RequestError::InvalidField {
                    field: "instanceStatus",
                    ..
                }
            ),
            "{bad}"
        );
    }
    assert_eq!(
        parse("activity=instanceStatus&instanceId=i"),
        Err(RequestError::MissingField("instanceStatus"))
    );
}

#[test]
fn query_instance_example() {
    let q = "activity=queryInstance&instanceId=ebc28eb6-4606-4098-b4bd-c201c99a0654%2Cfe28e27e-1157-4105-8592-24cc9488db10&testFlag=1&timeStamp=20230327065233980";
    let LegacyRequest::QueryInstance(r) = parse(q).unwrap() else {
        panic!()
    };
    assert_eq!(
        r.instance_ids,
        vec![
            "ebc28eb6-4606-4098-b4bd-c201c99a0654",
            "fe28e27e-1157-4105-8592-24cc9488db10"
        ]
    );
    assert!(r.test_flag);
    let many: Vec<String> = (0..101).map(|i| format!("id{i}")).collect();
    assert!(matches!(
        parse(&format!(
            "activity=queryInstance&instanceId={}",
            many.join("%2C")
        )),
        Err(RequestError::InvalidField {
            field: "instanceId",
            ..
        })
    ));
    assert_eq!(
        parse("activity=queryInstance&instanceId=%2C%20%2C"),
        Err(RequestError::MissingField("instanceId"))
    );
}

// ---- old License -------------------------------------------------------------------------------

#[test]
fn get_license() {
    let q = "activity=getLicense&businessId=b1&customerId=c1&orderId=CS1&productId=P1&timeStamp=20170621185532100";
    let req = parse(q).unwrap();
    assert_eq!(req.activity().route(), LegacyRoute::License);
    let LegacyRequest::GetLicense(r) = req else {
        panic!()
    };
    assert_eq!(r.business_id.as_deref(), Some("b1"));
    assert_eq!(r.customer_id, "c1");
    assert_eq!(r.order_id, "CS1");
    assert_eq!(r.product_id, "P1");
    assert_eq!(r.expire_time, None);
    assert!(!r.test_flag);
    let LegacyRequest::GetLicense(r) = parse(&format!(
        "{q}&customerName=n&skuCode=s&expireTime=20180621185532&periodType=year&amount=3&testFlag=1"
    ))
    .unwrap() else {
        panic!()
    };
    assert_eq!(r.customer_name.as_deref(), Some("n"));
    assert_eq!(r.sku_code.as_deref(), Some("s"));
    assert_eq!(r.expire_time_ms, Some(1_529_607_332_000));
    assert_eq!(r.period_type.as_deref(), Some("year"));
    assert_eq!(r.amount, Some(3));
    assert!(r.test_flag);
    assert_eq!(
        parse("activity=getLicense&businessId=b1&orderId=CS1&productId=P1"),
        Err(RequestError::MissingField("customerId"))
    );
}

#[test]
fn refresh_license() {
    let q = "activity=refreshLicense&orderId=CS-R&instanceId=I&expireTime=20240101000000&periodType=month&periodNumber=2&testFlag=1";
    let LegacyRequest::RefreshLicense(r) = parse(q).unwrap() else {
        panic!()
    };
    assert_eq!((r.order_id.as_str(), r.instance_id.as_str()), ("CS-R", "I"));
    assert_eq!(r.expire_time_ms, 1_704_067_200_000);
    assert_eq!(r.period_number, Some(2));
    assert_eq!(r.product_id, None);
    assert!(r.test_flag);
    assert!(matches!(
        parse(&q.replace("20240101000000", "20240132000000")),
        Err(RequestError::InvalidField {
            field: "expireTime",
            ..
        })
    ));
}

#[test]
fn expire_and_release_license() {
    let LegacyRequest::ExpireLicense(r) =
        parse("activity=expireLicense&instanceId=I&orderId=O").unwrap()
    else {
        panic!()
    };
    assert_eq!((r.instance_id.as_str(), r.order_id.as_str()), ("I", "O"));
    let req = parse("activity=releaseLicense&orderId=O&instanceId=I&testFlag=1").unwrap();
    assert!(req.is_debug());
    assert_eq!(req.instance_id(), Some("I"));
    assert_eq!(
        parse("activity=releaseLicense&instanceId=I"),
        Err(RequestError::MissingField("orderId"))
    );
}

// ---- shared rules ------------------------------------------------------------------------------

#[test]
fn missing_fields_are_named() {
    for (q, field) in [
        ("activity=newInstance&orderId=O&productId=P", "customerId"),
        ("activity=newInstance&customerId=C&productId=P", "orderId"),
        (
            "activity=newInstance&customerId=C&orderId=O&productId=%20",
            "productId",
        ),
        (
            "activity=refreshInstance&instanceId=I&expireTime=20200101000000",
            "orderId",
        ),
        (
            "activity=refreshInstance&orderId=O&expireTime=20200101000000",
            "instanceId",
        ),
        ("activity=expireInstance&instanceId=I", "orderId"),
        ("activity=releaseInstance&orderId=O", "instanceId"),
        (
            "activity=upgrade&orderId=O&skuCode=S&productId=P",
            "instanceId",
        ),
        (
            "activity=instanceStatus&instanceStatus=FREEZE",
            "instanceId",
        ),
        ("activity=queryInstance", "instanceId"),
        ("activity=getLicense&customerId=C&orderId=O", "productId"),
        (
            "activity=refreshLicense&orderId=O&expireTime=20200101000000",
            "instanceId",
        ),
        ("activity=expireLicense&orderId=O", "instanceId"),
        ("activity=releaseLicense&orderId=O", "instanceId"),
    ] {
        let err = parse(q).unwrap_err();
        assert_eq!(err, RequestError::MissingField(field), "{q}");
        assert_eq!(err.result_code(), ResultCode::InvalidParam);
        assert_eq!(err.to_string(), format!("missing mandatory field: {field}"));
    }
}

#[test]
fn activity_errors_list_the_route() {
    assert_eq!(parse("orderId=O"), Err(RequestError::MissingActivity));
    assert_eq!(
        parse("activity=&orderId=O"),
        Err(RequestError::MissingActivity)
    );
    let msg = parse("activity=getLicenseAsync").unwrap_err().to_string();
    for a in LegacyActivity::ALL {
        assert!(msg.contains(a.name()), "{msg}");
    }
    assert!(msg.len() <= 255, "{}", msg.len());
    // Per route: the other route's activities are refused and only the route's are listed.
    let saas = parse_legacy_on(LegacyRoute::Saas, &query("activity=getLicense")).unwrap_err();
    let msg = saas.to_string();
    assert!(msg.contains("\"getLicense\""));
    assert!(msg.ends_with(
        "supported activities: newInstance, refreshInstance, expireInstance, releaseInstance, upgrade, instanceStatus, queryInstance"
    ), "{msg}");
    let license =
        parse_legacy_on(LegacyRoute::License, &query("activity=newInstance")).unwrap_err();
    assert!(license.to_string().ends_with(
        "supported activities: getLicense, refreshLicense, expireLicense, releaseLicense"
    ));
    assert!(parse_legacy_on(
        LegacyRoute::License,
        &query("activity=expireLicense&instanceId=I&orderId=O")
    )
    .is_ok());
    let long = parse(&format!("activity={}", "x".repeat(1000))).unwrap_err();
    assert!(long.to_string().len() <= 255);
}

#[test]
fn test_flag_and_first_value() {
    let base = "activity=expireInstance&instanceId=I&orderId=O";
    for (flag, debug) in [
        ("&testFlag=1", true),
        ("&testFlag=0", false),
        ("", false),
        ("&testFlag=", false),
        ("&testFlag=true", false),
        ("&testFlag=+1", false),
        ("&testFlag=1&testFlag=0", true),
        ("&testFlag=0&testFlag=1", false),
    ] {
        assert_eq!(
            parse(&format!("{base}{flag}")).unwrap().is_debug(),
            debug,
            "{flag}"
        );
    }
    let LegacyRequest::ExpireInstance(r) = parse(&format!("{base}&instanceId=J")).unwrap() else {
        panic!()
    };
    assert_eq!(r.instance_id, "I");
}

// ---- saasExtendParams --------------------------------------------------------------------------

#[test]
fn extend_params_decoding() {
    let json =
        r#"[{"name":"idNumber","value":"110101199001011234"},{"name":"region","value":"华北+"}]"#;
    let expected = vec![
        ("idNumber".to_owned(), "110101199001011234".to_owned()),
        ("region".to_owned(), "华北+".to_owned()),
    ];
    let b64 = STANDARD.encode(json);
    assert_eq!(decode_extend_params(&b64).unwrap(), expected);
    assert_eq!(
        decode_extend_params(b64.trim_end_matches('=')).unwrap(),
        expected
    );
    // `+` that arrived as a space (form decoding) and MIME line breaks.
    let with_plus = "W3sibmFtZSI6ImsiLCJ2YWx1ZSI6ImE+YiJ9XQ==";
    let pair = vec![("k".to_owned(), "a>b".to_owned())];
    assert_eq!(decode_extend_params(with_plus).unwrap(), pair);
    assert_eq!(
        decode_extend_params(&with_plus.replace('+', " ")).unwrap(),
        pair
    );
    assert_eq!(
        decode_extend_params(&format!("{}\r\n{}", &with_plus[..20], &with_plus[20..])).unwrap(),
        pair
    );
    // Lenient elements: numbers as text, missing value empty, nameless entries skipped.
    let mixed =
        STANDARD.encode(r#"[{"name":"n","value":7},{"name":"m"},{"value":"x"},3,{"name":" "}]"#);
    assert_eq!(
        decode_extend_params(&mixed).unwrap(),
        vec![
            ("n".to_owned(), "7".to_owned()),
            ("m".to_owned(), String::new())
        ]
    );
    assert_eq!(
        decode_extend_params(&STANDARD.encode("[]")).unwrap(),
        vec![]
    );
}

#[test]
fn extend_params_errors_name_the_field() {
    for bad in [
        "!!!".to_owned(),
        "W3sibm".to_owned(),
        STANDARD.encode("not json"),
        STANDARD.encode(r#"{"name":"k","value":"v"}"#),
        STANDARD.encode(b"[\"\xff\"]"),
        String::new(),
    ] {
        let err = decode_extend_params(&bad).unwrap_err();
        assert!(
            matches!(
                err,
                RequestError::InvalidField {
                    field: "saasExtendParams",
                    ..
                }
            ),
            "{bad:?}: {err:?}"
        );
        assert!(err.to_string().contains("saasExtendParams"));
    }
    // And through the parser.
    assert!(matches!(
        parse(&format!("{NEW_INSTANCE}&saasExtendParams=%21%21")),
        Err(RequestError::InvalidField {
            field: "saasExtendParams",
            ..
        })
    ));
}

// ---- answers -----------------------------------------------------------------------------------

fn body(answer: &koogate_protocol::Answer) -> String {
    String::from_utf8(answer.render()).unwrap()
}

#[test]
fn new_instance_answer_example() {
    let password = aes_credentials::encrypt_with_iv(
        LEGACY_KEY,
        EncryptType::Aes256,
        "A1b2C3d4E5f6G7h8",
        "Huawei@123",
    )
    .unwrap();
    assert_eq!(password, "A1b2C3d4E5f6G7h88LoV0O8xvmyy1wlKoHCbaA==");
    let user = aes_credentials::encrypt(
        &mut rand::rngs::OsRng,
        LEGACY_KEY,
        EncryptType::Aes256,
        "admin",
    )
    .unwrap();
    let app = V1AppInfo {
        front_end_url: "https://app.example.com".into(),
        admin_url: Some("https://app.example.com/admin".into()),
        user_name: Some(user.clone()),
        password: Some(password.clone()),
        memo: Some("请修改密码".into()),
    };
    let answer = new_instance_answer(
        "61e834ba-7b97-4418-b8f7-e5345137278c",
        EncryptType::Aes256,
        Some(&app),
    );
    let text = body(&answer);
    assert!(text.starts_with(
        r#"{"resultCode":"000000","resultMsg":"success.","encryptType":"1","instanceId":"61e834ba-7b97-4418-b8f7-e5345137278c","appInfo":{"#
    ), "{text}");
    assert!(text.is_ascii());
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed["appInfo"]["password"], password.as_str());
    assert_eq!(parsed["appInfo"]["frontEndUrl"], "https://app.example.com");
    assert_eq!(parsed["appInfo"]["memo"], "请修改密码");
    let user_back = aes_credentials::decrypt(
        LEGACY_KEY,
        EncryptType::Aes256,
        parsed["appInfo"]["userName"].as_str().unwrap(),
    );
    assert_eq!(user_back.as_deref(), Ok("admin"));
    assert_eq!(
        body(&new_instance_answer("i", EncryptType::Aes128, None)),
        r#"{"resultCode":"000000","resultMsg":"success.","encryptType":"2","instanceId":"i"}"#
    );
    assert!(!format!("{app:?}").contains(&password));
}

#[test]
fn query_instance_answer_shape() {
    let info = [
        V1InstanceInfo {
            instance_id: "a".into(),
            app_info: Some(V1AppInfo {
                front_end_url: "https://app.example.com".into(),
                admin_url: None,
                user_name: None,
                password: None,
                memo: None,
            }),
            usage_info: vec![],
        },
        V1InstanceInfo {
            instance_id: "b".into(),
            app_info: None,
            usage_info: vec![V1UsageInfo {
                related_instance_id: Some("c".into()),
                usage_value: serde_json::Number::from_f64(12.5).unwrap(),
                statistical_time_ms: 1_669_257_378_256,
                dashboard_url: None,
            }],
        },
    ];
    assert_eq!(
        body(&query_instance_answer(
            ResultCode::Success,
            EncryptType::Aes256,
            &info
        )),
        r#"{"resultCode":"000000","resultMsg":"success.","encryptType":"1","info":[{"appInfo":{"frontEndUrl":"https://app.example.com"},"instanceId":"a"},{"instanceId":"b","usageInfo":[{"relatedInstanceId":"c","statisticalTime":"20221124023618256","usageValue":12.5}]}]}"#
    );
    assert_eq!(
        body(&query_instance_answer(
            ResultCode::InstanceNotFound,
            EncryptType::Aes256,
            &[]
        )),
        r#"{"resultCode":"000003","resultMsg":"instance is invalid","encryptType":"1"}"#
    );
}

#[test]
fn get_license_answer_example() {
    assert_eq!(
        body(&get_license_answer(
            "4ef28f-312d3d-gad335f-3132hkf",
            "LIC-EXAMPLE-0001"
        )),
        r#"{"resultCode":"000000","resultMsg":"success.","license":"LIC-EXAMPLE-0001","instanceId":"4ef28f-312d3d-gad335f-3132hkf"}"#
    );
}
