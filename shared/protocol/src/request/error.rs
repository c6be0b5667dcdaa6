//! [`RequestError`]: why a request was refused, for every inbound family. Each variant answers
//! `000002` (D13) with a message that names the field, so the marketplace's logs say what to fix.

use thiserror::Error;

use crate::activity::Activity;
use crate::result_code::ResultCode;

use super::MAX_BODY_BYTES;

/// Why a request body was rejected. Every variant answers `000002`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("request body exceeds {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
    /// The body is not a JSON object; the text says what is wrong and where.
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// `activity` is absent, null or blank.
    #[error("missing mandatory field: activity")]
    MissingActivity,
    /// `activity` is not one of [`Activity::ALL`]; the message lists the supported ones.
    #[error("{}", unknown_activity_message(.0, &Activity::supported_list()))]
    UnknownActivity(String),
    /// `activity` is not served on this route (V1 GET, License 2.0, `orderNotify`); the message
    /// lists the activities that are.
    #[error("{}", unknown_activity_message(activity, supported))]
    UnsupportedActivity {
        /// The received value.
        activity: String,
        /// The activities of the route, joined by `", "`.
        supported: &'static str,
    },
    /// A mandatory field is absent, null or blank.
    #[error("missing mandatory field: {0}")]
    MissingField(&'static str),
    /// A field is present but unusable (wrong type, bad format, out of range).
    #[error("invalid field {field}: {reason}")]
    InvalidField {
        /// The field's name (a path such as `productInfo.linearValue` for nested fields).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl RequestError {
    /// The result code to answer with: always `000002` (D13).
    pub fn result_code(&self) -> ResultCode {
        ResultCode::InvalidParam
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> RequestError {
        RequestError::InvalidField {
            field,
            reason: reason.into(),
        }
    }
}

impl From<RequestError> for crate::envelope::Answer {
    fn from(e: RequestError) -> Self {
        crate::envelope::Answer::error(e.result_code(), e.to_string())
    }
}

fn unknown_activity_message(name: &str, supported: &str) -> String {
    // Echo at most 40 bytes of the unknown name (whole characters) so the list of supported
    // activities fits in the 255-character resultMsg whatever the script of the name.
    const ECHO_BYTES: usize = 40;
    let mut shown = String::new();
    for c in name.chars() {
        if shown.len() + c.len_utf8() > ECHO_BYTES {
            shown.push_str("...");
            break;
        }
        shown.push(c);
    }
    format!("unsupported activity \"{shown}\"; supported activities: {supported}")
}
