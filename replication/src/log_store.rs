//! openraft's log storage over Skein's store: entries in the `raft_log`
//! column family keyed by (group, index), vote and purge point in the
//! per-group replication state. Appends go through the group-commit writer,
//! so many groups share each fsync; openraft is told an append is durable
//! from the writer's completion callback.
//!
//! Entries are kept in an in-memory tail from `append` until the state
//! machine has applied them: readers see them as soon as `append` returns
//! (openraft requires that), and openraft reading them back to apply costs
//! no RocksDB iterator (a seek per entry and per batch it refers to, which
//! measured ~9% of the broker's CPU under produce load).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::type_config::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::{EntryPayload, OptionalSend, RaftLogReader};
use skein_storage::{GroupCommitWriter, GroupId, LogId, Store, StoredBatch, WriteDone, WriteOp};

use crate::entry_codec::{
    decode_entry, decode_entry_log_id, decode_log_id, decode_vote, encode_entry_for_log, encode_log_id, encode_vote,
};
use crate::types::{field, C};
use crate::write;

/// Entries appended and not yet applied, by index. Shared by a group's log
/// store (which adds them) and state machine (which drops them once applied).
#[derive(Clone, Default)]
pub(crate) struct Tail(Arc<Mutex<BTreeMap<u64, EntryOf<C>>>>);

impl Tail {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, EntryOf<C>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops the entries up to and including `index`, which are applied.
    pub(crate) fn applied_up_to(&self, index: u64) {
        let mut tail = self.lock();
        *tail = tail.split_off(&(index + 1));
    }
}

#[derive(Clone)]
pub(crate) struct LogStore {
    group: GroupId,
    store: Arc<dyn Store>,
    writer: Arc<GroupCommitWriter>,
    tail: Tail,
}

impl LogStore {
    pub(crate) fn new(group: GroupId, store: Arc<dyn Store>, writer: Arc<GroupCommitWriter>, tail: Tail) -> Self {
        Self { group, store, writer, tail }
    }

    fn tail(&self) -> MutexGuard<'_, BTreeMap<u64, EntryOf<C>>> {
        self.tail.lock()
    }

    fn state(&self, field: u8) -> io::Result<Option<Bytes>> {
        Ok(self.store.raft_state(self.group, field).map_err(io::Error::other)?.map(Bytes::from))
    }

    /// The batch at `base_offset` of a partition log, which a stored entry
    /// refers to.
    fn batch_at(&self, log: LogId, base_offset: i64) -> io::Result<StoredBatch> {
        let batches = self.store.read(log, base_offset, 1).map_err(io::Error::other)?;
        batches.into_iter().find(|b| b.base_offset == base_offset).ok_or_else(|| {
            io::Error::other(format!("log {log} has no batch at offset {base_offset}, which a Raft entry refers to"))
        })
    }

    fn last_stored(&self) -> io::Result<Option<LogIdOf<C>>> {
        match self.store.raft_last(self.group).map_err(io::Error::other)? {
            Some((_, bytes)) => Ok(Some(decode_entry_log_id(&bytes)?)),
            None => Ok(None),
        }
    }
}

