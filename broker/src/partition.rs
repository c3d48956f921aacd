//! One partition on this node: offset assignment, idempotence checks, the
//! high watermark, and the wake-up of fetches waiting for data.
//!
//! Concurrency: `state` is a std mutex held only while a batch is checked,
//! given its offsets and proposed, never across an await. Proposals are
//! queued under it, so they reach the log in offset order; the high
//! watermark then advances as they commit (in the same order).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use skein_protocol::record_batch::{self, BatchHeader};
use skein_replication::{ProposalFuture, Replicator};
use skein_storage::{LogAppend, LogId, ProducerBatch, ProducerState, StorageError, Store, StoredBatch, WriteOp};
use tokio::sync::Notify;

use crate::producer_state::{check_sequence, remember_batch, SequenceCheck};

/// A refusal with the Kafka error code the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionError {
    pub code: ResponseError,
    pub message: String,
}

impl PartitionError {
    pub fn new(code: ResponseError, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    fn storage(error: &impl std::fmt::Display) -> Self {
        Self::new(ResponseError::KafkaStorageError, error.to_string())
    }
}

/// Resolves when a staged append has committed.
pub type Commit = Pin<Box<dyn Future<Output = Result<AppendOutcome, PartitionError>> + Send>>;

/// When a produce is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acknowledge {
    /// Once the batch is committed (durable, with `skein.fsync=always`) and
    /// visible to consumers: acks=all.
    Committed,
    /// Once this node's log holds it, before the fsync and the commit: acks=1
    /// (and acks=0, which is not answered at all), as Kafka's leader answers
    /// acks=1 from its page cache.
    Written,
}

/// The result of a successful produce to one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    pub base_offset: i64,
    /// -1 unless the topic uses LogAppendTime.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
}

