//! DeleteGroups (key 42): deletes empty groups with their committed
//! offsets. A group with members gets NON_EMPTY_GROUP, an unknown one
//! GROUP_ID_NOT_FOUND.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::Context;

pub(super) async fn handle(ctx: &Context, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut response = DeleteGroupsResponse::default();
    for group_id in request.groups_names {
        let mut result = DeletableGroupResult::default();
        result.error_code = ctx.groups.delete_group(&group_id).await.err().map_or(0, |e| e.code());
        result.group_id = group_id;
        response.results.push(result);
    }
    response
}
