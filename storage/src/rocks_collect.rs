//! Deleting journal files nothing needs any more, and rewriting small logs
//! that alone keep old files alive.
//!
//! A file is needed while it is at or after the durable replay start, or
//! while some batch points into it. A log's batches point into the journal
//! in offset order (appends arrive in order; a relocated log is rewritten
//! whole, in order), so a log's first batch is in its oldest file, and the
//! oldest file any log needs is the minimum over the logs' first batches:
//! one seek per log, not a scan of every batch.
//!
//! One small log can hold back every file written after its first batch
//! (a topic created early, then deleted topics' bytes after it). The logs
//! that start in the oldest file are rewritten at the journal's end, in
//! order, when each is at most `StoreTuning::relocate_log_max_bytes` and
//! together they are at most a quarter of the bytes that frees.

use crate::codec::{batch_key, batch_key_offset, decode_stored_value, pointed_file};
use crate::{LogAppend, LogId, StorageError, StoredBatch, WriteOp};

use super::{appended, seal, RocksStore, LOGS};

/// Bounds the work one collection does (it runs on a writer's thread).
const RELOCATE_MAX_BYTES_PER_PASS: u64 = 64 << 20;
/// Logs are rewritten only to free at least this many times their bytes.
const RELOCATE_MIN_GAIN: u64 = 4;

impl RocksStore {
    /// Deletes the journal files nothing needs, first rewriting small logs
    /// that alone keep the oldest of them.
    pub(super) fn collect_journal(&self) -> Result<(), StorageError> {
        let replay_start = self.durable_replay_start()?;
        let mut relocated = 0u64;
        let oldest_needed = loop {
            let firsts = self.first_files()?;
            let oldest = firsts.iter().map(|(_, file)| *file).min().unwrap_or(u32::MAX).min(replay_start.file);
            if oldest >= replay_start.file || relocated >= RELOCATE_MAX_BYTES_PER_PASS {
                break oldest;
            }
            // Moving the logs that start in the oldest file frees every file
            // up to the next log's first one: worth it only when that frees
            // several times what it rewrites (not when those files are live).
            let pinning: Vec<LogId> = firsts.iter().filter(|(_, file)| *file == oldest).map(|(log, _)| *log).collect();
            let next = firsts.iter().map(|(_, file)| *file).filter(|file| *file > oldest).min().unwrap_or(u32::MAX);
            let freed = self.journal.bytes_in(oldest, next.min(replay_start.file))?;
            let mut cost = Some(0u64);
            for log in &pinning {
                let bytes = self.log_bytes_up_to(*log, self.tuning.relocate_log_max_bytes)?;
                cost = cost.zip(bytes).map(|(sum, bytes)| sum + bytes);
            }
            if cost.is_none_or(|cost| cost == 0 || cost.saturating_mul(RELOCATE_MIN_GAIN) > freed) {
                break oldest;
            }
            let mut moved = 0;
            for log in pinning {
                moved += self.relocate_log(log)?;
            }
            // Nothing moved: every batch changed under us; the next pass retries.
            if moved == 0 {
                break oldest;
            }
            relocated += moved;
        };
        let deleted = self.journal.delete_before(oldest_needed)?;
        if deleted > 0 || relocated > 0 {
            tracing::debug!(deleted, relocated, oldest_kept = oldest_needed, "journal files collected");
        }
        Ok(())
    }

    /// The newest replay start known to be in table files: the last one the
    /// store asked to flush, once no memtable is waiting to be flushed.
    fn durable_replay_start(&self) -> Result<super::Position, StorageError> {
        let requested = self.lock_writes().requested_replay_start;
        let mut pending_flushes = 0;
        for name in super::FAMILIES {
            let family = self.family(name)?;
            pending_flushes += self.db.property_int_value_cf(family, "rocksdb.num-immutable-mem-table")?.unwrap_or(0);
        }
        let mut state = self.lock_writes();
        if pending_flushes == 0 {
            state.durable_replay_start = state.durable_replay_start.max(requested);
        }
        Ok(state.durable_replay_start)
    }

    /// Each log with batches, and the journal file its first batch is in.
    fn first_files(&self) -> Result<Vec<(LogId, u32)>, StorageError> {
        let mut firsts = Vec::new();
        let mut iter = self.db.raw_iterator_cf(self.family(LOGS)?);
        iter.seek_to_first();
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            let log = LogId::from_be_bytes([key[0], key[1], key[2], key[3]]);
            // A log that still starts with batches stored inline (written
            // before the journal) has its journal batches somewhere after
            // them; finding them would read every inline batch, so such a
            // log counts as needing every file until it is rewritten or goes.
            firsts.push((log, pointed_file(value).unwrap_or(0)));
            let Some(next) = log.checked_add(1) else { break };
            iter.seek(batch_key(next, i64::MIN));
        }
        iter.status()?;
        Ok(firsts)
    }

    /// The bytes of `log`'s batches, or `None` past `limit` (or with no batches).
    fn log_bytes_up_to(&self, log: LogId, limit: u64) -> Result<Option<u64>, StorageError> {
        let mut total = 0u64;
        let mut iter = self.db.raw_iterator_cf_opt(self.family(LOGS)?, Self::read_options_for(log));
        iter.seek_to_first();
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            total += decode_stored_value(log, batch_key_offset(key), value)?.len() as u64;
            if total > limit {
                return Ok(None);
            }
            iter.next();
        }
        iter.status()?;
        Ok((total > 0).then_some(total))
    }

    /// Rewrites every batch of `log` at the journal's end, in offset order;
    /// returns the bytes moved.
    fn relocate_log(&self, log: LogId) -> Result<u64, StorageError> {
        let mut stored: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut iter = self.db.raw_iterator_cf_opt(self.family(LOGS)?, Self::read_options_for(log));
        iter.seek_to_first();
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            stored.push((key.to_vec(), value.to_vec()));
            iter.next();
        }
        iter.status()?;
        drop(iter);
        let values = stored
            .iter()
            .map(|(key, value)| decode_stored_value(log, batch_key_offset(key), value))
            .collect::<Result<Vec<_>, _>>()?;
        let batches: Vec<StoredBatch> = self.load(log, values)?;
        let mut state = self.lock_writes();
        // Whatever changed since the read (truncated, deleted, rewritten) is
        // left as it now is; every write takes this lock, so the check holds.
        let logs = self.family(LOGS)?;
        let mut ops = Vec::with_capacity(batches.len());
        for ((key, value), batch) in stored.iter().zip(batches) {
            if self.db.get_pinned_cf(logs, key)?.is_some_and(|now| now.as_ref() == value.as_slice()) {
                ops.push(WriteOp::Append(LogAppend { log, batch, index_timestamp: false }));
            }
        }
        let moved: u64 = appended(&ops).map(|batch| batch.bytes.len() as u64).sum();
        if !ops.is_empty() {
            self.write_locked(&mut state, &ops, &seal(&ops))?;
        }
        tracing::debug!(log, batches = ops.len(), bytes = moved, "log rewritten at the journal's end");
        Ok(moved)
    }
}
