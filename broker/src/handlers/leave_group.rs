//! LeaveGroup (key 13): members leave a classic group, which rebalances.
//! v0-2 name one member; v3+ a batch (by member id or `group.instance.id`)
//! with a result per member.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::Context;

pub(super) async fn handle(ctx: &Context, request: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let leaving: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|i| i.to_string())))
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let mut response = LeaveGroupResponse::default();
    match ctx.groups.leave(&request.group_id, &leaving).await {
        Err(error) => response.error_code = error.code(),
        Ok(results) if version < 3 => {
            response.error_code = results.first().and_then(|r| r.err()).map_or(0, |e| e.code());
        }
        Ok(results) => {
            response.members = request
                .members
                .into_iter()
                .zip(results)
                .map(|(member, result)| {
                    let mut wire = MemberResponse::default();
                    wire.member_id = member.member_id;
                    wire.group_instance_id = member.group_instance_id;
                    wire.error_code = result.err().map_or(0, |e| e.code());
                    wire
                })
                .collect();
        }
    }
    response
}
