//! changeInstanceCheck (D12): the provisioner decides whether a renewal may change the spec.
//! Read-only, so naturally idempotent.

use koogate_protocol::envelope::Answer;
use koogate_protocol::request::ChangeInstanceCheck;
use koogate_protocol::result_code::ResultCode;
use koogate_runtime::{Call, Failure, Reply};
use koogate_store::{InstanceState, Partition};

use crate::answers::{not_found, ok};

pub async fn handle(call: &Call<'_>, r: &ChangeInstanceCheck) -> Result<Reply, Failure> {
    let partition = Partition::from_debug_flag(r.test_flag);
    let inst = match call
        .app
        .store
        .get_instance(partition, &r.instance_id)
        .await?
    {
        Some(i) if i.state != InstanceState::Released => i,
        _ => return not_found(r.test_flag, &r.instance_id),
    };
    match call.app.provisioner.check_change(&inst, &r.product).await {
        Ok(()) => ok(),
        Err(reason) => Err(Failure::new(
            Answer::error(ResultCode::InternalError, reason.clone()),
            format!("change refused: {reason}"),
        )),
    }
}
