//! ConsumerGroupDescribe (key 69, KIP-848): epochs, assignor and members
//! (subscriptions, current and target assignments) of consumer-protocol
//! groups. Classic and unknown groups get GROUP_ID_NOT_FOUND, on which the
//! admin client falls back to DescribeGroups.

use std::collections::BTreeSet;

use kafka_protocol::messages::consumer_group_describe_response::{Assignment, DescribedGroup, Member, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, GroupId, TopicName};
use uuid::Uuid;

use super::{str_bytes, Context};
use crate::groups::assignor::TopicPartition;

fn wire_assignment(ctx: &Context, partitions: &BTreeSet<TopicPartition>) -> Assignment {
    let mut assignment = Assignment::default();
    for (topic, partition) in partitions {
        match assignment.topic_partitions.last_mut() {
            Some(last) if last.topic_id == *topic => last.partitions.push(*partition),
            _ => {
                let mut entry = TopicPartitions::default();
                entry.topic_id = *topic;
                entry.topic_name = TopicName(str_bytes(topic_name(ctx, *topic)));
                entry.partitions = vec![*partition];
                assignment.topic_partitions.push(entry);
            }
        }
    }
    assignment
}

fn topic_name(ctx: &Context, id: Uuid) -> String {
    ctx.cluster.topic_by_id(id).map(|t| t.name.to_string()).unwrap_or_default()
}

fn describe(ctx: &Context, group_id: GroupId, version: i16) -> DescribedGroup {
    let mut described = DescribedGroup::default();
    described.authorized_operations = i32::MIN;
    match ctx.groups.consumer_describe(&group_id) {
        Err(error) => {
            described.error_code = error.code();
            described.error_message = Some(str_bytes(format!("Group {} is not a consumer group.", &*group_id)));
        }
        Ok(view) => {
            described.group_state = str_bytes(view.state);
            described.group_epoch = view.group_epoch;
            described.assignment_epoch = view.assignment_epoch;
            described.assignor_name = str_bytes(view.assignor);
            described.members = view
                .members
                .into_iter()
                .map(|(m, target)| {
                    let mut member = Member::default();
                    member.member_id = str_bytes(m.id);
                    member.instance_id = m.instance_id.map(str_bytes);
                    member.rack_id = m.rack_id.map(str_bytes);
                    member.member_epoch = m.epoch;
                    member.client_id = str_bytes(m.client_id);
                    member.client_host = str_bytes(m.client_host);
                    member.subscribed_topic_names =
                        m.subscribed_names.into_iter().map(|n| TopicName(str_bytes(n))).collect();
                    member.subscribed_topic_regex = m.subscribed_regex.map(str_bytes);
                    member.assignment = wire_assignment(ctx, &m.assigned);
                    member.target_assignment = wire_assignment(ctx, &target);
                    if version >= 1 {
                        // KIP-1099: 0 for a classic member of a mixed group, 1 for a consumer one.
                        member.member_type = if m.classic.is_some() { 0 } else { 1 };
                    }
                    member
                })
                .collect();
        }
    }
    described.group_id = group_id;
    described
}

pub(super) fn handle(
    ctx: &Context,
    request: ConsumerGroupDescribeRequest,
    version: i16,
) -> ConsumerGroupDescribeResponse {
    let mut response = ConsumerGroupDescribeResponse::default();
    response.groups = request.group_ids.into_iter().map(|id| describe(ctx, id, version)).collect();
    response
}