/// Batches read for a fetch, with the offsets the response reports.
#[derive(Debug, Clone)]
pub struct ReadResult {
    pub batches: Vec<StoredBatch>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

#[derive(Debug)]
struct LogState {
    next_offset: i64,
    max_timestamp: i64,
    producers: HashMap<i64, ProducerState>,
    deleted: bool,
}

#[derive(Debug)]
pub struct Partition {
    pub topic: Arc<str>,
    pub index: i32,
    pub log: LogId,
    state: Mutex<LogState>,
    high_watermark: Arc<AtomicI64>,
    log_start_offset: AtomicI64,
    deleted: AtomicBool,
    waiters: Mutex<Vec<Weak<Notify>>>,
}

impl Partition {
    /// Resumes a partition from what storage holds.
    pub fn open(topic: Arc<str>, index: i32, log: LogId, store: &dyn Store) -> Result<Self, StorageError> {
        let bounds = store.bounds(log)?;
        let producers = store.producer_states(log)?.into_iter().collect();
        Ok(Self {
            topic,
            index,
            log,
            state: Mutex::new(LogState {
                next_offset: bounds.next_offset,
                max_timestamp: bounds.max_timestamp,
                producers,
                deleted: false,
            }),
            high_watermark: Arc::new(AtomicI64::new(bounds.next_offset)),
            log_start_offset: AtomicI64::new(bounds.log_start_offset),
            deleted: AtomicBool::new(false),
            waiters: Mutex::new(Vec::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// Marks the partition deleted; later appends are refused.
    pub fn mark_deleted(&self) {
        self.lock().deleted = true;
        self.deleted.store(true, Ordering::Release);
        self.wake_waiters();
    }

    /// Checks and stages one validated batch: assigns offsets and proposes
    /// it. Returns a future that resolves when the batch has committed.
    /// Staging is synchronous so that callers stage in request order.
    pub fn stage_append(
        self: &Arc<Self>,
        replicator: &Replicator,
        records: &Bytes,
        header: &BatchHeader,
        log_append_time_ms: Option<i64>,
        acknowledge: Acknowledge,
    ) -> Result<Commit, PartitionError> {
        let mut state = self.lock();
        if state.deleted {
            return Err(PartitionError::new(ResponseError::UnknownTopicOrPartition, "the topic was deleted"));
        }
        let idempotent = header.has_producer_id();
        if idempotent {
            let known = state.producers.get(&header.producer_id);
            match check_sequence(known, header.producer_epoch, header.base_sequence, header.last_sequence()) {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate { base_offset } => {
                    let outcome = self.outcome(base_offset, log_append_time_ms);
                    return Ok(Box::pin(async move { Ok(outcome) }));
                }
                SequenceCheck::Reject(code) => {
                    let message = format!(
                        "producer {} epoch {} sequence {} rejected",
                        header.producer_id, header.producer_epoch, header.base_sequence
                    );
                    return Err(PartitionError::new(code, message));
                }
            }
        }
        let base_offset = state.next_offset;
        let mut batch = BytesMut::from(&records[..]);
        record_batch::set_base_offset(&mut batch, base_offset);
        record_batch::set_partition_leader_epoch(&mut batch, replicator.leader_epoch(self.log));
        let max_timestamp = match log_append_time_ms {
            Some(now) => {
                record_batch::set_log_append_time(&mut batch, now);
                now
            }
            None => header.max_timestamp,
        };
        let last_offset = base_offset + i64::from(header.last_offset_delta);
        let stored = StoredBatch { base_offset, last_offset, max_timestamp, bytes: batch.freeze() };
        let index_timestamp = max_timestamp > state.max_timestamp;
        let mut ops = vec![WriteOp::Append(LogAppend { log: self.log, batch: stored, index_timestamp })];
        if idempotent {
            let producer = state.producers.entry(header.producer_id).or_default();
            let remembered = ProducerBatch {
                first_sequence: header.base_sequence,
                last_sequence: header.last_sequence(),
                base_offset,
                append_time_ms: log_append_time_ms.unwrap_or(header.max_timestamp),
            };
            remember_batch(producer, header.producer_epoch, remembered);
            ops.push(WriteOp::PutProducer { log: self.log, producer_id: header.producer_id, state: producer.clone() });
        }
        state.next_offset = last_offset + 1;
        state.max_timestamp = state.max_timestamp.max(max_timestamp);
        // Only acks=1 asks to hear of the local write: acks=all has no use for it.
        let (written, applied): (Option<ProposalFuture>, ProposalFuture) = match acknowledge {
            Acknowledge::Committed => (None, Box::pin(replicator.propose(self.log, ops))),
            Acknowledge::Written => {
                let proposed = replicator.propose_written(self.log, ops);
                (Some(proposed.written), proposed.applied)
            }
        };
        drop(state);
        let partition = Arc::clone(self);
        let committed = async move {
            applied.await.map_err(|e| PartitionError::storage(&e))?;
            partition.high_watermark.fetch_max(last_offset + 1, Ordering::AcqRel);
            partition.wake_waiters();
            Ok(partition.outcome(base_offset, log_append_time_ms))
        };
        let Some(written) = written else { return Ok(Box::pin(committed)) };
        // The commit still has to raise the high watermark; it runs on, and a
        // failure there is the storage failure every later write will see too.
        let log = self.log;
        tokio::spawn(async move {
            if let Err(error) = committed.await {
                tracing::warn!(log, %error.message, "a batch answered at acks=1 did not commit");
            }
        });
        let partition = Arc::clone(self);
        Ok(Box::pin(async move {
            written.await.map_err(|e| PartitionError::storage(&e))?;
            Ok(partition.outcome(base_offset, log_append_time_ms))
        }))
    }

    fn outcome(&self, base_offset: i64, log_append_time_ms: Option<i64>) -> AppendOutcome {
        AppendOutcome {
            base_offset,
            log_append_time_ms: log_append_time_ms.unwrap_or(-1),
            log_start_offset: self.log_start_offset(),
        }
    }

    /// Whole committed batches from `offset`, at most `max_bytes` (but at
    /// least one batch when any is available).
    pub fn read(&self, store: &dyn Store, offset: i64, max_bytes: usize) -> Result<ReadResult, PartitionError> {
        let high_watermark = self.high_watermark();
        let log_start_offset = self.log_start_offset();
        if offset < log_start_offset || offset > high_watermark {
            return Err(PartitionError::new(
                ResponseError::OffsetOutOfRange,
                format!("offset {offset} is outside [{log_start_offset}, {high_watermark}]"),
            ));
        }
        let mut batches = if offset == high_watermark {
            Vec::new()
        } else {
            store.read(self.log, offset, max_bytes).map_err(|e| PartitionError::storage(&e))?
        };
        // Storage may already hold batches whose commit has not been
        // observed yet; only whole batches below the high watermark are served.
        batches.retain(|b| b.last_offset < high_watermark);
        Ok(ReadResult { batches, high_watermark, log_start_offset })
    }

    /// Registers a fetch waiting for data on this partition. Register before
    /// checking for data: a `Notify` keeps the permit of a wake-up that
    /// arrives between the check and the wait.
    pub fn register_waiter(&self, waiter: &Arc<Notify>) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        waiters.retain(|w| w.strong_count() > 0);
        waiters.push(Arc::downgrade(waiter));
    }

    fn wake_waiters(&self) {
        let waiters = std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|p| p.into_inner()));
        for waiter in waiters.iter().filter_map(Weak::upgrade) {
            waiter.notify_one();
        }
    }
}
