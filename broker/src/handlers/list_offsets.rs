//! ListOffsets (key 2): earliest (-2), latest (-1, the high watermark),
//! max timestamp (-3, KIP-734), earliest local (-4, the same as earliest
//! without tiered storage), and lookups by timestamp: the first offset whose
//! record timestamp is at least the target, through the time index and then
//! inside the batch it names.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use skein_protocol::record_batch::{batches, first_record_at_or_after};
use skein_storage::StoredBatch;

use super::Context;
use crate::partition::{Partition, PartitionError};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

pub(super) fn handle(ctx: &Context, request: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let mut response = ListOffsetsResponse::default();
    for topic_request in request.topics {
        let topic = ctx.cluster.topic(&topic_request.name);
        let mut topic_response = ListOffsetsTopicResponse::default();
        topic_response.name = topic_request.name;
        for wanted in topic_request.partitions {
            let mut answer = ListOffsetsPartitionResponse::default();
            answer.partition_index = wanted.partition_index;
            let partition = topic.as_ref().and_then(|t| t.partition(wanted.partition_index));
            let result = match partition {
                Some(partition) if !partition.is_deleted() => lookup(ctx, partition, wanted.timestamp),
                _ => Err(PartitionError::new(ResponseError::UnknownTopicOrPartition, "unknown partition")),
            };
            match result {
                Ok((offset, timestamp)) => {
                    answer.offset = offset;
                    answer.timestamp = timestamp;
                    if version >= 4 {
                        answer.leader_epoch = partition.map_or(0, |p| ctx.cluster.replicator.leader_epoch(p.log));
                    }
                }
                Err(error) => {
                    answer.error_code = error.code.code();
                    answer.offset = -1;
                    answer.timestamp = -1;
                }
            }
            topic_response.partitions.push(answer);
        }
        response.topics.push(topic_response);
    }
    response
}

/// The (offset, timestamp) answer for one partition.
fn lookup(ctx: &Context, partition: &Partition, target: i64) -> Result<(i64, i64), PartitionError> {
    let store = &**ctx.cluster.replicator.store();
    let storage_error =
        |e: skein_storage::StorageError| PartitionError::new(ResponseError::KafkaStorageError, e.to_string());
    let high_watermark = partition.high_watermark();
    match target {
        LATEST => Ok((high_watermark, -1)),
        EARLIEST | EARLIEST_LOCAL => Ok((partition.log_start_offset(), -1)),
        MAX_TIMESTAMP => {
            let found = store.find_max_timestamp(partition.log).map_err(storage_error)?;
            Ok(found
                .filter(|batch| batch.last_offset < high_watermark)
                .and_then(|batch| first_record_at_or_after(&batch.bytes, batch.max_timestamp))
                .unwrap_or((-1, -1)))
        }
        target if target >= 0 => {
            let found = store.find_by_timestamp(partition.log, target).map_err(storage_error)?;
            Ok(found
                .filter(|batch| batch.last_offset < high_watermark)
                .and_then(|batch| record_in(&batch, target))
                .unwrap_or((-1, -1)))
        }
        other => Err(PartitionError::new(ResponseError::InvalidRequest, format!("unsupported timestamp {other}"))),
    }
}

fn record_in(batch: &StoredBatch, target: i64) -> Option<(i64, i64)> {
    batches(&batch.bytes).find_map(|(_, bytes)| first_record_at_or_after(&bytes, target))
}
