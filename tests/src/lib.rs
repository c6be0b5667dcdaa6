//! Workspace-level tests of koogate.
//!
//! The tests live in `tests/tests/*.rs`; this library crate only exists so that Cargo has a target
//! to hang them on (and a place for helpers several of them share).
//!
//! * `tests/tests/infra_template.rs` checks `infra/template.yaml` against the code where cfn-lint
//!   cannot: the HTTP API routes equal the route table, every integration uses payload format 2.0,
//!   IAM grants exactly the DynamoDB actions the store calls, and the table has the settings the
//!   store relies on.
//!
//! The Python tools the tests use (moto, cfn-lint, cargo-lambda) are pinned in
//! `tests/requirements.txt`.
