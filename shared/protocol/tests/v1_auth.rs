//! The V1 `authToken` (docs/protocol.md, signatures §6, D16): the §6.1 vector copied here, the `+` / `%2B`
//! decoding cases of docs/protocol.md, inbound-legacy §1.2, the POST form of §6.3 and V1 freshness.

use koogate_protocol::v1_auth::encode_component as encode;
use koogate_protocol::v1_auth::{
    self, decode_query, parse_v1_timestamp, post_timestamp, sign_get, sign_post, v1_fresh,
    Decoding, DEFAULT_WINDOW_MS,
};
use koogate_protocol::{verify_get, verify_post, TimestampError, V1Verification};

const KEY: &str = "TestAccessKey123";
const TOKEN: &str = "jLorLNOlvR4+IuMNNJ6CD0/vKJZpCuWMx7EKRowK6ms=";
const TOKEN_ENCODED: &str = "jLorLNOlvR4%2BIuMNNJ6CD0%2FvKJZpCuWMx7EKRowK6ms%3D";
const QUERY: &str = "activity=getLicense&businessId=b1&customerId=c1&orderId=CS1&productId=P1&timeStamp=20170621185532100";

fn keys(list: &[&str]) -> Vec<String> {
    list.iter().map(|k| (*k).to_owned()).collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

fn vector_params() -> Vec<(String, String)> {
    pairs(&[
        ("activity", "getLicense"),
        ("businessId", "b1"),
        ("customerId", "c1"),
        ("orderId", "CS1"),
        ("productId", "P1"),
        ("timeStamp", "20170621185532100"),
    ])
}

fn verified(v: V1Verification) -> (usize, Vec<(String, String)>, String) {
    match v {
        V1Verification::Verified {
            key_index,
            params,
            auth_token,
        } => (key_index, params, auth_token),
        other => panic!("not verified: {other:?}"),
    }
}

// ---- GET form ----------------------------------------------------------------------------------

#[test]
fn spec_vector_sign() {
    assert_eq!(sign_get(KEY, &vector_params()), TOKEN);
}

#[test]
fn spec_vector_token_percent_encoded() {
    let query = format!("{QUERY}&authToken={TOKEN_ENCODED}");
    let (index, params, token) = verified(verify_get(&keys(&[KEY]), &query));
    assert_eq!(index, 0);
    assert_eq!(params, vector_params());
    assert_eq!(token, TOKEN);
}

#[test]
fn spec_vector_token_sent_raw_keeps_its_plus() {
    // A raw `+` in the URL must not become a space; the raw `=` and `/` are fine too.
    let query = format!("authToken={TOKEN}&{QUERY}");
    let (index, params, token) = verified(verify_get(&keys(&[KEY]), &query));
    assert_eq!(index, 0);
    assert_eq!(params, vector_params());
    assert_eq!(token, TOKEN);
}

#[test]
fn token_whose_plus_became_a_space_still_verifies() {
    for token in [TOKEN.replace('+', "%20"), TOKEN.replace('+', " ")] {
        let query = format!("{QUERY}&authToken={token}");
        let (_, _, received) = verified(verify_get(&keys(&[KEY]), &query));
        assert_eq!(received, TOKEN);
    }
}

#[test]
fn values_with_percent_2b_and_plus() {
    let k = keys(&[KEY]);
    let ts = ("timeStamp", "20230327070251713");

    // `%2B` is a `+` in both decodings.
    let signed = pairs(&[("activity", "newInstance"), ("email", "ab+cd"), ts]);
    let query = format!(
        "activity=newInstance&email=ab%2Bcd&timeStamp={}&authToken={}",
        ts.1,
        encode(&sign_get(KEY, &signed))
    );
    assert_eq!(verified(verify_get(&k, &query)).1, signed);

    // A raw `+` signed as `+`: the strict pass matches and the value keeps its `+`.
    let query = format!(
        "activity=newInstance&email=ab+cd&timeStamp={}&authToken={}",
        ts.1,
        encode(&sign_get(KEY, &signed))
    );
    assert_eq!(verified(verify_get(&k, &query)).1, signed);

    // A raw `+` signed as a space (form encoding): only the form pass matches, and the params
    // come back in that decoding.
    let spaced = pairs(&[("activity", "newInstance"), ("x", "a b+c"), ts]);
    let query = format!(
        "activity=newInstance&x=a+b%2Bc&timeStamp={}&authToken={}",
        ts.1,
        encode(&sign_get(KEY, &spaced))
    );
    assert_eq!(verified(verify_get(&k, &query)).1, spaced);
}

#[test]
fn wrong_key_and_key_rotation() {
    let query = format!("{QUERY}&authToken={TOKEN_ENCODED}");
    assert_eq!(
        verify_get(&keys(&["other-key"]), &query),
        V1Verification::Mismatch
    );
    assert_eq!(verify_get(&[], &query), V1Verification::Mismatch);
    let (index, _, _) = verified(verify_get(&keys(&["current-key", KEY]), &query));
    assert_eq!(index, 1);
    // An empty key is skipped, even if the token was made with it.
    let empty_signed = sign_get("", &vector_params());
    let query = format!("{QUERY}&authToken={}", encode(&empty_signed));
    assert_eq!(verify_get(&keys(&[""]), &query), V1Verification::Mismatch);
}

#[test]
fn altered_requests_do_not_verify() {
    let k = keys(&[KEY]);
    for query in [
        format!("{QUERY}&authToken={TOKEN_ENCODED}&extra=1"),
        format!("{}&authToken={TOKEN_ENCODED}", QUERY.replace("CS1", "CS2")),
        format!("{}&authToken={TOKEN_ENCODED}", QUERY.replace("100", "101")),
        format!("{QUERY}&authToken={}", &TOKEN_ENCODED[1..]),
        format!("{QUERY}&authToken=not-base64!"),
        format!("{QUERY}&authToken=AAAA"),
    ] {
        assert_eq!(verify_get(&k, &query), V1Verification::Mismatch, "{query}");
    }
}

#[test]
fn missing_token_or_timestamp() {
    let k = keys(&[KEY]);
    assert_eq!(verify_get(&k, QUERY), V1Verification::MissingToken);
    assert_eq!(
        verify_get(&k, &format!("{QUERY}&authToken=")),
        V1Verification::MissingToken
    );
    assert_eq!(
        verify_get(&k, &format!("{QUERY}&authToken=%20")),
        V1Verification::MissingToken
    );
    assert_eq!(verify_get(&k, ""), V1Verification::MissingToken);
    let without_ts = QUERY.replace("&timeStamp=20170621185532100", "");
    assert_eq!(
        verify_get(&k, &format!("{without_ts}&authToken={TOKEN_ENCODED}")),
        V1Verification::MissingTimestamp
    );
    assert_eq!(
        verify_get(
            &k,
            &format!("{without_ts}&timeStamp=&authToken={TOKEN_ENCODED}")
        ),
        V1Verification::MissingTimestamp
    );
}

#[test]
fn first_value_of_a_repeated_name_counts() {
    let k = keys(&[KEY]);
    // The later orderId is not covered by the token and does not come back.
    let query = format!("{QUERY}&orderId=INJECTED&authToken={TOKEN_ENCODED}&authToken=junk");
    let (_, params, token) = verified(verify_get(&k, &query));
    assert_eq!(params, vector_params());
    assert_eq!(token, TOKEN);
    // A first value that differs from the signed one fails.
    let query = format!("orderId=INJECTED&{QUERY}&authToken={TOKEN_ENCODED}");
    assert_eq!(verify_get(&k, &query), V1Verification::Mismatch);
}

#[test]
fn unknown_and_empty_parameters_are_covered() {
    let signed = pairs(&[
        ("activity", "queryInstance"),
        ("instanceId", "a,b"),
        ("futureParam", ""),
        ("timeStamp", "20230327065233980"),
    ]);
    let token = sign_get(KEY, &signed);
    let query = format!(
        "activity=queryInstance&instanceId=a%2Cb&futureParam=&timeStamp=20230327065233980&authToken={}",
        encode(&token)
    );
    assert_eq!(verified(verify_get(&keys(&[KEY]), &query)).1, signed);
    // Dropping the empty parameter changes the message.
    let query = query.replace("&futureParam=", "");
    assert_eq!(verify_get(&keys(&[KEY]), &query), V1Verification::Mismatch);
}

#[test]
fn non_ascii_values_are_utf8_decoded() {
    let signed = pairs(&[
        ("customerName", "华为 用户"),
        ("timeStamp", "20230327065233980"),
    ]);
    let query = format!(
        "customerName=%E5%8D%8E%E4%B8%BA+%E7%94%A8%E6%88%B7&timeStamp=20230327065233980&authToken={}",
        encode(&sign_get(KEY, &signed))
    );
    assert_eq!(verified(verify_get(&keys(&[KEY]), &query)).1, signed);
}

#[test]
fn debug_redacts_contact_values() {
    let signed = pairs(&[
        ("mobilePhone", "IVIVIVIVIVIVIVIVsecretcipher=="),
        ("email", "IVIVIVIVIVIVIVIVothercipher=="),
        ("timeStamp", "20230327065233980"),
    ]);
    let query = format!(
        "mobilePhone={}&email={}&timeStamp=20230327065233980&authToken={}",
        encode(&signed[0].1),
        encode(&signed[1].1),
        encode(&sign_get(KEY, &signed))
    );
    let printed = format!("{:?}", verify_get(&keys(&[KEY]), &query));
    assert!(printed.starts_with("Verified"), "{printed}");
    assert!(!printed.contains("secretcipher"), "{printed}");
    assert!(!printed.contains("othercipher"), "{printed}");
}

#[test]
fn decode_query_forms() {
    assert_eq!(
        decode_query("a=x+y%2B&b=%7E", Decoding::Strict),
        pairs(&[("a", "x+y+"), ("b", "~")])
    );
    assert_eq!(
        decode_query("a=x+y%2B&b=%7E", Decoding::Form),
        pairs(&[("a", "x y+"), ("b", "~")])
    );
    assert_eq!(
        v1_auth::param(&pairs(&[("a", "1"), ("a", "2")]), "a"),
        Some("1")
    );
}

// ---- POST form ---------------------------------------------------------------------------------

/// The tenantSync example of docs/protocol.md, inbound-legacy §4.
const POST_BODY: &str = r#"{"instanceId":"huaiweitest123456","orderId":"CS1906666666ABCDE","tenantId":"68cbc86abc2018ab880d92f36422fa0e","tenantCode":"huawei","name":"huaiweitest","domainName":"https://example.tenantaccount.com","flag":1,"testFlag":0,"timeStamp":"20220413093539534"}"#;
/// Base64(HMAC-SHA256(TestAccessKey123 ‖ 20220413093539534, "domainName=…&flag=1&…&timeStamp=…")),
/// computed independently of this crate.
const POST_TOKEN: &str = "GnVcJlhPA0nKgqMzNhl5xHn2aDyKYz5S6H+x5CyYkO8=";

#[test]
fn post_vector() {
    assert_eq!(
        sign_post(KEY, POST_BODY.as_bytes()).as_deref(),
        Some(POST_TOKEN)
    );
    assert_eq!(
        verify_post(&keys(&[KEY]), POST_TOKEN, POST_BODY.as_bytes()),
        Some(0)
    );
    assert_eq!(
        verify_post(
            &keys(&["old", KEY]),
            &format!("  {POST_TOKEN} "),
            POST_BODY.as_bytes()
        ),
        Some(1)
    );
    assert_eq!(
        verify_post(
            &keys(&[KEY]),
            &POST_TOKEN.replace('+', " "),
            POST_BODY.as_bytes()
        ),
        Some(0)
    );
}

#[test]
fn post_skips_blank_null_and_auth_token_members() {
    let padded = POST_BODY.replace(
        r#""flag":1,"#,
        r#""flag":1,"blank":"  ","empty":"","nothing":null,"authToken":"ignored","#,
    );
    assert_eq!(
        verify_post(&keys(&[KEY]), POST_TOKEN, padded.as_bytes()),
        Some(0)
    );
    // The same body pretty-printed and reordered: the token covers values, not bytes.
    let reordered = r#"{
        "timeStamp": "20220413093539534", "testFlag": 0, "flag": 1,
        "domainName": "https://example.tenantaccount.com", "name": "huaiweitest",
        "tenantCode": "huawei", "tenantId": "68cbc86abc2018ab880d92f36422fa0e",
        "orderId": "CS1906666666ABCDE", "instanceId": "huaiweitest123456"
    }"#;
    assert_eq!(
        verify_post(&keys(&[KEY]), POST_TOKEN, reordered.as_bytes()),
        Some(0)
    );
}

