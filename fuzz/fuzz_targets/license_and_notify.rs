//! The License 2.0 parser `parse_license` (D21) and the order notification parser
//! `parse_order_notify` on any body.
//!
//! Proves: no panic; errors answer `000002` with a non-empty message of at most 255 bytes (it
//! goes into `resultMsg` whole); accepted requests carry the activity `peek_activity` saw (an
//! order notification is always `orderNotify`) and their accessors do not panic.
#![no_main]

use koogate_protocol::{parse_license, parse_order_notify, peek_activity, ResultCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let activity = peek_activity(body);
    match parse_license(body) {
        Ok(r) => {
            assert_eq!(activity.as_deref(), Some(r.activity().name()));
            let _ = (r.is_debug(), r.license(), format!("{r:?}"));
        }
        Err(e) => {
            assert_eq!(e.result_code(), ResultCode::InvalidParam);
            let msg = e.to_string();
            assert!(!msg.is_empty() && msg.len() <= 255, "resultMsg: {msg:?}");
        }
    }
    match parse_order_notify(body) {
        Ok(n) => {
            assert_eq!(activity.as_deref(), Some("orderNotify"));
            let _ = format!("{n:?}");
        }
        Err(e) => {
            assert_eq!(e.result_code(), ResultCode::InvalidParam);
            let msg = e.to_string();
            assert!(!msg.is_empty() && msg.len() <= 255, "resultMsg: {msg:?}");
        }
    }
});
