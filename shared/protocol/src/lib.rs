//! KooGallery wire protocol for the merchant side: pure functions, no I/O, no async.
//!
//! What lives here, in the order a request meets it (README, "Layout"):
//!
//! * [`activity::peek_activity`] — unverified look at `activity` to pick the key set;
//! * [`timestamp`] — request freshness (D3) and the calendar formats of the activities;
//! * [`basic_signature`] / [`kit_signature`] — the V2 URL-query signature (raw body first, then
//!   the [`canonical`] form, D1) and the kit `x-sign` header (canonical first, D2);
//! * [`request::parse_basic`] — the typed, validated V2 basic request (D13, D22);
//! * [`result_code`], [`envelope`], [`body_sign`] — the answer: result code, the ASCII-only
//!   compact body, and its `Body-Sign` header over exactly those bytes (D5);
//! * [`aes_credentials`] — AES-CBC credentials keyed by Java's SHA1PRNG (§8, D9);
//! * [`client_secret`] — the joint-operation `clientSecret`, RSA-OAEP with the three parameter
//!   sets of D15;
//! * [`sso`] — the pure parts of the joint-operation login: URLs, token and user-info answers,
//!   the return-target allow-list, cookies (docs/protocol.md (sso)).
//!
//! The other inbound families:
//!
//! * [`license_request::parse_license`] — License 2.0 merchant calls (docs/protocol.md, inbound-basic §6, D21);
//! * [`order_notify::parse_order_notify`] — the order notification (docs/protocol.md, inbound-basic §7);
//! * [`v1_auth`] — the V1 `authToken`, GET query and POST header forms, and the V1 `timeStamp`
//!   (docs/protocol.md, signatures §6, D16);
//! * [`kit_request::parse_kit`] — the five joint-operation kit sync bodies, V2 and V1
//!   (docs/protocol.md (inbound-kit), D14);
//! * [`legacy_request::parse_legacy`] — typed V1 GET requests of the SaaS V1 and old License
//!   interfaces, and [`legacy_answer`] — their answers with fields (docs/protocol.md (inbound-legacy)).
//!
//! Every function is total: malformed, hostile or oversized input yields `None` or an error
//! that says what failed, never a panic. Secrets are compared in constant time.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
#![warn(missing_docs)]

pub mod activity;
pub mod aes_credentials;
pub mod apigw_signer;
pub mod basic_signature;
pub mod body_sign;
pub mod canonical;
pub mod client_secret;
pub mod envelope;
mod json;
mod json_write;
pub mod kit_request;
pub mod kit_signature;
pub mod legacy_answer;
pub mod legacy_request;
pub mod license_request;
mod mac;
pub mod open_api;
pub mod order_notify;
pub mod request;
pub mod result_code;
pub mod sso;
pub mod timestamp;
pub mod usage_push;
pub mod v1_auth;
pub mod webhook;

pub use activity::{peek_activity, Activity};
pub use aes_credentials::{AesError, EncryptType};
pub use body_sign::BodySignError;
pub use canonical::canonical_form;
pub use client_secret::ClientSecretError;
pub use envelope::Answer;
pub use legacy_request::{parse_legacy, LegacyActivity, LegacyRequest, LegacyRoute};
pub use license_request::{parse_license, LicenseActivity, LicenseRequest};
pub use order_notify::{parse_order_notify, OrderNotify};
pub use request::{
    parse_basic, BasicRequest, ChangeInstanceCheck, FatOrder, GetLicenseAsync,
    InstanceStatusChange, NewInstance, QueryInstance, RefreshInstance, ReleaseInstance,
    RequestError, Scene, TargetProduct, UpdateInstanceStatus, UpgradeInstance, MAX_BODY_BYTES,
};
pub use result_code::ResultCode;
pub use timestamp::TimestampError;
pub use v1_auth::{verify_get, verify_post, V1Verification};
