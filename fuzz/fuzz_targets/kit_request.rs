//! The joint-operation kit parser `parse_kit` (docs/protocol.md (inbound-kit), D14) for every `KitOp` × `KitVersion`
//! on the same body.
//!
//! Proves: no panic for any of the ten combinations; every error answers `000002`; accepted
//! requests' accessors (`tenant_id`, `common`, `Debug`) do not panic.
#![no_main]

use koogate_protocol::kit_request::{parse_kit, KitOp, KitVersion};
use koogate_protocol::ResultCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    for op in KitOp::ALL {
        for version in [KitVersion::V2, KitVersion::V1] {
            match parse_kit(op, version, body) {
                Ok(r) => {
                    let _ = (r.tenant_id(), r.common(), format!("{r:?}"));
                }
                Err(e) => {
                    assert_eq!(e.result_code(), ResultCode::InvalidParam);
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }
});
