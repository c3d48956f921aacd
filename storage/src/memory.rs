//! The in-memory twin of [`crate::RocksStore`]: same semantics, no disk.
//! Used by unit tests of the layers above and checked by the same
//! conformance suite, so the two cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use crate::{
    CoordinatorRecord, CoordinatorShard, GroupId, LogBounds, LogId, ProducerState, StorageError, Store, StoredBatch,
    TopicRecord, WriteOp,
};

#[derive(Debug, Default)]
struct State {
    batches: BTreeMap<(LogId, i64), StoredBatch>,
    time_index: BTreeSet<(LogId, i64, i64)>,
    producers: BTreeMap<(LogId, i64), ProducerState>,
    topics: BTreeMap<String, TopicRecord>,
    meta: BTreeMap<String, Vec<u8>>,
    raft_log: BTreeMap<(GroupId, u64), Bytes>,
    raft_state: BTreeMap<(GroupId, u8), Vec<u8>>,
    coordinator: BTreeMap<(CoordinatorShard, Vec<u8>), Vec<u8>>,
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Applying an op only inserts into or removes from collections, so a
        // panic elsewhere while the lock was held cannot leave it half-applied.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn batch_at_or_before(&self, log: LogId, offset: i64) -> Option<StoredBatch> {
        self.batches.range((log, i64::MIN)..=(log, offset)).next_back().map(|(_, b)| b.clone())
    }

    fn apply(&mut self, op: &WriteOp) {
        match op {
            WriteOp::Append(append) => {
                let batch = &append.batch;
                self.batches.insert((append.log, batch.base_offset), batch.clone());
                if append.index_timestamp {
                    self.time_index.insert((append.log, batch.max_timestamp, batch.base_offset));
                }
            }
            WriteOp::PutProducer { log, producer_id, state } => {
                self.producers.insert((*log, *producer_id), state.clone());
            }
            WriteOp::PutTopic(topic) => {
                self.topics.insert(topic.name.clone(), topic.clone());
            }
            WriteOp::PutMeta { key, value } => {
                self.meta.insert(key.clone(), value.clone());
            }
            WriteOp::DeleteMeta { key } => {
                self.meta.remove(key);
            }
            WriteOp::TruncateLog { log, from_offset } => {
                // A batch starting before the cut is kept whole, as in Kafka.
                self.batches.retain(|(l, base), _| l != log || base < from_offset);
                self.time_index.retain(|(l, _, offset)| l != log || offset < from_offset);
            }
            WriteOp::RaftAppend { group, index, entry } => {
                self.raft_log.insert((*group, *index), entry.clone());
            }
            WriteOp::PutRaftState { group, field, value } => {
                self.raft_state.insert((*group, *field), value.clone());
            }
            WriteOp::RaftTruncate { group, from } => {
                self.raft_log.retain(|(g, i), _| g != group || i < from);
            }
            WriteOp::RaftPurge { group, up_to } => {
                self.raft_log.retain(|(g, i), _| g != group || i > up_to);
            }
            WriteOp::PutCoordinatorRecord { shard, key, value } => {
                self.coordinator.insert((*shard, key.clone()), value.clone());
            }
            WriteOp::DeleteCoordinatorRecord { shard, key } => {
                self.coordinator.remove(&(*shard, key.clone()));
            }
            WriteOp::DeleteTopic { name, logs } => {
                self.topics.remove(name);
                for log in logs {
                    self.batches.retain(|(l, _), _| l != log);
                    self.time_index.retain(|(l, _, _)| l != log);
                    self.producers.retain(|(l, _), _| l != log);
                    self.raft_log.retain(|(g, _), _| g != log);
                    self.raft_state.retain(|(g, _), _| g != log);
                }
            }
        }
    }
}

