//! Fetch (key 1): whole committed batches from each requested partition.
//!
//! Limits: `partition_max_bytes` per partition and `max_bytes` per response,
//! except that the first batch found is always returned whole so a consumer
//! can pass a batch larger than its limits (KIP-74). An offset inside a
//! batch returns that whole batch; the client skips the earlier records.
//!
//! Long-polling: with fewer than `min_bytes` available the request waits up
//! to `max_wait_ms`, woken by appends to any of its partitions (never by a
//! polling loop). Sessions (KIP-227) are not kept: every answer has session
//! id 0, which clients treat as a full, sessionless fetch.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use tokio::sync::Notify;
use uuid::Uuid;

use super::Context;
use crate::cluster::Topic;
use crate::partition::Partition;

/// Upper bound on `max_wait_ms`, so a request cannot park a task for long.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

struct Wanted {
    name: TopicName,
    topic_id: Uuid,
    topic: Option<Arc<Topic>>,
    partitions: Vec<(i32, i64, i32)>,
}

/// The response, and per partition (in the response's order) the stored
/// batches that make its record set, written as they are.
pub(super) async fn handle(ctx: &Context, request: FetchRequest, version: i16) -> (FetchResponse, Vec<Vec<Bytes>>) {
    let wanted: Vec<Wanted> = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = if version >= 13 { ctx.cluster.topic_by_id(t.topic_id) } else { ctx.cluster.topic(&t.topic) };
            let partitions =
                t.partitions.iter().map(|p| (p.partition, p.fetch_offset, p.partition_max_bytes)).collect();
            Wanted { name: t.topic, topic_id: t.topic_id, topic, partitions }
        })
        .collect();
    let max_bytes = usize::try_from(request.max_bytes).unwrap_or(0).max(1);
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let max_wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_CAP);
    let deadline = tokio::time::Instant::now() + max_wait;
    let waiter = Arc::new(Notify::new());
    loop {
        // Register before reading, so an append between the read and the
        // wait still wakes us.
        for partition in wanted.iter().flat_map(partitions_of) {
            partition.register_waiter(&waiter);
        }
        let read = read_all(ctx, &wanted, version, max_bytes);
        let now = tokio::time::Instant::now();
        if read.total_bytes >= min_bytes || read.any_error || now >= deadline {
            let mut response = FetchResponse::default();
            response.responses = read.responses;
            return (response, read.record_sets);
        }
        let _ = tokio::time::timeout_at(deadline, waiter.notified()).await;
    }
}

fn partitions_of(wanted: &Wanted) -> impl Iterator<Item = &Arc<Partition>> {
    wanted.partitions.iter().filter_map(|(index, _, _)| wanted.topic.as_ref().and_then(|t| t.partition(*index)))
}

struct ReadAll {
    responses: Vec<FetchableTopicResponse>,
    /// Per partition, in the order of `responses`.
    record_sets: Vec<Vec<Bytes>>,
    total_bytes: usize,
    any_error: bool,
}

fn read_all(ctx: &Context, wanted: &[Wanted], version: i16, max_bytes: usize) -> ReadAll {
    let mut total_bytes = 0usize;
    let mut any_error = false;
    let mut responses = Vec::with_capacity(wanted.len());
    let mut record_sets = Vec::new();
    for w in wanted {
        let mut topic_response = FetchableTopicResponse::default();
        if version >= 13 {
            topic_response.topic_id = w.topic_id;
        } else {
            topic_response.topic = w.name.clone();
        }
        for (index, offset, partition_max) in &w.partitions {
            let budget = max_bytes.saturating_sub(total_bytes);
            let partition_budget = usize::try_from(*partition_max).unwrap_or(0).min(budget);
            // Only the first data of the response may exceed the limits.
            let limit = if total_bytes == 0 { partition_budget.max(1) } else { partition_budget };
            let (data, batches) = read_partition(ctx, w, *index, *offset, limit, total_bytes == 0, version);
            any_error |= data.error_code != 0;
            let size: usize = batches.iter().map(Bytes::len).sum();
            total_bytes += size;
            record_sets.push(batches);
            if size > 0 {
                ctx.metrics.record_bytes_out(w.topic.as_ref().map_or("", |t| &t.name), size);
            }
            topic_response.partitions.push(data);
        }
        responses.push(topic_response);
    }
    ReadAll { responses, record_sets, total_bytes, any_error }
}

fn read_partition(
    ctx: &Context,
    wanted: &Wanted,
    index: i32,
    offset: i64,
    limit: usize,
    may_exceed_limit: bool,
    version: i16,
) -> (PartitionData, Vec<Bytes>) {
    let mut data = PartitionData::default();
    data.partition_index = index;
    data.records = Some(Bytes::new());
    data.aborted_transactions = Some(Vec::new());
    let unknown = if version >= 13 { ResponseError::UnknownTopicId } else { ResponseError::UnknownTopicOrPartition };
    let Some(topic) = &wanted.topic else {
        data.error_code = unknown.code();
        return (data, Vec::new());
    };
    let Some(partition) = topic.partition(index) else {
        data.error_code = ResponseError::UnknownTopicOrPartition.code();
        return (data, Vec::new());
    };
    if partition.is_deleted() {
        data.error_code = unknown.code();
        return (data, Vec::new());
    }
    if limit == 0 && !may_exceed_limit {
        data.high_watermark = partition.high_watermark();
        data.last_stable_offset = data.high_watermark;
        data.log_start_offset = partition.log_start_offset();
        return (data, Vec::new());
    }
    match partition.read(&**ctx.cluster.replicator.store(), offset, limit) {
        Ok(read) => {
            data.high_watermark = read.high_watermark;
            data.last_stable_offset = read.high_watermark;
            data.log_start_offset = read.log_start_offset;
            let fits: Vec<_> = if may_exceed_limit {
                read.batches
            } else {
                let mut used = 0usize;
                read.batches
                    .into_iter()
                    .take_while(|b| {
                        used += b.bytes.len();
                        used <= limit
                    })
                    .collect()
            };
            // The record set is these batches one after another; the
            // connection writes them as they are (no joined copy).
            let batches = fits.into_iter().map(|b| b.bytes).collect();
            return (data, batches);
        }
        Err(error) => {
            data.error_code = error.code.code();
            data.high_watermark = partition.high_watermark();
            data.last_stable_offset = data.high_watermark;
            data.log_start_offset = partition.log_start_offset();
        }
    }
    (data, Vec::new())
}
