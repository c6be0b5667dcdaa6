//! `canonical_form` (docs/protocol.md, signatures §2) and `peek_activity` on any bytes.
//!
//! Proves: neither panics; when a canonical form exists it is a fixed point (the canonical form
//! of the canonical form is itself), it is never longer than the body, it is a compact object,
//! and `peek_activity` reads the same `activity` from it as from the raw body (both take the
//! last occurrence of a repeated name), so the key set chosen before verification does not
//! depend on which form was signed.
#![no_main]

use koogate_protocol::{canonical_form, peek_activity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let activity = peek_activity(body);
    let Some(once) = canonical_form(body) else {
        return;
    };
    assert_eq!(canonical_form(&once).as_deref(), Some(once.as_slice()));
    assert!(once.len() <= body.len(), "canonical form grew");
    assert!(once.starts_with(b"{") && once.ends_with(b"}"));
    assert_eq!(peek_activity(&once), activity);
});
