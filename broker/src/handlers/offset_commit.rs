//! OffsetCommit (key 8): a group's consumed positions, persisted in the
//! group's coordinator shard. Partitions of unknown topics get
//! UNKNOWN_TOPIC_OR_PARTITION; a group-level refusal (unknown member,
//! illegal generation, rebalance in progress) applies to every partition.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::Context;
use crate::groups::Committer;

fn partition_result(index: i32, error: Option<ResponseError>) -> OffsetCommitResponsePartition {
    let mut partition = OffsetCommitResponsePartition::default();
    partition.partition_index = index;
    partition.error_code = error.map_or(0, |e| e.code());
    partition
}

pub(super) async fn handle(ctx: &Context, request: OffsetCommitRequest) -> OffsetCommitResponse {
    // (topic index, partition index) of each offset handed to the coordinator.
    let mut committed_at = Vec::new();
    let mut to_commit = Vec::new();
    let mut topics: Vec<OffsetCommitResponseTopic> = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let known = ctx.cluster.topic(&topic.name);
        let mut wire = OffsetCommitResponseTopic::default();
        wire.name = topic.name.clone();
        for partition in &topic.partitions {
            let exists = known.as_ref().is_some_and(|t| t.partition(partition.partition_index).is_some());
            if exists {
                committed_at.push((topics.len(), wire.partitions.len()));
                to_commit.push((
                    topic.name.to_string(),
                    partition.partition_index,
                    partition.committed_offset,
                    partition.committed_leader_epoch,
                    partition.committed_metadata.as_deref().unwrap_or_default().to_owned(),
                ));
            }
            let error = (!exists).then_some(ResponseError::UnknownTopicOrPartition);
            wire.partitions.push(partition_result(partition.partition_index, error));
        }
        topics.push(wire);
    }
    if !to_commit.is_empty() {
        let committer = Committer {
            member_id: request.member_id.to_string(),
            instance_id: request.group_instance_id.as_ref().map(|id| id.to_string()),
            generation: request.generation_id_or_member_epoch,
        };
        let results = match ctx.groups.commit_offsets(&request.group_id, &committer, to_commit).await {
            Ok(results) => results,
            Err(error) => vec![Err(error); committed_at.len()],
        };
        for ((topic, partition), result) in committed_at.into_iter().zip(results) {
            topics[topic].partitions[partition].error_code = result.err().map_or(0, |e| e.code());
        }
    } else if let Err(error) = crate::groups::coordinator::validate_group_id(&request.group_id) {
        topics.iter_mut().flat_map(|t| t.partitions.iter_mut()).for_each(|p| p.error_code = error.code());
    }
    let mut response = OffsetCommitResponse::default();
    response.topics = topics;
    response
}