#[test]
fn post_rejections() {
    let k = keys(&[KEY]);
    assert_eq!(
        verify_post(&keys(&["wrong"]), POST_TOKEN, POST_BODY.as_bytes()),
        None
    );
    assert_eq!(
        verify_post(
            &k,
            POST_TOKEN,
            POST_BODY.replace("huawei\"", "huawe1\"").as_bytes()
        ),
        None
    );
    assert_eq!(verify_post(&k, "", POST_BODY.as_bytes()), None);
    assert_eq!(verify_post(&k, "%2B", POST_BODY.as_bytes()), None);
    assert_eq!(verify_post(&k, POST_TOKEN, b"[1]"), None);
    assert_eq!(verify_post(&k, POST_TOKEN, b"{"), None);
    let no_ts = POST_BODY.replace(r#","timeStamp":"20220413093539534""#, "");
    assert_eq!(verify_post(&k, POST_TOKEN, no_ts.as_bytes()), None);
}

#[test]
fn post_string_holding_json_and_numeric_timestamp() {
    let body = r#"{"flag":1,"userList":"[{\"userName\":\"u1\"}]","timeStamp":20220413093539534}"#;
    let token = sign_post(KEY, body.as_bytes()).unwrap();
    assert_eq!(verify_post(&keys(&[KEY]), &token, body.as_bytes()), Some(0));
    assert_eq!(
        post_timestamp(body.as_bytes()).as_deref(),
        Some("20220413093539534")
    );
    // Same token as the GET form over the same text pairs.
    let get = sign_get(
        KEY,
        &pairs(&[
            ("flag", "1"),
            ("userList", r#"[{"userName":"u1"}]"#),
            ("timeStamp", "20220413093539534"),
        ]),
    );
    assert_eq!(token, get);
    assert_eq!(post_timestamp(b"{}"), None);
    assert_eq!(post_timestamp(b"{\"timeStamp\":\" \"}"), None);
}

// ---- freshness ---------------------------------------------------------------------------------

#[test]
fn v1_timestamps() {
    assert_eq!(
        parse_v1_timestamp("20170621185532100"),
        Ok(1_498_071_332_100)
    );
    assert_eq!(parse_v1_timestamp(""), Err(TimestampError::Empty));
    assert!(matches!(
        parse_v1_timestamp("20170621185532"),
        Err(TimestampError::BadLength { .. })
    ));
    assert_eq!(
        parse_v1_timestamp("1498071332100"),
        Err(TimestampError::BadLength {
            expected: "yyyyMMddHHmmssSSS (17 digits)",
            got: 13
        })
    );
    assert!(matches!(
        parse_v1_timestamp("20170230185532100"),
        Err(TimestampError::InvalidDate(_))
    ));
}

#[test]
fn v1_freshness_window_and_utc8() {
    let now = parse_v1_timestamp("20220413013539534").unwrap();
    // The kit example's timeStamp, written in UTC+8: 8 hours ahead of `now` as UTC.
    let ts = parse_v1_timestamp("20220413093539534").unwrap();
    assert!(!v1_fresh(ts, now, DEFAULT_WINDOW_MS, false));
    assert!(v1_fresh(ts, now, DEFAULT_WINDOW_MS, true));
    assert!(v1_fresh(
        now - DEFAULT_WINDOW_MS,
        now,
        DEFAULT_WINDOW_MS,
        false
    ));
    assert!(!v1_fresh(
        now - DEFAULT_WINDOW_MS - 1,
        now,
        DEFAULT_WINDOW_MS,
        true
    ));
    assert!(!v1_fresh(now, now, -1, true));
}
