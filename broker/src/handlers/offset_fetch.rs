//! OffsetFetch (key 9): a group's committed offsets. v1-7 ask for one
//! group, v8+ for several. Partitions without a commit answer offset -1;
//! metadata is never null (sarama cannot decode a null).

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{str_bytes, Context};

/// One partition's answer: index, committed offset, leader epoch, metadata.
type Row = (i32, i64, i32, StrBytes);

/// One group's offsets as rows grouped by topic (request order, or name
/// order when all are asked for), or the group-level error code.
fn rows(
    ctx: &Context,
    group_id: &str,
    wanted: Option<Vec<(String, i32)>>,
    member: Option<(&str, i32)>,
    version: i16,
) -> Result<Vec<(TopicName, Vec<Row>)>, i16> {
    let fetched = ctx.groups.fetch_offsets(group_id, wanted, member).map_err(|e| e.code())?;
    let mut by_topic: Vec<(String, Vec<Row>)> = Vec::new();
    for (topic, index, committed) in fetched {
        let row = match committed {
            Some(c) => (index, c.offset, if version >= 5 { c.leader_epoch } else { -1 }, str_bytes(c.metadata)),
            None => (index, -1, -1, StrBytes::default()),
        };
        match by_topic.last_mut() {
            Some((name, rows)) if *name == topic => rows.push(row),
            _ => by_topic.push((topic, vec![row])),
        }
    }
    Ok(by_topic.into_iter().map(|(name, rows)| (TopicName(str_bytes(name)), rows)).collect())
}

/// The response topics from rows. v1-7 and v8+ answers use distinct wire
/// types with the same fields, hence a macro rather than a function.
macro_rules! wire_topics {
    ($topics:expr, $topic:ident, $partition:ident) => {
        $topics
            .into_iter()
            .map(|(name, rows)| {
                let mut topic = $topic::default();
                topic.name = name;
                topic.partitions = rows
                    .into_iter()
                    .map(|(index, offset, epoch, metadata)| {
                        let mut partition = $partition::default();
                        partition.partition_index = index;
                        partition.committed_offset = offset;
                        partition.committed_leader_epoch = epoch;
                        partition.metadata = Some(metadata);
                        partition
                    })
                    .collect();
                topic
            })
            .collect()
    };
}

fn wanted_partitions<T>(topics: Option<Vec<T>>, split: impl Fn(T) -> (String, Vec<i32>)) -> Option<Vec<(String, i32)>> {
    topics.map(|topics| {
        topics
            .into_iter()
            .flat_map(|topic| {
                let (name, partitions) = split(topic);
                partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect()
    })
}

fn single_group(ctx: &Context, request: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    let wanted = wanted_partitions(request.topics, |t| (t.name.to_string(), t.partition_indexes));
    let mut response = OffsetFetchResponse::default();
    match rows(ctx, &request.group_id, wanted, None, version) {
        // v1 has no group-level error field.
        Err(code) => response.error_code = if version >= 2 { code } else { 0 },
        Ok(topics) => {
            response.topics = wire_topics!(topics, OffsetFetchResponseTopic, OffsetFetchResponsePartition);
        }
    }
    response
}

fn group_response(ctx: &Context, group: OffsetFetchRequestGroup, version: i16) -> OffsetFetchResponseGroup {
    let wanted = wanted_partitions(group.topics, |t| (t.name.to_string(), t.partition_indexes));
    let mut response = OffsetFetchResponseGroup::default();
    // v9: KIP-848 members name themselves; their epoch must be current.
    let member = group.member_id.as_deref().map(|id| (id as &str, group.member_epoch));
    match rows(ctx, &group.group_id, wanted, member, version) {
        Err(code) => response.error_code = code,
        Ok(topics) => {
            response.topics = wire_topics!(topics, OffsetFetchResponseTopics, OffsetFetchResponsePartitions);
        }
    }
    response.group_id = group.group_id;
    response
}

pub(super) fn handle(ctx: &Context, request: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version < 8 {
        return single_group(ctx, request, version);
    }
    let mut response = OffsetFetchResponse::default();
    response.groups = request.groups.into_iter().map(|group| group_response(ctx, group, version)).collect();
    response
}
