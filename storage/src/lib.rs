//! Durable state for Skein. Partition logs keyed by offset (batches stored
//! exactly as the broker hands them over), a time index for timestamp
//! lookups, idempotent-producer state, topic metadata and coordinator records
//! (consumer groups and their committed offsets).
//!
//! [`Store`] is the boundary: [`RocksStore`] is the real implementation,
//! [`MemoryStore`] its in-memory twin, and one conformance suite
//! (`conformance.rs`) runs against both. [`GroupCommitWriter`] puts a single
//! writer thread in front of a store so concurrent appends share one fsync.
//!
//! This crate knows bytes, offsets and timestamps; it does not know Kafka
//! request types or Raft.

mod codec;
mod error;
mod journal;
mod memory;
mod ops_codec;
mod rocks;
mod types;
mod writer;

use bytes::Bytes;

#[cfg(test)]
mod conformance;

pub use error::StorageError;
pub use memory::MemoryStore;
pub use ops_codec::{decode_ops, encode_ops};
pub use rocks::{RocksStore, StoreTuning};
pub use types::{
    CoordinatorRecord, CoordinatorShard, GroupId, LogAppend, LogBounds, LogId, ProducerBatch, ProducerState,
    StoredBatch, TopicRecord, WriteOp, PRODUCER_BATCHES_KEPT,
};
pub use writer::{GroupCommitWriter, SyncObserver, SyncPolicy, WriteDone};

/// The storage boundary. Every method is blocking; callers on an async
/// runtime go through [`GroupCommitWriter`] for writes and a blocking pool
/// (or a cheap enough call) for reads.
pub trait Store: Send + Sync + 'static {
    /// Applies `ops` atomically: after a crash either all of them are visible
    /// or none is. With `sync` they are on stable storage when this returns.
    fn write(&self, ops: &[WriteOp], sync: bool) -> Result<(), StorageError>;

    /// Makes every earlier write durable (for the interval fsync policy).
    fn sync(&self) -> Result<(), StorageError>;

    /// Moves everything written into table files, so that the next open
    /// has no write-ahead log to replay. For a clean shutdown (a restart
    /// after heavy writes otherwise replays what was written since the last
    /// flush); durability never depends on it.
    fn checkpoint(&self) -> Result<(), StorageError>;

    /// Whole batches starting with the one that contains `from_offset`, up to
    /// `max_bytes`; the first batch is returned even if it alone is larger,
    /// so a consumer can always make progress.
    fn read(&self, log: LogId, from_offset: i64, max_bytes: usize) -> Result<Vec<StoredBatch>, StorageError>;

    /// Offsets and timestamps needed to resume appending after a restart.
    fn bounds(&self, log: LogId) -> Result<LogBounds, StorageError>;

    /// The first batch whose max timestamp is at least `target_ms`.
    fn find_by_timestamp(&self, log: LogId, target_ms: i64) -> Result<Option<StoredBatch>, StorageError>;

    /// The batch holding the largest timestamp of the log (first such batch).
    fn find_max_timestamp(&self, log: LogId) -> Result<Option<StoredBatch>, StorageError>;

    /// All idempotent-producer state of one log.
    fn producer_states(&self, log: LogId) -> Result<Vec<(i64, ProducerState)>, StorageError>;

    /// All topics, as last written.
    fn topics(&self) -> Result<Vec<TopicRecord>, StorageError>;

    /// A value written with [`WriteOp::PutMeta`].
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;

    /// Replication-log entries of `group` with `from <= index < to`, in order.
    fn raft_entries(&self, group: GroupId, from: u64, to: u64) -> Result<Vec<(u64, Bytes)>, StorageError>;

    /// A value written with [`WriteOp::PutRaftState`].
    fn raft_state(&self, group: GroupId, field: u8) -> Result<Option<Vec<u8>>, StorageError>;

    /// The last replication-log entry of `group`.
    fn raft_last(&self, group: GroupId) -> Result<Option<(u64, Bytes)>, StorageError>;

    /// Every record of one coordinator shard, sorted by key.
    fn coordinator_records(&self, shard: CoordinatorShard) -> Result<Vec<CoordinatorRecord>, StorageError>;
}
