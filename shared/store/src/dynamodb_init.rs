//! Creating the koogate table (`koogate store init`): `pk`/`sk` strings as the key, TTL on
//! `expires_at`, with only the CreateTable parameters GeminiDB's DynamoDB-compatible API takes
//! (docs/geminidb.md): table name, attribute definitions and key schema. A billing mode is an
//! Amazon DynamoDB matter (it refuses a table without one), so it is the caller's choice.
//!
//! Idempotent: an existing table with the same key schema is fine, TTL already enabled on
//! `expires_at` is fine. The requests: CreateTable, DescribeTable (only while the table is not yet
//! ACTIVE, or to check an existing table's key schema), DescribeTimeToLive, UpdateTimeToLive.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ProvisionedThroughput,
    ScalarAttributeType, TableDescription, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;

use crate::dynamodb::unavailable;
use crate::StoreError;

/// The TTL attribute: epoch seconds, a Number (GeminiDB requires N for its TTL column).
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// How the table is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Billing {
    /// No billing parameter at all: GeminiDB (instances and Serverless) takes none.
    None,
    /// `BillingMode=PAY_PER_REQUEST`: Amazon DynamoDB on demand, as `infra/template.yaml`.
    PayPerRequest,
    /// `ProvisionedThroughput` with these read and write capacity units (Amazon DynamoDB).
    Provisioned { read: i64, write: i64 },
}

/// What `koogate store init` does.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub table: String,
    pub billing: Billing,
    /// Enable TTL on [`TTL_ATTRIBUTE`] (koogate never relies on it: readers check expiry).
    pub ttl: bool,
}

/// What [`init_table`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// The table was created now (otherwise it existed with the right key schema).
    pub created: bool,
    /// TTL on [`TTL_ATTRIBUTE`]: `Some(true)` enabled now, `Some(false)` enabled already,
    /// `None` not asked for.
    pub ttl_enabled_now: Option<bool>,
}

fn attr(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| StoreError::Unavailable(format!("CreateTable: {e}")))
}

fn key(name: &str, t: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(t)
        .build()
        .map_err(|e| StoreError::Unavailable(format!("CreateTable: {e}")))
}

/// Whether `desc` has koogate's key schema (`pk` HASH, `sk` RANGE, both strings).
fn has_koogate_keys(desc: &TableDescription) -> bool {
    let keys = desc.key_schema();
    let defs = desc.attribute_definitions();
    let is_s = |n: &str| {
        defs.iter()
            .any(|d| d.attribute_name() == n && d.attribute_type() == &ScalarAttributeType::S)
    };
    let has = |n: &str, t: KeyType| {
        keys.iter()
            .any(|k| k.attribute_name() == n && k.key_type() == &t)
    };
    keys.len() == 2
        && has("pk", KeyType::Hash)
        && has("sk", KeyType::Range)
        && is_s("pk")
        && is_s("sk")
}

async fn describe(client: &Client, table: &str) -> Result<TableDescription, StoreError> {
    client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| unavailable("DescribeTable", &e))?
        .table
        .ok_or_else(|| StoreError::Unavailable("DescribeTable: no table description".into()))
}

/// Creates the table if it does not exist, waits until it is ACTIVE, and enables TTL.
pub async fn init_table(client: &Client, opts: &InitOptions) -> Result<InitReport, StoreError> {
    let mut req = client
        .create_table()
        .table_name(&opts.table)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?);
    match opts.billing {
        Billing::None => {}
        Billing::PayPerRequest => req = req.billing_mode(BillingMode::PayPerRequest),
        Billing::Provisioned { read, write } => {
            let pt = ProvisionedThroughput::builder()
                .read_capacity_units(read)
                .write_capacity_units(write)
                .build()
                .map_err(|e| StoreError::Unavailable(format!("CreateTable: {e}")))?;
            req = req.provisioned_throughput(pt);
        }
    }
    let (created, mut status) = match req.send().await {
        Ok(out) => (
            true,
            out.table_description
                .and_then(|d| d.table_status)
                .unwrap_or(TableStatus::Creating),
        ),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            let desc = describe(client, &opts.table).await?;
            if !has_koogate_keys(&desc) {
                return Err(StoreError::Unavailable(format!(
                    "table {} exists with another key schema (koogate needs pk HASH and sk RANGE, both strings)",
                    opts.table
                )));
            }
            (false, desc.table_status.unwrap_or(TableStatus::Active))
        }
        Err(err) => return Err(unavailable("CreateTable", &err)),
    };
    // GeminiDB's DDL is synchronous (ACTIVE at once); Amazon DynamoDB creates in the background.
    let started = std::time::Instant::now();
    while status != TableStatus::Active {
        if started.elapsed() > Duration::from_secs(120) {
            return Err(StoreError::Unavailable(format!(
                "table {} is still {} after 120 s",
                opts.table,
                status.as_str()
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        status = describe(client, &opts.table)
            .await?
            .table_status
            .unwrap_or(TableStatus::Creating);
    }
    let ttl_enabled_now = if opts.ttl {
        Some(enable_ttl(client, &opts.table).await?)
    } else {
        None
    };
    Ok(InitReport {
        created,
        ttl_enabled_now,
    })
}

/// Enables TTL on [`TTL_ATTRIBUTE`]; `false` when it was enabled already.
async fn enable_ttl(client: &Client, table: &str) -> Result<bool, StoreError> {
    let current = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| unavailable("DescribeTimeToLive", &e))?
        .time_to_live_description;
    if let Some(d) = current {
        let on = matches!(
            d.time_to_live_status(),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        );
        match d.attribute_name() {
            Some(TTL_ATTRIBUTE) if on => return Ok(false),
            Some(other) if on => {
                return Err(StoreError::Unavailable(format!(
                    "table {table} has TTL on {other:?}; koogate expects it on {TTL_ATTRIBUTE:?}"
                )))
            }
            _ => {}
        }
    }
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(TTL_ATTRIBUTE)
        .enabled(true)
        .build()
        .map_err(|e| StoreError::Unavailable(format!("UpdateTimeToLive: {e}")))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|e| unavailable("UpdateTimeToLive", &e))?;
    Ok(true)
}
