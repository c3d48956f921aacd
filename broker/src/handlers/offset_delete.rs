//! OffsetDelete (key 47): removes a group's committed offsets for some
//! partitions, unless the group's members subscribe to the topic
//! (GROUP_SUBSCRIBED_TO_TOPIC).

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::Context;
use crate::groups::embedded::subscribes_to;

pub(super) async fn handle(ctx: &Context, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let mut response = OffsetDeleteResponse::default();
    let mut partitions = Vec::new();
    for topic in &request.topics {
        for partition in &topic.partitions {
            partitions.push((topic.name.to_string(), partition.partition_index));
        }
    }
    let subscribed = |subscriptions: &[Bytes], topic: &str| subscriptions.iter().any(|m| subscribes_to(m, topic));
    let results = match ctx.groups.delete_offsets(&request.group_id, &partitions, subscribed).await {
        Ok(results) => results,
        Err(error) => {
            response.error_code = error.code();
            return response;
        }
    };
    let mut results = results.into_iter();
    for topic in request.topics {
        let mut wire = OffsetDeleteResponseTopic::default();
        wire.partitions = topic
            .partitions
            .iter()
            .map(|p| {
                let mut partition = OffsetDeleteResponsePartition::default();
                partition.partition_index = p.partition_index;
                let result = results.next().unwrap_or(Err(ResponseError::UnknownServerError));
                partition.error_code = result.err().map_or(0, |e| e.code());
                partition
            })
            .collect();
        wire.name = topic.name;
        response.topics.push(wire);
    }
    response
}
