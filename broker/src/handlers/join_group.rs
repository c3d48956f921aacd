//! JoinGroup (key 11): a member (re)joins a classic group. The answer may
//! wait for the rebalance to complete; the decisions are the state
//! machine's (`groups::classic`).

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::{str_bytes, Context};
use crate::groups::classic::{JoinOutcome, JoinRequest, Protocol};

pub(super) async fn handle(
    ctx: &Context,
    request: JoinGroupRequest,
    version: i16,
    client_id: &str,
    client_host: &str,
) -> JoinGroupResponse {
    let join = JoinRequest {
        waiter: 0,
        member_id: request.member_id.to_string(),
        new_member_id: String::new(),
        instance_id: request.group_instance_id.map(|id| id.to_string()),
        client_id: client_id.to_owned(),
        client_host: client_host.to_owned(),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version == 0 { request.session_timeout_ms } else { request.rebalance_timeout_ms },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| Protocol { name: p.name.to_string(), metadata: p.metadata })
            .collect(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    let outcome = ctx.groups.join(&request.group_id, join).await;
    response(outcome, version)
}

fn response(outcome: JoinOutcome, version: i16) -> JoinGroupResponse {
    let mut response = JoinGroupResponse::default();
    response.error_code = outcome.error.map_or(0, |e| e.code());
    response.generation_id = outcome.generation_id;
    if version >= 7 {
        response.protocol_type = outcome.protocol_type.map(str_bytes);
        response.protocol_name = outcome.protocol_name.map(str_bytes);
    } else {
        response.protocol_name = Some(str_bytes(outcome.protocol_name.unwrap_or_default()));
    }
    if version >= 9 {
        response.skip_assignment = outcome.skip_assignment;
    }
    response.leader = str_bytes(outcome.leader);
    response.member_id = str_bytes(outcome.member_id);
    response.members = outcome
        .members
        .into_iter()
        .map(|member| {
            let mut wire = JoinGroupResponseMember::default();
            wire.member_id = str_bytes(member.member_id);
            if version >= 5 {
                wire.group_instance_id = member.instance_id.map(StrBytes::from_string);
            }
            wire.metadata = member.metadata;
            wire
        })
        .collect();
    response
}
