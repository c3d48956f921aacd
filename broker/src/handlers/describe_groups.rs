//! DescribeGroups (key 15): state, protocol and members of classic groups.
//! Member metadata and assignments are included while the group is
//! stable, as Kafka does. An unknown group is reported as `Dead` (v6+ also
//! with GROUP_ID_NOT_FOUND).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::{str_bytes, Context};
use crate::groups::coordinator::validate_group_id;

fn describe(ctx: &Context, group_id: kafka_protocol::messages::GroupId, version: i16) -> DescribedGroup {
    let mut described = DescribedGroup::default();
    described.authorized_operations = i32::MIN;
    if let Err(error) = validate_group_id(&group_id) {
        described.error_code = error.code();
        described.group_id = group_id;
        return described;
    }
    match ctx.groups.describe(&group_id) {
        None => {
            described.group_state = str_bytes("Dead");
            if version >= 6 {
                described.error_code = ResponseError::GroupIdNotFound.code();
                described.error_message = Some(str_bytes(format!("Group {} not found.", &*group_id)));
            }
        }
        Some(group) => {
            described.group_state = str_bytes(group.state);
            described.protocol_type = str_bytes(group.protocol_type);
            described.protocol_data = str_bytes(group.protocol);
            described.members = group
                .members
                .into_iter()
                .map(|m| {
                    let mut member = DescribedGroupMember::default();
                    member.member_id = str_bytes(m.member_id);
                    if version >= 4 {
                        member.group_instance_id = m.instance_id.map(str_bytes);
                    }
                    member.client_id = str_bytes(m.client_id);
                    member.client_host = str_bytes(m.client_host);
                    member.member_metadata = m.metadata;
                    member.member_assignment = m.assignment;
                    member
                })
                .collect();
        }
    }
    described.group_id = group_id;
    described
}

pub(super) fn handle(ctx: &Context, request: DescribeGroupsRequest, version: i16) -> DescribeGroupsResponse {
    let mut response = DescribeGroupsResponse::default();
    response.groups = request.groups.into_iter().map(|id| describe(ctx, id, version)).collect();
    response
}
