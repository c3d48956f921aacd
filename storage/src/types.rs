use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Compact numeric id of one partition's log, allocated with the topic.
/// Keys start with it, so one partition's entries are contiguous on disk.
pub type LogId = u32;

/// Id of a replication group. The replication layer owns the numbering;
/// storage only keeps each group's log entries apart.
pub type GroupId = u32;

/// One shard of coordinator state (the role of one `__consumer_offsets`
/// partition in Kafka): its records live apart from every other shard's.
pub type CoordinatorShard = u32;

/// One coordinator record: opaque key and value bytes.
pub type CoordinatorRecord = (Vec<u8>, Vec<u8>);

/// How many recent batches per producer and partition are remembered for
/// duplicate detection (Kafka's in-flight limit with idempotence is 5).
pub const PRODUCER_BATCHES_KEPT: usize = 5;

/// One batch as stored: offsets and max timestamp beside the opaque bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub bytes: Bytes,
}

/// An append to one log. The caller has already assigned the offsets.
#[derive(Debug, Clone)]
pub struct LogAppend {
    pub log: LogId,
    pub batch: StoredBatch,
    /// True when this batch raises the log's running max timestamp, so the
    /// time index gets an entry (the index stays monotonic that way).
    pub index_timestamp: bool,
}

/// What a restart needs to resume a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogBounds {
    pub log_start_offset: i64,
    /// One past the last stored offset (the log end offset).
    pub next_offset: i64,
    /// Largest batch max timestamp in the log, -1 when empty.
    pub max_timestamp: i64,
}

/// One remembered batch of an idempotent producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    pub append_time_ms: i64,
}

/// Idempotent-producer state for one producer id on one log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerState {
    pub epoch: i16,
    /// Newest last; at most [`PRODUCER_BATCHES_KEPT`].
    pub batches: VecDeque<ProducerBatch>,
}

/// A topic as stored in the metadata: its id, the log of each partition and
/// the configs that were set explicitly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub name: String,
    pub id: [u8; 16],
    /// `logs[p]` is the log of partition `p`.
    pub logs: Vec<LogId>,
    pub configs: BTreeMap<String, String>,
    pub created_ms: i64,
}

/// One element of an atomic write.
#[derive(Debug, Clone)]
pub enum WriteOp {
    Append(LogAppend),
    PutProducer {
        log: LogId,
        producer_id: i64,
        state: ProducerState,
    },
    PutTopic(TopicRecord),
    /// Removes the topic record and every entry of its logs.
    DeleteTopic {
        name: String,
        logs: Vec<LogId>,
    },
    /// A small named metadata value (cluster id, id-allocation watermarks).
    PutMeta {
        key: String,
        value: Vec<u8>,
    },
    DeleteMeta {
        key: String,
    },
    /// Removes a log's batches (and their time-index entries) from
    /// `from_offset` on: a replica dropping appends its Raft log lost.
    TruncateLog {
        log: LogId,
        from_offset: i64,
    },
    /// An opaque replication-log entry of one group at one index.
    RaftAppend {
        group: GroupId,
        index: u64,
        entry: Bytes,
    },
    /// Removes a group's replication-log entries with index >= `from`.
    RaftTruncate {
        group: GroupId,
        from: u64,
    },
    /// Removes a group's replication-log entries with index <= `up_to`.
    RaftPurge {
        group: GroupId,
        up_to: u64,
    },
    /// A small per-group replication value (vote, commit point, ...), by field number.
    PutRaftState {
        group: GroupId,
        field: u8,
        value: Vec<u8>,
    },
    /// A keyed record of a coordinator shard (consumer-group metadata and
    /// committed offsets). Storage treats key and value as opaque bytes.
    PutCoordinatorRecord {
        shard: CoordinatorShard,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    DeleteCoordinatorRecord {
        shard: CoordinatorShard,
        key: Vec<u8>,
    },
}
