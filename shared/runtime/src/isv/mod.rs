//! koogate's side towards the ISV's own product (README, "Connecting your product"): signed
//! events for every committed change ([`catalogue`], [`dispatch`]), provisioning, change-check
//! and license-issue requests ([`provision`]), all signed by [`client`] with Standard Webhooks.
//! The Product API (`/isv/v1`) is served by the `koogate-product-api` crate.

pub mod catalogue;
pub mod client;
pub mod dispatch;
pub mod eventbridge;
pub mod provision;
