//! SyncGroup (key 14): the leader hands in the assignment it computed and
//! every member receives its part once the group is stable.

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::{str_bytes, Context};
use crate::groups::classic::SyncRequest;

pub(super) async fn handle(ctx: &Context, request: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    let sync = SyncRequest {
        waiter: 0,
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|id| id.to_string()),
        generation_id: request.generation_id,
        protocol_type: request.protocol_type.map(|t| t.to_string()),
        protocol_name: request.protocol_name.map(|n| n.to_string()),
        assignments: request.assignments.into_iter().map(|a| (a.member_id.to_string(), a.assignment)).collect(),
    };
    let outcome = ctx.groups.sync(&request.group_id, sync).await;
    let mut response = SyncGroupResponse::default();
    response.error_code = outcome.error.map_or(0, |e| e.code());
    if version >= 5 {
        response.protocol_type = outcome.protocol_type.map(str_bytes);
        response.protocol_name = outcome.protocol_name.map(str_bytes);
    }
    response.assignment = outcome.assignment;
    response
}
