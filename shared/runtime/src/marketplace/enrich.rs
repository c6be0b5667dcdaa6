//! Query Order enrichment of callbacks (newInstance with a thin body, upgradeInstance,
//! orderNotify).
//!
//! Decision: enrichment runs **inside** the callback, before its state change, bounded by a
//! third of the time the callback has left and never more than the per-attempt timeout per try.
//! On Lambda nothing may run after the answer is returned (the environment can be frozen), and
//! the callback must answer within its 4 s budget either way, so a slow or failing marketplace
//! only leaves the details missing (logged with the code); it never changes or delays the
//! answer beyond that bound. Details missing on a record can be fetched later with
//! `koogate`'s library call [`crate::marketplace::Marketplace::query_order`].

use std::time::{Duration, Instant};

use koogate_store::records::OrderDetails;

use super::Retry;
use crate::config::Enrichment;
use crate::App;

/// Query Order for `(order_id, order_line_id)` within the callback's budget, or `None` when
/// enrichment is off, no IAM AK/SK is configured, the traffic is debug (the console's test
/// orders are not real), or the marketplace did not answer in time.
pub async fn order_details(
    app: &App,
    debug: bool,
    order_id: &str,
    order_line_id: Option<&str>,
    now_ms: i64,
    deadline_ms: i64,
) -> Option<OrderDetails> {
    if debug || app.config.enrichment == Enrichment::Off {
        return None;
    }
    let m = app.marketplace().filter(|m| m.has_iam())?;
    let left = u64::try_from(deadline_ms.saturating_sub(now_ms)).unwrap_or(0);
    let budget = Duration::from_millis(left / 3);
    if budget < Duration::from_millis(50) {
        return None;
    }
    let retry = Retry::within(
        Instant::now() + budget,
        m.settings().callback_attempt_timeout,
    );
    match m.query_order(order_id, order_line_id, retry).await {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!(error = %e, "order details not fetched; the record keeps what the callback said");
            None
        }
    }
}
