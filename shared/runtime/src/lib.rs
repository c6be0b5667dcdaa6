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

pub use app::App;
pub use inbound::{Inbound, Outbound};
pub use pipeline::{Call, Function, Outcome, Reply};
