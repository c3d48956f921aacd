//! Heartbeat (key 12): keeps a classic member's session alive and tells it
//! when a rebalance needs it to rejoin (REBALANCE_IN_PROGRESS).

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::Context;

pub(super) fn handle(ctx: &Context, request: HeartbeatRequest) -> HeartbeatResponse {
    let instance_id = request.group_instance_id.as_deref().map(|id| id as &str);
    let result = ctx.groups.heartbeat(&request.group_id, &request.member_id, instance_id, request.generation_id);
    let mut response = HeartbeatResponse::default();
    response.error_code = result.err().map_or(0, |e| e.code());
    response
}
