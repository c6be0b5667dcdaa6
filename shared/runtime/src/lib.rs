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

/// Makes mimalloc the allocator of the binary that invokes it: every Lambda function's `main`
/// (and the in-process benchmark, to measure what they run). A callback makes a few hundred
/// small allocations (headers, JSON values, strings); under glibc's malloc 40 % of a
/// queryInstance's in-process CPU went to the allocator (`malloc_consolidate`, `unlink_chunk`),
/// which mimalloc's per-thread pages avoid (docs/PERFORMANCE.md §5).
///
/// A macro for the binaries, not a `#[global_allocator]` here: cargo unifies features across a
/// workspace build, so a library-level allocator would also land in `koogate`, whose `serve`
/// keeps glibc's allocator with a fixed mmap threshold — with mimalloc, 96 stalled 1 MiB bodies
/// took it to 161 MiB where glibc stays under 90 (`memory_stays_bounded_under_stalled_1_mib_bodies`).
#[cfg(feature = "mimalloc")]
#[macro_export]
macro_rules! use_mimalloc {
    () => {
        #[global_allocator]
        static ALLOCATOR: $crate::MiMalloc = $crate::MiMalloc;
    };
}

#[cfg(feature = "mimalloc")]
#[doc(hidden)]
pub use mimalloc::MiMalloc;

pub use app::App;
pub use inbound::{Inbound, Outbound};
pub use pipeline::{Call, Failure, Function, Reply};
