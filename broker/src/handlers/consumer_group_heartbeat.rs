//! ConsumerGroupHeartbeat (key 68, KIP-848): joins, heartbeats, and leaves
//! of `group.protocol=consumer` members. The broker owns the assignment;
//! the decisions are `groups::consumer`'s. v1 clients name themselves
//! (a UUID member id); v0 clients may leave that to the broker.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use uuid::Uuid;

use super::{str_bytes, Context};
use crate::groups::assignor::TopicPartition;
use crate::groups::consumer::HeartbeatRequest;

fn wire_assignment(partitions: &BTreeSet<TopicPartition>) -> Assignment {
    let mut assignment = Assignment::default();
    for (topic, partition) in partitions {
        match assignment.topic_partitions.last_mut() {
            Some(last) if last.topic_id == *topic => last.partitions.push(*partition),
            _ => {
                let mut entry = TopicPartitions::default();
                entry.topic_id = *topic;
                entry.partitions = vec![*partition];
                assignment.topic_partitions.push(entry);
            }
        }
    }
    assignment
}

pub(super) async fn handle(
    ctx: &Context,
    request: ConsumerGroupHeartbeatRequest,
    version: i16,
    client_id: &str,
    client_host: &str,
) -> ConsumerGroupHeartbeatResponse {
    let mut member_id = request.member_id.to_string();
    if version == 0 && member_id.is_empty() && request.member_epoch == 0 {
        member_id = Uuid::new_v4().to_string();
    }
    let heartbeat = HeartbeatRequest {
        member_id: member_id.clone(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.map(|id| id.to_string()),
        rack_id: request.rack_id.map(|id| id.to_string()),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_names: request.subscribed_topic_names.map(|names| names.iter().map(|n| n.to_string()).collect()),
        subscribed_regex: request.subscribed_topic_regex.map(|r| r.to_string()),
        server_assignor: request.server_assignor.map(|a| a.to_string()),
        owned: request
            .topic_partitions
            .map(|owned| owned.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p))).collect()),
        client_id: client_id.to_owned(),
        client_host: client_host.to_owned(),
    };
    let mut response = ConsumerGroupHeartbeatResponse::default();
    response.member_id = Some(str_bytes(member_id));
    match ctx.groups.consumer_heartbeat(&request.group_id, heartbeat, &ctx.cluster.topic_image()).await {
        Ok(outcome) => {
            response.member_epoch = outcome.member_epoch;
            response.heartbeat_interval_ms = ctx.groups.consumer_heartbeat_interval_ms();
            response.assignment = outcome.assignment.as_ref().map(wire_assignment);
        }
        Err((error, message)) => {
            response.error_code = error.code();
            response.error_message = Some(str_bytes(message));
            if error == ResponseError::UnknownMemberId || error == ResponseError::FencedMemberEpoch {
                response.member_epoch = -1;
            }
        }
    }
    response
}