fn index_range(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let from = match range.start_bound() {
        Bound::Included(i) => *i,
        Bound::Excluded(i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let to = match range.end_bound() {
        Bound::Included(i) => i.saturating_add(1),
        Bound::Excluded(i) => *i,
        Bound::Unbounded => u64::MAX,
    };
    (from, to)
}

impl RaftLogReader<C> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<C>>, io::Error> {
        let (from, to) = index_range(&range);
        // The tail is contiguous, and newer than anything stored at the same
        // index: only what lies before it is read from the store.
        let (tail_first, mut from_tail) = {
            let tail = self.tail();
            let first = tail.keys().next().copied().unwrap_or(u64::MAX);
            (first, tail.range(from..to).map(|(_, entry)| entry.clone()).collect::<Vec<_>>())
        };
        let mut entries = Vec::new();
        let stored_to = to.min(tail_first);
        if from < stored_to {
            for (_, bytes) in self.store.raft_entries(self.group, from, stored_to).map_err(io::Error::other)? {
                entries.push(decode_entry(&bytes, &|log, offset| self.batch_at(log, offset))?);
            }
        }
        entries.append(&mut from_tail);
        Ok(entries)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        self.state(field::VOTE)?.map(|bytes| decode_vote(&bytes)).transpose()
    }
}

impl RaftLogStorage<C> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        let last_purged_log_id = match self.state(field::PURGED)? {
            Some(bytes) => decode_log_id(&bytes)?,
            None => None,
        };
        let tail_last = self.tail().values().next_back().map(|e| e.log_id);
        let last_log_id = tail_last.or(self.last_stored()?).or(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        let op = WriteOp::PutRaftState { group: self.group, field: field::VOTE, value: encode_vote(vote) };
        write(&self.writer, vec![op]).await
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        // Not synced: on restart the group commits everything it holds again
        // (see `Group::open`), so a lost commit point only delays visibility.
        // Written directly: openraft's core waits for this before applying,
        // and a trip through the writer thread would wait behind its fsync.
        let value = encode_log_id(committed.as_ref());
        let op = WriteOp::PutRaftState { group: self.group, field: field::COMMITTED, value };
        self.writer.write_volatile(&[op]).map_err(io::Error::other)
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        match self.state(field::COMMITTED)? {
            Some(bytes) => decode_log_id(&bytes),
            None => Ok(None),
        }
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = EntryOf<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut ops = Vec::new();
        let mut written = Vec::new();
        {
            let mut tail = self.tail();
            for mut entry in entries {
                if let EntryPayload::Normal(proposal) = &entry.payload {
                    written.extend(proposal.written.take());
                }
                // The batches go to their partition logs in this same write,
                // and the entry keeps references: each batch is written once.
                let (encoded, appends) = encode_entry_for_log(&entry);
                ops.extend(appends);
                ops.push(WriteOp::RaftAppend { group: self.group, index: entry.log_id.index, entry: encoded });
                if let EntryPayload::Normal(proposal) = &mut entry.payload {
                    proposal.appends_stored = true;
                }
                tail.insert(entry.log_id.index, entry);
            }
        }
        let done: WriteDone = Box::new(move |result| callback.io_completed(result.map_err(io::Error::other)));
        if written.is_empty() {
            self.writer.submit(ops, done);
        } else {
            let tell_written: WriteDone = Box::new(move |result| {
                for waiter in written {
                    let _ = waiter.send(result.clone());
                }
            });
            self.writer.submit_written(ops, tell_written, done);
        }
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |id| id.index + 1);
        // The batches the dropped entries wrote leave their logs too.
        let mut cuts: BTreeMap<LogId, i64> = BTreeMap::new();
        for entry in self.try_get_log_entries(from..).await? {
            if let EntryPayload::Normal(proposal) = entry.payload {
                for op in proposal.ops {
                    if let WriteOp::Append(append) = op {
                        let cut = cuts.entry(append.log).or_insert(append.batch.base_offset);
                        *cut = (*cut).min(append.batch.base_offset);
                    }
                }
            }
        }
        self.tail().retain(|index, _| *index < from);
        let mut ops: Vec<WriteOp> =
            cuts.into_iter().map(|(log, from_offset)| WriteOp::TruncateLog { log, from_offset }).collect();
        ops.push(WriteOp::RaftTruncate { group: self.group, from });
        write(&self.writer, ops).await
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        self.tail().retain(|index, _| *index > log_id.index);
        let ops = vec![
            WriteOp::RaftPurge { group: self.group, up_to: log_id.index },
            WriteOp::PutRaftState { group: self.group, field: field::PURGED, value: encode_log_id(Some(&log_id)) },
        ];
        write(&self.writer, ops).await
    }
}
