//! Per-callback CPU cost of the pure protocol steps (docs/PERFORMANCE.md).
//!
//! `cargo bench -p koogate-protocol` (or `-- --quick` for a short run).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use koogate_protocol::aes_credentials::{self, EncryptType};
use koogate_protocol::{basic_signature, body_sign, parse_basic, Answer};

const KEY: &str = "test-access-key-123";
const NONCE: &str = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA";
const TS: &str = "1680508066618";

const BODIES: &[(&str, &str)] = &[
    (
        "newInstance",
        r#"{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"0"}"#,
    ),
    (
        "newInstance_fat",
        r#"{"activity":"newInstance","buyerInfo":{"customerId":"688055390f3049f283fe9f1aa90f1858","customerName":"buyer_demo_01","userId":"1e86066c22754361933f607df834e4fe","userName":"buyer_demo_01","mobilePhone":"13800000000","email":"buyer@example.com"},"orderInfo":[{"businessId":"8a2c4e6f-405a-4f8d-8e24-f41090522646","orderId":"CS2210101920BWXLK","trialFlag":"0","orderAmount":12.78,"chargingMode":"PERIOD","periodType":"month","periodNumber":5,"provisionType":1,"productInfo":[{"skuCode":"a63ee5c9-4f86-11ed-9f95-fa163e8cb3b2","productId":"OFFI788963615933718528","linearValue":20}],"createTime":"20221024194509","expireTime":"20221224194509","extendParams":[{"name":"emailDomainName","value":"test.example.com"}]}],"testFlag":"1"}"#,
    ),
    (
        "queryInstance",
        r#"{"activity":"queryInstance","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","testFlag":"0"}"#,
    ),
    (
        "refreshInstance",
        r#"{"activity":"refreshInstance","expireTime":"20221124023618256","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","productId":"OFFI461867333479178240","scene":"RENEWAL","testFlag":"1"}"#,
    ),
    (
        "updateInstanceStatus",
        r#"{"activity":"updateInstanceStatus","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","status":"FREEZE","testFlag":"1"}"#,
    ),
    (
        "releaseInstance",
        r#"{"activity":"releaseInstance","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}"#,
    ),
    (
        "upgradeInstance",
        r#"{"activity":"upgradeInstance","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"0"}"#,
    ),
    (
        "changeInstanceCheck",
        r#"{"activity":"changeInstanceCheck","instanceId":"10e758d0-31ad-4c4b-8f1b-81d03469a10e","productInfo":{"productId":"OFFI461867333479178240","skuCode":"a63ee5c9-4f86-11ed-9f95-fa163e8cb3b2","linearValue":50,"productName":"Basic edition"},"testFlag":"1"}"#,
    ),
    (
        "getLicenseAsync",
        r#"{"activity":"getLicenseAsync","eventId":"8e5694c8","instanceId":"RA24LVS","effectiveTime":"2023-10-27 10:30:15 z","expireTime":"2024-10-27 10:30:15 z","deviceFingerprint":"86034e260e1"}"#,
    ),
];

fn verify(c: &mut Criterion) {
    let keys = vec![KEY.to_owned()];
    let body = BODIES[0].1.as_bytes();
    let signature = basic_signature::sign(KEY, NONCE, TS, body).to_uppercase();
    c.bench_function("basic_verify/raw_hit", |b| {
        b.iter(|| {
            basic_signature::verify(
                black_box(&keys),
                NONCE,
                TS,
                black_box(&signature),
                black_box(body),
            )
        })
    });

    // The marketplace signed the sorted form; our copy of the body arrived unsorted.
    let unsorted = r#"{"testFlag":"0","orderLineId":"CS2211181819B4LVS-000001","orderId":"CS2211181819B4LVS","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","activity":"newInstance"}"#;
    let canonical_signature = basic_signature::sign(KEY, NONCE, TS, body);
    c.bench_function("basic_verify/canonical_fallback", |b| {
        b.iter(|| {
            basic_signature::verify(
                black_box(&keys),
                NONCE,
                TS,
                black_box(&canonical_signature),
                black_box(unsorted.as_bytes()),
            )
        })
    });

    let rotated = vec!["current-key".to_owned(), KEY.to_owned()];
    c.bench_function("basic_verify/previous_key_miss_then_hit", |b| {
        b.iter(|| {
            basic_signature::verify(
                black_box(&rotated),
                NONCE,
                TS,
                black_box(&signature),
                black_box(body),
            )
        })
    });
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_basic");
    for (name, body) in BODIES {
        group.bench_with_input(BenchmarkId::from_parameter(name), body, |b, body| {
            b.iter(|| parse_basic(black_box(body.as_bytes())))
        });
    }
    group.finish();
}

fn respond(c: &mut Criterion) {
    c.bench_function("answer/new_instance_render_and_body_sign", |b| {
        b.iter(|| {
            let body = Answer::ok()
                .with(
                    "instanceId",
                    black_box("87b94795-0603-4e24-8ae5-69420d60e3c8"),
                )
                .render();
            let header = body_sign::header_value(KEY, &body);
            (body, header)
        })
    });
    c.bench_function("aes/encrypt_aes256", |b| {
        b.iter(|| {
            aes_credentials::encrypt(
                &mut rand::rngs::OsRng,
                black_box(KEY),
                EncryptType::Aes256,
                black_box("Init#Pass1"),
            )
            .unwrap()
        })
    });
    c.bench_function("aes/encrypt_with_iv_aes128", |b| {
        b.iter(|| {
            aes_credentials::encrypt_with_iv(
                black_box(KEY),
                EncryptType::Aes128,
                "A1b2C3d4E5f6G7h8",
                black_box("Huawei@123"),
            )
        })
    });
}

criterion_group!(benches, verify, parse, respond);
criterion_main!(benches);
