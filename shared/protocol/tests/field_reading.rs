//! Pins how each family reads a field, through the public parsers: which JSON types a string,
//! integer or flag field accepts, what counts as blank, and the exact error. The families differ
//! on purpose (a kit `testFlag` is checked, a basic one is lenient; a kit `orderId` may be a
//! number, a basic `orderId` may not), so each rule is pinned where it applies. Taken from the
//! per-file readers before they were merged into one.

use koogate_protocol::kit_request::{parse_kit, KitOp, KitRequest, KitVersion};
use koogate_protocol::v1_auth::{decode_query, Decoding};
use koogate_protocol::{
    parse_basic, parse_legacy, BasicRequest, LegacyRequest, NewInstance, RequestError,
};

/// The outcome of a parse as text: `Ok(<what the test reads>)` or the error message.
fn outcome<T>(r: Result<T, RequestError>, read: impl FnOnce(T) -> String) -> String {
    match r {
        Ok(v) => format!("Ok({})", read(v)),
        Err(e) => format!("Err({e})"),
    }
}

fn release(member: &str) -> Result<BasicRequest, RequestError> {
    parse_basic(format!(r#"{{"activity":"releaseInstance"{member}}}"#).as_bytes())
}

#[test]
fn basic_required_string() {
    let read = |member: &str| {
        outcome(release(member), |r| {
            format!("{:?}", r.instance_id().unwrap_or_default())
        })
    };
    for (member, expected) in [
        (r#","instanceId":"i""#, r#"Ok("i")"#),
        (r#","instanceId":" i ""#, r#"Ok(" i ")"#),
        (
            r#","instanceId":"""#,
            "Err(missing mandatory field: instanceId)",
        ),
        (
            r#","instanceId":" \t""#,
            "Err(missing mandatory field: instanceId)",
        ),
        (
            r#","instanceId":null"#,
            "Err(missing mandatory field: instanceId)",
        ),
        ("", "Err(missing mandatory field: instanceId)"),
        (
            r#","instanceId":1"#,
            "Err(invalid field instanceId: must be a string, got a number)",
        ),
        (
            r#","instanceId":true"#,
            "Err(invalid field instanceId: must be a string, got a boolean)",
        ),
        (
            r#","instanceId":[]"#,
            "Err(invalid field instanceId: must be a string, got an array)",
        ),
        (
            r#","instanceId":{}"#,
            "Err(invalid field instanceId: must be a string, got an object)",
        ),
        (r#","instanceId":"a","instanceId":"b""#, r#"Ok("b")"#),
    ] {
        assert_eq!(read(member), expected, "{member}");
    }
}

#[test]
fn basic_optional_string() {
    let read = |value: &str| {
        outcome(
            release(&format!(r#","instanceId":"i","orderId":{value}"#)),
            |r| {
                let BasicRequest::ReleaseInstance(r) = r else {
                    panic!("not a release")
                };
                format!("{:?}", r.order_id)
            },
        )
    };
    for (value, expected) in [
        (r#""o""#, r#"Ok(Some("o"))"#),
        (r#"" o ""#, r#"Ok(Some(" o "))"#),
        (r#""""#, "Ok(None)"),
        (r#"" ""#, "Ok(None)"),
        ("null", "Ok(None)"),
        (
            "7",
            "Err(invalid field orderId: must be a string, got a number)",
        ),
        (
            "false",
            "Err(invalid field orderId: must be a string, got a boolean)",
        ),
    ] {
        assert_eq!(read(value), expected, "{value}");
    }
}

#[test]
fn basic_optional_integer() {
    let read = |value: &str| {
        let body = format!(
            r#"{{"activity":"changeInstanceCheck","instanceId":"i","productInfo":{{"productId":"p","skuCode":"s","productName":"n","linearValue":{value}}}}}"#
        );
        outcome(parse_basic(body.as_bytes()), |r| {
            let BasicRequest::ChangeInstanceCheck(r) = r else {
                panic!("not a change check")
            };
            format!("{:?}", r.product.linear_value)
        })
    };
    let not_integer = "Err(invalid field productInfo.linearValue: must be an integer)";
    for (value, expected) in [
        ("5", "Ok(Some(5))"),
        ("-0", "Ok(Some(0))"),
        (r#""5""#, "Ok(Some(5))"),
        (r#"" 5 ""#, "Ok(Some(5))"),
        (r#""""#, "Ok(None)"),
        (r#""  ""#, "Ok(None)"),
        ("null", "Ok(None)"),
        ("5.0", not_integer),
        ("1e2", not_integer),
        (r#""x""#, not_integer),
        ("true", not_integer),
        ("[]", not_integer),
        ("99999999999999999999", not_integer),
    ] {
        assert_eq!(read(value), expected, "{value}");
    }
}

#[test]
fn fat_order_reads_details_leniently() {
    let read = |order_member: &str| {
        let body = format!(
            r#"{{"activity":"newInstance","orderInfo":[{{"orderId":"o"{order_member}}}]}}"#
        );
        outcome(parse_basic(body.as_bytes()), |r| {
            let BasicRequest::NewInstance(NewInstance { fat: Some(f), .. }) = r else {
                panic!("not a fat order")
            };
            format!(
                "{:?} {:?} {:?} {:?}",
                f.order_amount, f.period_number, f.trial_flag, f.charging_mode
            )
        })
    };
    for (member, expected) in [
        (
            r#","orderAmount":12.780"#,
            r#"Ok(Some("12.780") None false None)"#,
        ),
        (
            r#","orderAmount":true"#,
            r#"Ok(Some("true") None false None)"#,
        ),
        (r#","orderAmount":" ""#, "Ok(None None false None)"),
        (r#","orderAmount":[1]"#, "Ok(None None false None)"),
        (r#","periodNumber":" 3 ""#, "Ok(None Some(3) false None)"),
        (r#","periodNumber":3.5"#, "Ok(None None false None)"),
        (r#","periodNumber":"x""#, "Ok(None None false None)"),
        (r#","trialFlag":1"#, "Ok(None None true None)"),
        (r#","trialFlag":"1""#, "Ok(None None true None)"),
        (r#","trialFlag":" 1""#, "Ok(None None false None)"),
        (r#","trialFlag":true"#, "Ok(None None false None)"),
        (r#","chargingMode":7"#, r#"Ok(None None false Some("7"))"#),
        (
            r#","chargingMode":false"#,
            r#"Ok(None None false Some("false"))"#,
        ),
    ] {
        assert_eq!(read(member), expected, "{member}");
    }
    // A wrongly typed mandatory order ID names its path.
    assert_eq!(
        read(r#","orderId":5"#),
        "Err(invalid field orderInfo[0].orderId: must be a string, got a number)"
    );
}

#[test]
fn basic_activity() {
    let read = |body: &str| outcome(parse_basic(body.as_bytes()), |r| r.activity().to_string());
    assert_eq!(read("{}"), "Err(missing mandatory field: activity)");
    assert_eq!(
        read(r#"{"activity":" "}"#),
        "Err(missing mandatory field: activity)"
    );
    assert_eq!(
        read(r#"{"activity":null}"#),
        "Err(missing mandatory field: activity)"
    );
    assert_eq!(
        read(r#"{"activity":1}"#),
        "Err(invalid field activity: must be a string, got a number)"
    );
}

fn legacy(q: &str) -> Result<LegacyRequest, RequestError> {
    parse_legacy(&decode_query(q, Decoding::Strict))
}

#[test]
fn legacy_parameters() {
    let read = |q: &str| outcome(legacy(q), |r| format!("{r:?}"));
    // Required: blank is missing; values are not trimmed; the first value counts.
    assert_eq!(
        read("activity=releaseInstance&instanceId=%20&orderId=o"),
        "Err(missing mandatory field: instanceId)"
    );
    assert_eq!(
        read("activity=releaseInstance&instanceId=%20i&orderId=o&orderId=p&orderAmount=%20"),
        r#"Ok(ReleaseInstance(V1ReleaseInstance { instance_id: " i", order_id: "o", order_amount: None, test_flag: false }))"#
    );
    // testFlag is exactly "1".
    for (flag, debug) in [("1", true), ("%201", false), ("true", false), ("0", false)] {
        let r = legacy(&format!(
            "activity=expireInstance&instanceId=i&orderId=o&testFlag={flag}"
        ))
        .unwrap();
        assert_eq!(r.is_debug(), debug, "{flag}");
    }
    // Integers: spaces around allowed, blank is absent, anything else names the parameter.
    let upgrade = |amount: &str| {
        outcome(
            legacy(&format!(
                "activity=upgrade&instanceId=i&orderId=o&skuCode=s&productId=p&amount={amount}"
            )),
            |r| {
                let LegacyRequest::Upgrade(u) = r else {
                    panic!("not an upgrade")
                };
                format!("{:?}", u.linear.amount)
            },
        )
    };
    assert_eq!(upgrade("%205%20"), "Ok(Some(5))");
    assert_eq!(upgrade("%20"), "Ok(None)");
    assert_eq!(upgrade(""), "Ok(None)");
    assert_eq!(
        upgrade("5.0"),
        "Err(invalid field amount: must be an integer)"
    );
    assert_eq!(
        read("instanceId=i"),
        "Err(missing mandatory field: activity)"
    );
    assert_eq!(
        read("activity=%20"),
        "Err(missing mandatory field: activity)"
    );
}

fn tenant(members: &str) -> Result<KitRequest, RequestError> {
    let body = format!(r#"{{"tenantId":"t","timeStamp":"1"{members}}}"#);
    parse_kit(KitOp::TenantSync, KitVersion::V2, body.as_bytes())
}

#[test]
fn kit_common_fields() {
    let read = |members: &str| {
        outcome(tenant(members), |r| {
            let c = r.common();
            format!("{:?} {} {:?}", c.instance_id, c.debug, c.time_stamp)
        })
    };
    let delete = r#","flag":0"#;
    for (members, expected) in [
        (r#","instanceId":"""#, r#"Ok("" false "1")"#),
        (r#","instanceId":" ""#, r#"Ok(" " false "1")"#),
        (
            r#","instanceId":1"#,
            "Err(invalid field instanceId: must be a string, got a number)",
        ),
        (
            r#","instanceId":null"#,
            "Err(missing mandatory field: instanceId)",
        ),
        (r#","instanceId":"i","testFlag":1"#, r#"Ok("i" true "1")"#),
        (
            r#","instanceId":"i","testFlag":" 1 ""#,
            r#"Ok("i" true "1")"#,
        ),
        (
            r#","instanceId":"i","testFlag":"0""#,
            r#"Ok("i" false "1")"#,
        ),
        (
            r#","instanceId":"i","testFlag":null"#,
            r#"Ok("i" false "1")"#,
        ),
        (
            r#","instanceId":"i","testFlag":true"#,
            "Err(invalid field testFlag: must be 0 or 1)",
        ),
        (
            r#","instanceId":"i","testFlag":"""#,
            "Err(invalid field testFlag: must be 0 or 1)",
        ),
        (
            r#","instanceId":"i","testFlag":2"#,
            "Err(invalid field testFlag: must be 0 or 1)",
        ),
        (
            r#","instanceId":"i","testFlag":1.0"#,
            "Err(invalid field testFlag: must be 0 or 1)",
        ),
        (
            r#","instanceId":"i","timeStamp":20220413"#,
            r#"Ok("i" false "20220413")"#,
        ),
        (
            r#","instanceId":"i","timeStamp":" ""#,
            "Err(missing mandatory field: timeStamp)",
        ),
    ] {
        assert_eq!(read(&format!("{delete}{members}")), expected, "{members}");
    }
}

#[test]
fn kit_flag_and_present_strings() {
    let read = |members: &str| {
        outcome(tenant(&format!(r#","instanceId":"i"{members}"#)), |r| {
            let KitRequest::Tenant(t) = r else {
                panic!("not a tenant sync")
            };
            format!("{:?} {:?} {:?}", t.flag, t.order_id, t.tenant_code)
        })
    };
    for (members, expected) in [
        (r#","flag":"0""#, r#"Ok(Delete "" "")"#),
        (r#","flag":" 0 ""#, r#"Ok(Delete "" "")"#),
        (
            r#","flag":0,"orderId":12,"tenantCode":" ""#,
            r#"Ok(Delete "12" " ")"#,
        ),
        (r#","flag":0,"orderId":null"#, r#"Ok(Delete "" "")"#),
        (
            r#","flag":0,"orderId":true"#,
            "Err(invalid field orderId: must be a string, got a boolean)",
        ),
        ("", "Err(missing mandatory field: flag)"),
        (r#","flag":null"#, "Err(missing mandatory field: flag)"),
        (
            r#","flag":3"#,
            "Err(invalid field flag: must be one of 0, 1, 2)",
        ),
        (
            r#","flag":"x""#,
            "Err(invalid field flag: must be one of 0, 1, 2)",
        ),
        (
            r#","flag":1,"tenantCode":5,"name":"n","domainName":"d""#,
            "Err(invalid field tenantCode: must be a string, got a number)",
        ),
        (
            r#","flag":1,"tenantCode":" ","name":"n","domainName":"d""#,
            "Err(missing mandatory field: tenantCode)",
        ),
    ] {
        assert_eq!(read(members), expected, "{members}");
    }
}

#[test]
fn kit_user_fields() {
    let read = |user: &str| {
        let body = format!(
            r#"{{"instanceId":"i","tenantId":"t","appId":"a","userList":[{{"userName":"u","name":"n","orgCode":"o","role":"r"{user}}}],"flag":1,"timeStamp":"1"}}"#
        );
        outcome(
            parse_kit(KitOp::AuthSync, KitVersion::V1, body.as_bytes()),
            |r| {
                let KitRequest::Auth(a) = r else {
                    panic!("not an auth sync")
                };
                let u = &a.users[0];
                format!("{} {:?} {:?}", u.enable, u.employee_type, u.work_place)
            },
        )
    };
    for (user, expected) in [
        (r#","enable":" TRUE ""#, "Ok(true None None)"),
        (r#","enable":false"#, "Ok(false None None)"),
        (
            r#","enable":1"#,
            r#"Err(invalid field userList.enable: must be "true" or "false")"#,
        ),
        (
            r#","enable":null"#,
            "Err(missing mandatory field: userList.enable)",
        ),
        (
            r#","enable":true,"extension":{"employeeType":" 2","workPlace":9}"#,
            r#"Ok(true Some(2) Some("9"))"#,
        ),
        (
            r#","enable":true,"employeeType":null,"extension":{"employeeType":2}"#,
            "Ok(true None None)",
        ),
        (
            r#","enable":true,"employeeType":"x""#,
            "Err(invalid field userList.employeeType: must be an integer)",
        ),
    ] {
        assert_eq!(read(user), expected, "{user}");
    }
}
