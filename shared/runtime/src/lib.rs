//! koogate-runtime: the request pipeline every koogate function runs (design §3), and what it
//! needs around it — configuration and secrets, logs and metrics, the provisioner hook, and the
//! two adapters that feed it (AWS Lambda, and the local HTTP server of `koogate serve`).
//!
//! Pure protocol work (signatures, parsing, rendering) lives in `koogate-protocol`; storage in
//! `koogate-store`. This crate is where they meet I/O.

#![forbid(unsafe_code)]

pub mod app;
pub mod authenticate;
pub mod aws;
pub mod config;
pub mod http_guard;
pub mod https;
pub mod inbound;
pub mod isv;
pub mod lambda;
pub mod lambda_web;
pub mod local;
pub mod marketplace;
pub mod pipeline;
pub mod provisioner;
pub mod routes;
pub mod secrets;
pub mod serve_options;
pub mod telemetry;
pub mod trace_ids;
pub mod usage;
pub mod web;

/// Every koogate binary links this crate, so its allocator is set here, once. A callback makes a
/// few hundred small allocations (headers, JSON values, strings); under glibc's malloc a fifth to
/// a third of a callback's CPU went to the allocator's free-list work (`malloc_consolidate`,
/// `unlink_chunk`), which mimalloc's per-thread pages avoid (docs/PERFORMANCE.md §5). A build
/// that must use the system allocator turns the default `mimalloc` feature off.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use app::App;
pub use inbound::{Inbound, Outbound};
pub use pipeline::{Call, Function, Outcome, Reply};
