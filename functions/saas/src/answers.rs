//! Answers shared by several activities.

use koogate_protocol::envelope::Answer;
use koogate_protocol::result_code::ResultCode;
use koogate_runtime::Outcome;

/// An unknown (or released) instance: `000003` for real traffic, `000000` for debug traffic so
/// that saved console cases keep passing when replayed (D6, D10).
pub fn not_found(activity: &'static str, debug: bool, instance_id: &str) -> Outcome {
    if debug {
        Outcome::answer(Answer::ok(), Some(activity), true)
            .because(format!("debug traffic for unknown instance {instance_id}"))
    } else {
        Outcome::answer(
            Answer::code(ResultCode::InstanceNotFound),
            Some(activity),
            false,
        )
        .because(format!("instance {instance_id} is unknown or released"))
    }
}

/// Success.
pub fn ok(activity: &'static str, debug: bool) -> Outcome {
    Outcome::answer(Answer::ok(), Some(activity), debug)
}
