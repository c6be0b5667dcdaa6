//! The request verifiers `basic_signature::verify` (V2 `signature`, D1) and
//! `kit_signature::verify` (`x-sign`, D2), and the answer's `body_sign::verify` (D5).
//!
//! Input: `key0 ␟ key1 ␟ nonce ␟ timestamp ␟ signature ␟ body` (␟ = 0xFF).
//!
//! Proves: no verifier panics on any signature text, key or body; a match never names an empty
//! key; and the round trips hold for every input: what `sign` makes with `key1` verifies (also
//! in upper-case hex) at key1's index (0 when both keys are equal), whether it was signed over
//! the raw body or over its canonical form, and `header_value` passes `body_sign::verify`.
#![no_main]

use koogate_protocol::{basic_signature, body_sign, canonical_form, kit_signature};
use koogate_protocol_fuzz::{fields, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [k0, k1, nonce, ts, sig, body] = fields::<6>(data);
    let keys = vec![text(k0).into_owned(), text(k1).into_owned()];
    let (nonce, ts, sig) = (text(nonce), text(ts), text(sig));

    for matched in [
        basic_signature::verify(&keys, &nonce, &ts, &sig, body),
        kit_signature::verify(&keys, &nonce, &ts, &sig, body),
    ]
    .into_iter()
    .flatten()
    {
        assert!(!keys[matched].is_empty(), "matched an empty key");
    }
    let _ = body_sign::verify(&keys[0], body, &sig);

    let key = &keys[1];
    let header = body_sign::header_value(key, body);
    assert_eq!(body_sign::verify(key, body, &header), Ok(()));
    if key.is_empty() {
        return;
    }
    let expected = Some(usize::from(keys[0] != *key));
    let canonical = canonical_form(body);

    let basic = basic_signature::sign(key, &nonce, &ts, body);
    assert_eq!(
        basic_signature::verify(&keys, &nonce, &ts, &basic, body),
        expected
    );
    let upper = basic.to_uppercase();
    assert_eq!(
        basic_signature::verify(&keys, &nonce, &ts, &upper, body),
        expected
    );
    let kit = kit_signature::sign(key, &nonce, &ts, body);
    assert_eq!(
        kit_signature::verify(&keys, &nonce, &ts, &kit, body),
        expected
    );
    if let Some(c) = &canonical {
        let basic = basic_signature::sign(key, &nonce, &ts, c);
        assert_eq!(
            basic_signature::verify(&keys, &nonce, &ts, &basic, body),
            expected
        );
        let kit = kit_signature::sign(key, &nonce, &ts, c);
        assert_eq!(
            kit_signature::verify(&keys, &nonce, &ts, &kit, body),
            expected
        );
    }
});
