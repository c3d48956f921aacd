//! ListGroups (key 16): every group this node coordinates, with its state
//! (v4+, filterable) and type (v5+, filterable: "classic" or "consumer").

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::{str_bytes, Context};

pub(super) fn handle(ctx: &Context, request: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    // Kafka matches state and type filters case-insensitively.
    let wanted = |filter: &[kafka_protocol::protocol::StrBytes], value: &str| {
        filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
    };
    let mut response = ListGroupsResponse::default();
    response.groups = ctx
        .groups
        .list()
        .into_iter()
        .filter(|g| wanted(&request.states_filter, g.state) && wanted(&request.types_filter, g.group_type))
        .map(|g| {
            let mut listed = ListedGroup::default();
            listed.group_id = GroupId(str_bytes(g.group_id));
            listed.protocol_type = str_bytes(g.protocol_type);
            if version >= 4 {
                listed.group_state = str_bytes(g.state);
            }
            if version >= 5 {
                listed.group_type = str_bytes(g.group_type);
            }
            listed
        })
        .collect();
    response
}
