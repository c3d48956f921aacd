//! Produce (key 0). Per partition: find it, validate the batch (exactly one
//! RecordBatch v2, CRC-32C, size against `max.message.bytes`), then stage it
//! on the partition (idempotence check, offset assignment, proposal). All
//! partitions of a request are staged in order before any commit is awaited.
//!
//! acks=0 sends no response; acks=all answers once the batch has committed
//! (with `skein.fsync=always`, after the fsync that makes it durable);
//! acks=1 answers once this node's log holds it, before that fsync, as
//! Kafka's leader answers from its page cache; other values get
//! INVALID_REQUIRED_ACKS. Storage failures answer KAFKA_STORAGE_ERROR, never
//! UNKNOWN_SERVER_ERROR.

use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use skein_protocol::record_batch::{validate_single_batch, BatchError};

use super::{str_bytes, Context, OrderingGuard};
use crate::cluster::Topic;
use crate::partition::{Acknowledge, Commit, PartitionError};

/// A partition's answer, either known at staging time or after the commit.
enum Pending {
    Done(Result<i64, PartitionError>, i64),
    Committing(Commit),
}

pub(super) async fn handle(
    ctx: &Context,
    request: ProduceRequest,
    version: i16,
    ordering: Option<OrderingGuard>,
) -> Option<ProduceResponse> {
    let acks = request.acks;
    let acks_valid = matches!(acks, -1..=1);
    let mut staged = Vec::with_capacity(request.topic_data.len());
    for topic_data in request.topic_data {
        let topic = resolve_topic(ctx, &topic_data, version);
        let partitions: Vec<(i32, Pending)> = topic_data
            .partition_data
            .into_iter()
            .map(|data| {
                let pending = if acks_valid {
                    stage(ctx, topic.as_deref(), &data, version, acks)
                } else {
                    rejected(ResponseError::InvalidRequiredAcks, "acks must be -1, 0 or 1")
                };
                (data.index, pending)
            })
            .collect();
        staged.push((topic_data.name, topic_data.topic_id, partitions));
    }
    // Everything is queued in request order; later requests may now stage.
    drop(ordering);

    let mut response = ProduceResponse::default();
    for (name, topic_id, partitions) in staged {
        let mut topic_response = TopicProduceResponse::default();
        if version >= 13 {
            topic_response.topic_id = topic_id;
        } else {
            topic_response.name = name;
        }
        for (index, pending) in partitions {
            topic_response.partition_responses.push(finish(index, pending).await);
        }
        response.responses.push(topic_response);
    }
    (acks != 0).then_some(response)
}

fn resolve_topic(ctx: &Context, data: &TopicProduceData, version: i16) -> Option<std::sync::Arc<Topic>> {
    if version >= 13 {
        ctx.cluster.topic_by_id(data.topic_id)
    } else {
        ctx.cluster.topic(&data.name)
    }
}

fn rejected(code: ResponseError, message: impl Into<String>) -> Pending {
    Pending::Done(Err(PartitionError::new(code, message)), -1)
}

fn stage(ctx: &Context, topic: Option<&Topic>, data: &PartitionProduceData, version: i16, acks: i16) -> Pending {
    let unknown = if version >= 13 { ResponseError::UnknownTopicId } else { ResponseError::UnknownTopicOrPartition };
    let Some(topic) = topic else {
        return rejected(unknown, "This server does not host this topic-partition.");
    };
    let Some(partition) = topic.partition(data.index) else {
        return rejected(ResponseError::UnknownTopicOrPartition, "This server does not host this topic-partition.");
    };
    let records = data.records.clone().unwrap_or_default();
    let max_bytes = topic.max_message_bytes(&ctx.config);
    if records.len() > max_bytes {
        let message = format!("The batch of {} bytes exceeds max.message.bytes {max_bytes}.", records.len());
        return rejected(ResponseError::MessageTooLarge, message);
    }
    let header = match validate_single_batch(&records) {
        Ok(header) => header,
        Err(error) => return rejected(batch_error_code(&error), error.to_string()),
    };
    if header.is_control() {
        return rejected(ResponseError::InvalidRecord, "clients may not produce control batches");
    }
    if header.is_transactional() {
        return rejected(ResponseError::InvalidTxnState, "transactions are not supported yet");
    }
    let append_time = topic.uses_log_append_time(&ctx.config).then(now_ms);
    ctx.metrics.record_bytes_in(&topic.name, records.len());
    let acknowledge = if acks == -1 { Acknowledge::Committed } else { Acknowledge::Written };
    match partition.stage_append(&ctx.cluster.replicator, &records, &header, append_time, acknowledge) {
        Ok(commit) => Pending::Committing(commit),
        Err(error) => Pending::Done(Err(error), partition.log_start_offset()),
    }
}

fn batch_error_code(error: &BatchError) -> ResponseError {
    match error {
        BatchError::CrcMismatch { .. } | BatchError::TooShort { .. } | BatchError::LengthMismatch { .. } => {
            ResponseError::CorruptMessage
        }
        BatchError::UnsupportedMagic { .. } | BatchError::BadRecordCount { .. } | BatchError::MultipleBatches => {
            ResponseError::InvalidRecord
        }
    }
}

async fn finish(index: i32, pending: Pending) -> PartitionProduceResponse {
    let mut response = PartitionProduceResponse::default();
    response.index = index;
    let (result, log_start) = match pending {
        Pending::Done(result, log_start) => (result.map(|offset| (offset, -1)), log_start),
        Pending::Committing(commit) => match commit.await {
            Ok(outcome) => (Ok((outcome.base_offset, outcome.log_append_time_ms)), outcome.log_start_offset),
            Err(error) => (Err(error), -1),
        },
    };
    response.log_start_offset = log_start;
    match result {
        Ok((base_offset, append_time)) => {
            response.base_offset = base_offset;
            response.log_append_time_ms = append_time;
        }
        Err(error) => {
            if error.code == ResponseError::KafkaStorageError {
                tracing::error!(message = %error.message, "produce failed in storage");
            }
            response.error_code = error.code.code();
            response.base_offset = -1;
            response.log_append_time_ms = -1;
            response.error_message = Some(str_bytes(error.message));
        }
    }
    response
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
