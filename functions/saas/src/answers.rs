//! Answers shared by several activities.

use koogate_protocol::envelope::Answer;
use koogate_protocol::result_code::ResultCode;
use koogate_runtime::{Failure, Reply};

/// An unknown (or released) instance: `000003` for real traffic, `000000` for debug traffic so
/// that saved console cases keep passing when replayed (D6, D10).
pub fn not_found(debug: bool, instance_id: &str) -> Result<Reply, Failure> {
    if debug {
        return Ok(Answer::ok().into());
    }
    Err(Failure::new(
        Answer::code(ResultCode::InstanceNotFound),
        format!("instance {instance_id} is unknown or released"),
    ))
}

/// `000000`.
pub fn ok() -> Result<Reply, Failure> {
    Ok(Answer::ok().into())
}
