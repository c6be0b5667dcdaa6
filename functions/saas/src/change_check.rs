//! changeInstanceCheck (D12): the provisioner decides whether a renewal may change the spec.
//! Read-only, so naturally idempotent.

use koogate_protocol::envelope::Answer;
use koogate_protocol::request::ChangeInstanceCheck;
use koogate_protocol::result_code::ResultCode;
use koogate_runtime::pipeline::store_failure;
use koogate_runtime::{Call, Outcome};
use koogate_store::{InstanceState, Partition};

use crate::answers::{not_found, ok};

const ACTIVITY: &str = "changeInstanceCheck";

pub async fn handle(call: &Call<'_>, r: &ChangeInstanceCheck) -> Outcome {
    let debug = r.test_flag;
    let partition = Partition::from_debug_flag(debug);
    let inst = match call.app.store.get_instance(partition, &r.instance_id).await {
        Ok(Some(i)) if i.state != InstanceState::Released => i,
        Ok(_) => return not_found(ACTIVITY, debug, &r.instance_id),
        Err(e) => return store_failure(Some(ACTIVITY), debug, &e),
    };
    match call.app.provisioner.check_change(&inst, &r.product).await {
        Ok(()) => ok(ACTIVITY, debug),
        Err(reason) => Outcome::answer(
            Answer::error(ResultCode::InternalError, reason.clone()),
            Some(ACTIVITY),
            debug,
        )
        .because(format!("change refused: {reason}")),
    }
}