impl Store for MemoryStore {
    fn write(&self, ops: &[WriteOp], _sync: bool) -> Result<(), StorageError> {
        let mut state = self.lock();
        for op in ops {
            state.apply(op);
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn checkpoint(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn read(&self, log: LogId, from_offset: i64, max_bytes: usize) -> Result<Vec<StoredBatch>, StorageError> {
        let state = self.lock();
        let start = state.batch_at_or_before(log, from_offset).map_or(from_offset, |b| b.base_offset);
        let mut batches = Vec::new();
        let mut total_bytes = 0usize;
        for batch in state.batches.range((log, start)..=(log, i64::MAX)).map(|(_, b)| b) {
            if batch.last_offset < from_offset {
                continue;
            }
            if !batches.is_empty() && total_bytes + batch.bytes.len() > max_bytes {
                break;
            }
            total_bytes += batch.bytes.len();
            batches.push(batch.clone());
            if total_bytes >= max_bytes {
                break;
            }
        }
        Ok(batches)
    }

    fn bounds(&self, log: LogId) -> Result<LogBounds, StorageError> {
        let state = self.lock();
        let mut range = state.batches.range((log, i64::MIN)..=(log, i64::MAX));
        let first = range.next().map(|(_, b)| b.base_offset);
        let last = state.batch_at_or_before(log, i64::MAX);
        let max_timestamp = state
            .time_index
            .range((log, i64::MIN, i64::MIN)..=(log, i64::MAX, i64::MAX))
            .next_back()
            .map_or(-1, |e| e.1);
        Ok(LogBounds {
            log_start_offset: first.unwrap_or(0),
            next_offset: last.map_or(0, |b| b.last_offset + 1),
            max_timestamp,
        })
    }

    fn find_by_timestamp(&self, log: LogId, target_ms: i64) -> Result<Option<StoredBatch>, StorageError> {
        let state = self.lock();
        let entry = state.time_index.range((log, target_ms, i64::MIN)..=(log, i64::MAX, i64::MAX)).next().copied();
        Ok(entry.and_then(|(_, _, offset)| state.batch_at_or_before(log, offset)))
    }

    fn find_max_timestamp(&self, log: LogId) -> Result<Option<StoredBatch>, StorageError> {
        let state = self.lock();
        let entry = state.time_index.range((log, i64::MIN, i64::MIN)..=(log, i64::MAX, i64::MAX)).next_back().copied();
        Ok(entry.and_then(|(_, _, offset)| state.batch_at_or_before(log, offset)))
    }

    fn producer_states(&self, log: LogId) -> Result<Vec<(i64, ProducerState)>, StorageError> {
        let state = self.lock();
        Ok(state.producers.range((log, i64::MIN)..=(log, i64::MAX)).map(|((_, id), s)| (*id, s.clone())).collect())
    }

    fn topics(&self) -> Result<Vec<TopicRecord>, StorageError> {
        Ok(self.lock().topics.values().cloned().collect())
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.lock().meta.get(key).cloned())
    }

    fn raft_entries(&self, group: GroupId, from: u64, to: u64) -> Result<Vec<(u64, Bytes)>, StorageError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let state = self.lock();
        Ok(state.raft_log.range((group, from)..(group, to)).map(|((_, i), e)| (*i, e.clone())).collect())
    }

    fn raft_state(&self, group: GroupId, field: u8) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.lock().raft_state.get(&(group, field)).cloned())
    }

    fn raft_last(&self, group: GroupId) -> Result<Option<(u64, Bytes)>, StorageError> {
        let state = self.lock();
        Ok(state.raft_log.range((group, 0)..=(group, u64::MAX)).next_back().map(|((_, i), e)| (*i, e.clone())))
    }

    fn coordinator_records(&self, shard: CoordinatorShard) -> Result<Vec<CoordinatorRecord>, StorageError> {
        let state = self.lock();
        let records = state.coordinator.range((shard, Vec::new())..).take_while(|((s, _), _)| *s == shard);
        Ok(records.map(|((_, key), value)| (key.clone(), value.clone())).collect())
    }
}
