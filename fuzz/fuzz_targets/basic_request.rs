//! The V2 basic request parser `parse_basic` (D13, D22) on any body.
//!
//! Proves: no panic; every error answers `000002` with a non-empty message and renders as an
//! ASCII answer; every accepted request has the activity `peek_activity` saw, and its accessors
//! (`activity`, `is_debug`, `instance_id`, `Debug`) do not panic.
#![no_main]

use koogate_protocol::{parse_basic, peek_activity, Answer, ResultCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match parse_basic(body) {
        Ok(r) => {
            assert_eq!(peek_activity(body).as_deref(), Some(r.activity().name()));
            let _ = (r.is_debug(), r.instance_id(), format!("{r:?}"));
        }
        Err(e) => {
            assert_eq!(e.result_code(), ResultCode::InvalidParam);
            assert!(!e.to_string().is_empty());
            assert!(Answer::from(e).render().is_ascii());
        }
    }
});
