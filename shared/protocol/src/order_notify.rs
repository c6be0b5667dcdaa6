//! The order notification `orderNotify` (docs/protocol.md, inbound-basic §7).
//!
//! Same transport and conventions as [`crate::request::parse_basic`] (V2 URL signature with the
//! 通用接口 key), on a verified body. The notification carries identifiers only; the merchant
//! records it, answers, and fetches the order with Query Order afterwards.

use crate::request::fields::Fields;
use crate::request::{activity_of, json_object, RequestError};

/// The only activity of the order-notification interface.
pub const ORDER_NOTIFY: &str = "orderNotify";

/// A parsed `orderNotify`. The idempotency key is `(order_id, order_line_id)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderNotify {
    /// `orderId`.
    pub order_id: String,
    /// `orderLineId`.
    pub order_line_id: String,
    /// `testFlag` is `"1"` or `1` (D6). The table marks the field mandatory, but D6 reads an
    /// absent flag as real traffic, so its absence is not an error.
    pub test_flag: bool,
}

/// Parses and validates a verified `orderNotify` body.
///
/// Order of checks: size, JSON object, `activity` present and equal to `orderNotify` (else
/// [`RequestError::UnsupportedActivity`] naming it), then `orderId` and `orderLineId`.
pub fn parse_order_notify(body: &[u8]) -> Result<OrderNotify, RequestError> {
    let root = json_object(body)?;
    let name = activity_of(&root)?;
    if name != ORDER_NOTIFY {
        return Err(RequestError::UnsupportedActivity {
            activity: name,
            supported: ORDER_NOTIFY,
        });
    }
    Ok(OrderNotify {
        order_id: root.required("orderId")?,
        order_line_id: root.required("orderLineId")?,
        test_flag: root.test_flag(),
    })
}
