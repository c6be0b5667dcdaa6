//! Counts the DynamoDB requests a client sends, per action: the tests hold koogate to its
//! request budget per callback with it. It is test instrumentation, so it lives here, not in the
//! store: a test attaches it to the client it hands to `DynamoStore::new`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

/// Counts DynamoDB requests per action by reading `X-Amz-Target` just before transmission.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    counts: Arc<[AtomicU64; ACTIONS.len()]>,
}

const ACTIONS: [&str; 9] = [
    "GetItem",
    "BatchGetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "Query",
    "CreateTable",
    "Other",
];

/// What [`RequestCounter::snapshot`] read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts(pub HashMap<&'static str, u64>);

impl RequestCounts {
    /// Requests of one action.
    pub fn get(&self, action: &str) -> u64 {
        self.0.get(action).copied().unwrap_or(0)
    }

    /// Write requests (PutItem, UpdateItem, DeleteItem, BatchWriteItem).
    pub fn writes(&self) -> u64 {
        self.get("PutItem")
            + self.get("UpdateItem")
            + self.get("DeleteItem")
            + self.get("BatchWriteItem")
    }

    /// Read requests (GetItem, BatchGetItem, Query).
    pub fn reads(&self) -> u64 {
        self.get("GetItem") + self.get("BatchGetItem") + self.get("Query")
    }

    /// The difference `self - earlier`, per action.
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        RequestCounts(
            self.0
                .iter()
                .map(|(k, v)| (*k, v.saturating_sub(earlier.get(k))))
                .collect(),
        )
    }
}

impl RequestCounter {
    /// Requests sent on the wire so far (retries included), by DynamoDB action.
    pub fn snapshot(&self) -> RequestCounts {
        RequestCounts(
            ACTIONS
                .iter()
                .zip(self.counts.iter())
                .map(|(name, n)| (*name, n.load(Ordering::Relaxed)))
                .collect(),
        )
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "koogate-request-counter"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let action = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("Other");
        let slot = ACTIONS
            .iter()
            .position(|a| *a == action)
            .unwrap_or(ACTIONS.len() - 1);
        if let Some(n) = self.counts.get(slot) {
            n.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
