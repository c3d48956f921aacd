//! FindCoordinator (key 10): the node coordinating a consumer group, which
//! is the leader of the group's coordinator shard. v0-3 ask for one key,
//! v4+ for a batch. Transactional and share-group coordinators do not exist
//! yet and are refused per key.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::{str_bytes, Context};

const KEY_TYPE_GROUP: i8 = 0;

fn coordinator_for(ctx: &Context, key: StrBytes, key_type: i8) -> Coordinator {
    let mut coordinator = Coordinator::default();
    if key_type != KEY_TYPE_GROUP {
        coordinator.key = key;
        coordinator.node_id = (-1).into();
        coordinator.port = -1;
        coordinator.error_code = ResponseError::InvalidRequest.code();
        coordinator.error_message = Some(str_bytes(format!("coordinator key type {key_type} is not supported")));
        return coordinator;
    }
    coordinator.node_id = ctx.groups.coordinator_node(&key).into();
    coordinator.key = key;
    // One node today: the coordinator is this node, reached as advertised.
    coordinator.host = str_bytes(ctx.config.advertised.host.clone());
    coordinator.port = i32::from(ctx.config.advertised.port);
    coordinator
}

pub(super) fn handle(ctx: &Context, request: FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    let mut response = FindCoordinatorResponse::default();
    if version >= 4 {
        response.coordinators =
            request.coordinator_keys.into_iter().map(|key| coordinator_for(ctx, key, request.key_type)).collect();
        return response;
    }
    let found = coordinator_for(ctx, request.key, request.key_type);
    response.error_code = found.error_code;
    if version >= 1 {
        response.error_message = found.error_message;
    }
    response.node_id = found.node_id;
    response.host = found.host;
    response.port = found.port;
    response
}
