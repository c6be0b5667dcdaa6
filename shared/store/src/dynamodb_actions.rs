//! The DynamoDB API actions the DynamoDB backend calls, and nothing else.
//!
//! The IAM policy in `infra/template.yaml` must grant exactly these actions on the table; a test in
//! `tests/` compares the two, so adding a call here without widening the policy (or widening the
//! policy without a call) fails the build.

/// IAM action names (`dynamodb:<Action>`) used by [`crate::dynamodb::DynamoStore`].
pub const ACTIONS_USED: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    // The joint-operation directory (its batches of 25).
    "dynamodb:BatchWriteItem",
    // The directory of a tenant, the pending usage pointers and an instance's usage records:
    // always one partition, never a Scan.
    "dynamodb:Query",
];
