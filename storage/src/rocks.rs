//! The RocksDB implementation of [`Store`]. One database for all partitions,
//! indexing one journal (`journal.rs`) for all of them, so one fdatasync
//! makes the appends of many partitions durable together.
//!
//! Every write is first appended to the journal as one record, then applied
//! to RocksDB without RocksDB's own WAL: the journal is the write-ahead log,
//! and batch bytes live only there (the `logs` family holds pointers). The
//! invariant that makes this crash-safe: RocksDB never persists a memtable
//! pointing at journal bytes that are not yet durable. Memtables are flushed
//! only by the store (`flush_index`): under the write lock it syncs the
//! journal, records the journal end as the replay start, and switches the
//! memtables (an atomic flush of every family). RocksDB's own flush triggers
//! are set out of reach. Opening replays the journal from the replay start.
//!
//! Column families:
//! - `logs`: `[log][offset] -> batch pointer` (older stores: the batch inline);
//! - `time_index`: `[log][timestamp][offset] -> ()`, one entry each time a
//!   log's running max timestamp rises, so the first entry at or after a
//!   target timestamp names the first batch reaching it;
//! - `producers`: `[log][producer id] -> producer state`;
//! - `coordinator`: `[shard][key] -> value`, consumer-group records;
//! - `default`: metadata (`topic/<name>` -> JSON) and the journal replay start.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, Direction, FlushOptions, IteratorMode,
    Options, ReadOptions, WriteBatch, WriteOptions, DB,
};

use crate::codec::{
    batch_key, batch_key_offset, coordinator_key, decode_producer_state, decode_stored_value, encode_batch_pointer,
    encode_producer_state, log_range, meta_key, producer_key, producer_key_id, raft_key, raft_key_index,
    raft_state_key, time_key, time_key_fields, topic_key, BatchValue, TOPIC_PREFIX,
};
use crate::journal::{seal_record, sync_file, Appender, Journal, Location, Position, RECORD_HEADER};
use crate::ops_codec::{decode_ops_locating_batches, encode_ops_locating_batches, encoded_len};
use crate::{
    CoordinatorRecord, CoordinatorShard, GroupId, LogBounds, LogId, ProducerState, StorageError, Store, StoredBatch,
    TopicRecord, WriteOp,
};

const LOGS: &str = "logs";
const TIME_INDEX: &str = "time_index";
const PRODUCERS: &str = "producers";
const RAFT_LOG: &str = "raft_log";
const RAFT_STATE: &str = "raft_state";
const COORDINATOR: &str = "coordinator";
const DEFAULT: &str = "default";
const FAMILIES: [&str; 7] = [DEFAULT, LOGS, TIME_INDEX, PRODUCERS, RAFT_LOG, RAFT_STATE, COORDINATOR];

/// Key (in `default`) of the journal position replay starts from: every
/// record before it is in RocksDB's table files.
const REPLAY_START_KEY: &[u8] = b"journal/replay-start";

/// Batches of one log closer than this in the journal are read with one
/// read (the bytes between are read and dropped).
const READ_MERGE_GAP: u64 = 8 << 10;

/// When the store flushes memtables and where the journal rolls.
#[derive(Debug, Clone, Copy)]
pub struct StoreTuning {
    /// A journal file is closed once it holds this much.
    pub journal_file_bytes: u64,
    /// Flush once this much journal was written since the last flush: it
    /// bounds what a restart after a crash replays.
    pub flush_after_journal_bytes: u64,
    /// Flush once this much was written into the memtables: it bounds
    /// their memory.
    pub flush_after_index_bytes: usize,
    /// A log at most this large that alone keeps old journal files is
    /// rewritten at the journal's end so they can be deleted.
    pub relocate_log_max_bytes: u64,
}

impl Default for StoreTuning {
    fn default() -> Self {
        Self {
            journal_file_bytes: 128 << 20,
            flush_after_journal_bytes: 256 << 20,
            flush_after_index_bytes: 24 << 20,
            relocate_log_max_bytes: 8 << 20,
        }
    }
}

/// What the write lock guards: the journal's end and the flush bookkeeping.
struct WriteState {
    appender: Appender,
    journal_bytes_since_flush: u64,
    index_bytes_since_flush: usize,
    /// Replay start recorded by the last flush the store asked for.
    requested_replay_start: Position,
    /// A replay start known to be in table files (journal files before it
    /// are needed only for the batches still pointing into them).
    durable_replay_start: Position,
}

pub struct RocksStore {
    db: DB,
    journal: Journal,
    writes: Mutex<WriteState>,
    tuning: StoreTuning,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore").field("path", &self.db.path()).finish()
    }
}

/// Memtable sizes are RocksDB's own flush triggers; the store flushes long
/// before them (`StoreTuning::flush_after_index_bytes`), so they only cap
/// a family should the store's accounting ever be wrong.
const MEMTABLE_LIMIT_BYTES: usize = 128 << 20;
const BLOCK_CACHE_BYTES: usize = 16 << 20;

/// Options of a family; all share one block cache.
fn family_options(cache: &Cache, block_bytes: usize) -> Options {
    let mut options = Options::default();
    options.set_write_buffer_size(MEMTABLE_LIMIT_BYTES);
    // One memtable taking writes and up to two being flushed.
    options.set_max_write_buffer_number(3);
    let mut table = BlockBasedOptions::default();
    table.set_block_size(block_bytes);
    table.set_block_cache(cache);
    options.set_block_based_table_factory(&table);
    options
}

/// Stores written before the journal kept batch bytes in RocksDB's blob
/// files; the family keeps reading them (pointers are far below the blob
/// threshold, so nothing new goes there).
fn partition_logs_options(cache: &Cache) -> Options {
    let mut options = family_options(cache, 64 << 10);
    options.set_compression_type(DBCompressionType::None);
    options.set_target_file_size_base(64 << 20);
    options.set_enable_blob_files(true);
    options.set_min_blob_size(1024);
    options.set_blob_file_size(256 << 20);
    options.set_blob_compression_type(DBCompressionType::None);
    options.set_enable_blob_gc(true);
    options
}

fn db_options() -> Options {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_max_background_jobs(2);
    options.set_bytes_per_sync(1 << 20);
    // Open reads no table file to refresh statistics RocksDB only uses
    // to tune compaction: on a restart over gigabytes of data that was
    // most of the open's time.
    options.set_skip_stats_update_on_db_open(true);
    // Table files are opened when first read rather than all at open
    // (RocksDB's default, -1), and at most this many stay open.
    options.set_max_open_files(1024);
    // RocksDB keeps 1,000 old info logs by default, one per start.
    options.set_keep_log_file_num(5);
    // Every family's flushed state matches one journal position.
    options.set_atomic_flush(true);
    options
}

fn family<'a>(db: &'a DB, name: &str) -> Result<&'a rocksdb::ColumnFamily, StorageError> {
    db.cf_handle(name).ok_or_else(|| StorageError::Io(format!("column family {name} missing")))
}

fn no_wal() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.disable_wal(true);
    options
}

impl RocksStore {
    /// Opens (or creates) the store in `path`: RocksDB (which replays a WAL
    /// left by an older version), then the journal from the replay start,
    /// cutting a torn tail, so a write group is either wholly present or
    /// absent.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        Self::open_tuned(path, StoreTuning::default())
    }

    pub fn open_tuned(path: &Path, tuning: StoreTuning) -> Result<Self, StorageError> {
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        // Closing without a checkpoint leaves the memtables to journal
        // replay: a flush at close could persist pointers at unsynced
        // journal bytes. (The Rust binding has no setter for this option.)
        let mut options = db_options().get_options_from_string("avoid_flush_during_shutdown=true")?;
        options.set_write_buffer_size(MEMTABLE_LIMIT_BYTES);
        let families = FAMILIES[1..].iter().map(|name| {
            let options = if *name == LOGS { partition_logs_options(&cache) } else { family_options(&cache, 4 << 10) };
            ColumnFamilyDescriptor::new(*name, options)
        });
        let db = DB::open_cf_descriptors(&options, path, families)?;
        let journal = Journal::open(&path.join("journal"), tuning.journal_file_bytes)?;
        let first_file = journal.ids()[0];
        let replay_start = match db.get(REPLAY_START_KEY)? {
            Some(value) => Position::decode(&value).ok_or_else(|| StorageError::CorruptMetadata {
                key: "journal/replay-start".to_owned(),
                reason: "bad position encoding".to_owned(),
            })?,
            None => Position { file: first_file, offset: 0 },
        };
        let (mut replayed_records, mut replayed_bytes) = (0u64, 0u64);
        let appender = journal.replay(replay_start, |at, payload| {
            replayed_records += 1;
            replayed_bytes += payload.len() as u64;
            let (ops, batch_starts) = decode_ops_locating_batches(&payload)?;
            let crcs = appended(&ops).map(|stored| crc32fast::hash(&stored.bytes));
            let batches: Vec<(usize, u32)> = batch_starts.into_iter().zip(crcs).collect();
            let record_payload = at.offset + RECORD_HEADER as u64;
            let batch = index_batch(&db, &ops, at.file, record_payload, &batches)?;
            db.write_opt(batch, &no_wal())?;
            Ok(())
        })?;
        if replayed_records > 0 {
            tracing::info!(records = replayed_records, bytes = replayed_bytes, "journal replayed");
        }
        let writes = WriteState {
            appender,
            journal_bytes_since_flush: 0,
            index_bytes_since_flush: 0,
            requested_replay_start: replay_start,
            durable_replay_start: replay_start,
        };
        let store = Self { db, journal, writes: Mutex::new(writes), tuning };
        if replayed_records > 0 {
            store.flush_index(&mut store.lock_writes(), false)?;
        }
        Ok(store)
    }

    fn family(&self, name: &str) -> Result<&rocksdb::ColumnFamily, StorageError> {
        family(&self.db, name)
    }

    fn lock_writes(&self) -> MutexGuard<'_, WriteState> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Persists the memtables, which may point only at durable journal
    /// bytes: syncs the journal, records its end as the replay start, then
    /// switches every family's memtable in one atomic flush. Called with the
    /// write lock held, so nothing lands between the sync and the switch.
    fn flush_index(&self, state: &mut WriteState, wait: bool) -> Result<(), StorageError> {
        sync_file(&state.appender.file())?;
        let end = state.appender.end();
        self.db.put_opt(REPLAY_START_KEY, end.encode(), &no_wal())?;
        let families = FAMILIES.iter().map(|name| self.family(name)).collect::<Result<Vec<_>, _>>()?;
        let mut flush = FlushOptions::default();
        flush.set_wait(wait);
        self.db.flush_cfs_opt(&families, &flush)?;
        state.requested_replay_start = end;
        if wait {
            state.durable_replay_start = end;
        }
        state.journal_bytes_since_flush = 0;
        state.index_bytes_since_flush = 0;
        Ok(())
    }

    /// The stored batches `values` describe, reading journal bytes of
    /// nearby batches together.
    fn load(&self, log: LogId, values: Vec<BatchValue>) -> Result<Vec<StoredBatch>, StorageError> {
        let mut batches = Vec::with_capacity(values.len());
        let mut pending: Vec<(i64, i64, i64, u32, Location)> = Vec::new();
        for value in values {
            match value {
                BatchValue::Inline(batch) => {
                    self.load_span(log, &mut pending, &mut batches)?;
                    batches.push(batch);
                }
                BatchValue::InJournal { base_offset, last_offset, max_timestamp, crc, at } => {
                    let joins = pending.last().is_some_and(|(.., prev)| {
                        prev.file == at.file && at.offset >= prev.end() && at.offset - prev.end() <= READ_MERGE_GAP
                    });
                    if !joins {
                        self.load_span(log, &mut pending, &mut batches)?;
                    }
                    pending.push((base_offset, last_offset, max_timestamp, crc, at));
                }
            }
        }
        self.load_span(log, &mut pending, &mut batches)?;
        Ok(batches)
    }

    /// Reads the journal bytes `span` points at (one file, close together)
    /// with one read and checks each batch against its checksum.
    fn load_span(
        &self,
        log: LogId,
        span: &mut Vec<(i64, i64, i64, u32, Location)>,
        out: &mut Vec<StoredBatch>,
    ) -> Result<(), StorageError> {
        let (Some(first), Some(last)) = (span.first(), span.last()) else { return Ok(()) };
        let (file, start) = (first.4.file, first.4.offset);
        let bytes = self.journal.read(file, start, (last.4.end() - start) as usize).map_err(|e| {
            StorageError::Corrupt { log, offset: first.0, reason: format!("batch bytes unreadable: {e}") }
        })?;
        for (base_offset, last_offset, max_timestamp, crc, at) in span.drain(..) {
            let from = (at.offset - start) as usize;
            let batch_bytes = bytes.slice(from..from + at.len as usize);
            if crc32fast::hash(&batch_bytes) != crc {
                return Err(StorageError::Corrupt {
                    log,
                    offset: base_offset,
                    reason: "checksum mismatch in the journal".to_owned(),
                });
            }
            out.push(StoredBatch { base_offset, last_offset, max_timestamp, bytes: batch_bytes });
        }
        Ok(())
    }

    /// Appends `record` (the sealed encoding of `ops`) to the journal and
    /// indexes it, with the write lock held; returns whether the journal
    /// began a new file.
    fn write_locked(
        &self,
        state: &mut WriteState,
        ops: &[WriteOp],
        record: &SealedRecord,
    ) -> Result<bool, StorageError> {
        let (at, rolled) = state.appender.append(&self.journal, &record.bytes)?;
        let batch = index_batch(&self.db, ops, at.file, at.offset, &record.batches)?;
        state.index_bytes_since_flush += batch.size_in_bytes();
        state.journal_bytes_since_flush += record.bytes.len() as u64;
        self.db.write_opt(batch, &no_wal())?;
        if state.index_bytes_since_flush >= self.tuning.flush_after_index_bytes
            || state.journal_bytes_since_flush >= self.tuning.flush_after_journal_bytes
        {
            self.flush_index(state, false)?;
        }
        Ok(rolled)
    }

    fn read_options_for(log: LogId) -> ReadOptions {
        let (start, end) = log_range(log);
        let mut options = ReadOptions::default();
        options.set_iterate_lower_bound(start.to_vec());
        options.set_iterate_upper_bound(end);
        options
    }

    fn value_at_or_before(&self, log: LogId, offset: i64) -> Result<Option<BatchValue>, StorageError> {
        let mut iter = self.db.raw_iterator_cf_opt(self.family(LOGS)?, Self::read_options_for(log));
        iter.seek_for_prev(batch_key(log, offset));
        match (iter.key(), iter.value()) {
            (Some(key), Some(value)) => Ok(Some(decode_stored_value(log, batch_key_offset(key), value)?)),
            _ => {
                iter.status()?;
                Ok(None)
            }
        }
    }

    /// The stored value of the batch holding the log's largest timestamp.
    fn max_timestamp_value(&self, log: LogId) -> Result<Option<BatchValue>, StorageError> {
        let mut iter = self.db.raw_iterator_cf_opt(self.family(TIME_INDEX)?, Self::read_options_for(log));
        iter.seek_to_last();
        let Some(key) = iter.key() else {
            iter.status()?;
            return Ok(None);
        };
        let (_, offset) = time_key_fields(key);
        self.value_at_or_before(log, offset)
    }

    fn batch_at_or_before(&self, log: LogId, offset: i64) -> Result<Option<StoredBatch>, StorageError> {
        let value = self.value_at_or_before(log, offset)?;
        self.load_one(log, value)
    }

    fn load_one(&self, log: LogId, value: Option<BatchValue>) -> Result<Option<StoredBatch>, StorageError> {
        Ok(self.load(log, value.into_iter().collect())?.pop())
    }
}

/// A write group encoded as one sealed journal record, built before the
/// write lock is taken (copying and checksumming a group can take
/// milliseconds, and state-machine writes wait on that lock).
struct SealedRecord {
    bytes: Vec<u8>,
    /// Per `Append`, in order: where its batch bytes begin, counted from the
    /// record's start (header included), and their checksum.
    batches: Vec<(usize, u32)>,
}

fn seal(ops: &[WriteOp]) -> SealedRecord {
    let mut bytes = Vec::with_capacity(RECORD_HEADER + encoded_len(ops));
    bytes.resize(RECORD_HEADER, 0);
    let batch_starts = encode_ops_locating_batches(ops, &mut bytes);
    // Each batch is checksummed once: for its pointer, and (combined) for
    // the record.
    let hashers: Vec<(usize, crc32fast::Hasher)> = appended(ops)
        .map(|stored| {
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&stored.bytes);
            (stored.bytes.len(), hasher)
        })
        .collect();
    let checksummed: Vec<_> =
        batch_starts.iter().zip(&hashers).map(|(start, (len, hasher))| (*start, *len, hasher)).collect();
    seal_record(&mut bytes, &checksummed);
    let batches =
        batch_starts.into_iter().zip(hashers).map(|(start, (_, hasher))| (start, hasher.finalize())).collect();
    SealedRecord { bytes, batches }
}

/// Deletes a log's batches from `from_offset` on, and the time-index
/// entries that point at them: the index rises with offsets, so those are
/// the entries after the last one pointing below the cut.
fn truncate_log(db: &DB, batch: &mut WriteBatch, log: LogId, from_offset: i64) -> Result<(), StorageError> {
    let (_, end) = log_range(log);
    batch.delete_range_cf(family(db, LOGS)?, batch_key(log, from_offset).to_vec(), end);
    let mut iter = db.raw_iterator_cf_opt(family(db, TIME_INDEX)?, RocksStore::read_options_for(log));
    iter.seek_to_last();
    while let Some(key) = iter.key() {
        if time_key_fields(key).1 < from_offset {
            break;
        }
        batch.delete_cf(family(db, TIME_INDEX)?, key);
        iter.prev();
    }
    iter.status()?;
    Ok(())
}

/// The batches of the `Append` ops among `ops`, in order.
fn appended(ops: &[WriteOp]) -> impl Iterator<Item = &StoredBatch> {
    ops.iter().filter_map(|op| match op {
        WriteOp::Append(append) => Some(&append.batch),
        _ => None,
    })
}

/// The RocksDB write for the ops of one journal record whose payload
/// starts at `payload_offset` of journal file `file`; `batches` say, for
/// each `Append` in order, where its bytes begin in the payload and their
/// checksum.
fn index_batch(
    db: &DB,
    ops: &[WriteOp],
    file: u32,
    payload_offset: u64,
    batches: &[(usize, u32)],
) -> Result<WriteBatch, StorageError> {
    let mut batch = WriteBatch::default();
    let mut places = batches.iter();
    for op in ops {
        let place = match op {
            WriteOp::Append(append) => {
                let (start, crc) =
                    places.next().ok_or_else(|| StorageError::Io("journal: batch positions missing".into()))?;
                let len = append.batch.bytes.len() as u32;
                Some((Location { file, offset: payload_offset + *start as u64, len }, *crc))
            }
            _ => None,
        };
        add_to_batch(db, &mut batch, op, place)?;
    }
    Ok(batch)
}

/// Adds one op to `batch`; an `Append` stores `place`: where its bytes are
/// in the journal, and their checksum.
fn add_to_batch(
    db: &DB,
    batch: &mut WriteBatch,
    op: &WriteOp,
    place: Option<(Location, u32)>,
) -> Result<(), StorageError> {
    let cf = |name| family(db, name);
    match op {
        WriteOp::Append(append) => {
            let stored = &append.batch;
            let (at, crc) = place.ok_or_else(|| StorageError::Io("journal: an append has no location".into()))?;
            let pointer = encode_batch_pointer(stored, at, crc);
            batch.put_cf(cf(LOGS)?, batch_key(append.log, stored.base_offset), pointer);
            if append.index_timestamp {
                let key = time_key(append.log, stored.max_timestamp, stored.base_offset);
                batch.put_cf(cf(TIME_INDEX)?, key, []);
            }
        }
        WriteOp::PutProducer { log, producer_id, state } => {
            batch.put_cf(cf(PRODUCERS)?, producer_key(*log, *producer_id), encode_producer_state(state));
        }
        WriteOp::PutTopic(topic) => {
            let json = serde_json::to_vec(topic).map_err(|e| StorageError::Io(e.to_string()))?;
            batch.put(topic_key(&topic.name), json);
        }
        WriteOp::PutMeta { key, value } => batch.put(meta_key(key), value),
        WriteOp::DeleteMeta { key } => batch.delete(meta_key(key)),
        WriteOp::TruncateLog { log, from_offset } => truncate_log(db, batch, *log, *from_offset)?,
        WriteOp::RaftAppend { group, index, entry } => batch.put_cf(cf(RAFT_LOG)?, raft_key(*group, *index), entry),
        WriteOp::PutRaftState { group, field, value } => {
            batch.put_cf(cf(RAFT_STATE)?, raft_state_key(*group, *field), value)
        }
        WriteOp::RaftTruncate { group, from } => {
            batch.delete_range_cf(cf(RAFT_LOG)?, raft_key(*group, *from), raft_key(*group, u64::MAX));
            batch.delete_cf(cf(RAFT_LOG)?, raft_key(*group, u64::MAX));
        }
        WriteOp::RaftPurge { group, up_to } => {
            batch.delete_range_cf(cf(RAFT_LOG)?, raft_key(*group, 0), raft_key(*group, *up_to));
            batch.delete_cf(cf(RAFT_LOG)?, raft_key(*group, *up_to));
        }
        WriteOp::PutCoordinatorRecord { shard, key, value } => {
            batch.put_cf(cf(COORDINATOR)?, coordinator_key(*shard, key), value)
        }
        WriteOp::DeleteCoordinatorRecord { shard, key } => {
            batch.delete_cf(cf(COORDINATOR)?, coordinator_key(*shard, key))
        }
        WriteOp::DeleteTopic { name, logs } => {
            batch.delete(topic_key(name));
            for log in logs {
                let (start, end) = log_range(*log);
                for name in [LOGS, TIME_INDEX, PRODUCERS, RAFT_LOG, RAFT_STATE] {
                    batch.delete_range_cf(cf(name)?, start.to_vec(), end.clone());
                }
            }
        }
    }
    Ok(())
}

impl Store for RocksStore {
    fn write(&self, ops: &[WriteOp], sync: bool) -> Result<(), StorageError> {
        let record = seal(ops);
        let (journal_file, rolled) = {
            let mut state = self.lock_writes();
            let rolled = self.write_locked(&mut state, ops, &record)?;
            (state.appender.file(), rolled)
        };
        if sync {
            sync_file(&journal_file)?;
        }
        let deletes = ops.iter().any(|op| matches!(op, WriteOp::DeleteTopic { .. } | WriteOp::TruncateLog { .. }));
        if rolled || deletes {
            self.collect_journal()?;
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), StorageError> {
        // Files before the newest were synced when they were rolled.
        let journal_file = self.lock_writes().appender.file();
        sync_file(&journal_file)
    }

    fn checkpoint(&self) -> Result<(), StorageError> {
        self.flush_index(&mut self.lock_writes(), true)?;
        self.collect_journal()
    }

    fn read(&self, log: LogId, from_offset: i64, max_bytes: usize) -> Result<Vec<StoredBatch>, StorageError> {
        let mut options = Self::read_options_for(log);
        // Fetches skip RocksDB's block and blob checksums, as Kafka's
        // sendfile skips any check: every batch carries its own CRC-32C,
        // which clients verify, and checksumming each fetched byte in
        // software was a fifth of the broker's CPU on the consume path.
        // Flushes, compactions and every other read still verify.
        options.set_verify_checksums(false);
        let mut iter = self.db.raw_iterator_cf_opt(self.family(LOGS)?, options);
        // The batch containing `from_offset` may start before it.
        iter.seek_for_prev(batch_key(log, from_offset));
        if !iter.valid() {
            iter.seek(batch_key(log, from_offset));
        }
        let mut values = Vec::new();
        let mut total_bytes = 0usize;
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            let value = decode_stored_value(log, batch_key_offset(key), value)?;
            if value.last_offset() >= from_offset {
                if !values.is_empty() && total_bytes + value.len() > max_bytes {
                    break;
                }
                total_bytes += value.len();
                values.push(value);
                if total_bytes >= max_bytes {
                    break;
                }
            }
            iter.next();
        }
        iter.status()?;
        drop(iter);
        self.load(log, values)
    }

    fn bounds(&self, log: LogId) -> Result<LogBounds, StorageError> {
        let mut iter = self.db.raw_iterator_cf_opt(self.family(LOGS)?, Self::read_options_for(log));
        iter.seek_to_first();
        let first = iter.key().map(batch_key_offset);
        iter.status()?;
        let last = self.value_at_or_before(log, i64::MAX)?;
        // Offsets and timestamps are in the index: a restart reads no batch bytes.
        let max_timestamp = self.max_timestamp_value(log)?.map_or(-1, |b| b.max_timestamp());
        Ok(LogBounds {
            log_start_offset: first.unwrap_or(0),
            next_offset: last.map_or(0, |b| b.last_offset() + 1),
            max_timestamp,
        })
    }

    fn find_by_timestamp(&self, log: LogId, target_ms: i64) -> Result<Option<StoredBatch>, StorageError> {
        let mut iter = self.db.raw_iterator_cf_opt(self.family(TIME_INDEX)?, Self::read_options_for(log));
        iter.seek(time_key(log, target_ms, i64::MIN));
        let Some(key) = iter.key() else {
            iter.status()?;
            return Ok(None);
        };
        let (_, offset) = time_key_fields(key);
        self.batch_at_or_before(log, offset)
    }

    fn find_max_timestamp(&self, log: LogId) -> Result<Option<StoredBatch>, StorageError> {
        let value = self.max_timestamp_value(log)?;
        self.load_one(log, value)
    }

    fn producer_states(&self, log: LogId) -> Result<Vec<(i64, ProducerState)>, StorageError> {
        let mut iter = self.db.raw_iterator_cf_opt(self.family(PRODUCERS)?, Self::read_options_for(log));
        iter.seek_to_first();
        let mut states = Vec::new();
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            let producer_id = producer_key_id(key);
            let state = decode_producer_state(value).ok_or_else(|| StorageError::CorruptMetadata {
                key: format!("producer {producer_id} of log {log}"),
                reason: "bad producer state encoding".to_owned(),
            })?;
            states.push((producer_id, state));
            iter.next();
        }
        iter.status()?;
        Ok(states)
    }

    fn topics(&self) -> Result<Vec<TopicRecord>, StorageError> {
        let mut topics = Vec::new();
        for item in self.db.iterator(IteratorMode::From(TOPIC_PREFIX, Direction::Forward)) {
            let (key, value) = item?;
            if !key.starts_with(TOPIC_PREFIX) {
                break;
            }
            let topic = serde_json::from_slice(&value).map_err(|e| StorageError::CorruptMetadata {
                key: String::from_utf8_lossy(&key).into_owned(),
                reason: e.to_string(),
            })?;
            topics.push(topic);
        }
        Ok(topics)
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get(meta_key(key))?)
    }

    fn raft_entries(&self, group: GroupId, from: u64, to: u64) -> Result<Vec<(u64, Bytes)>, StorageError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let mut options = ReadOptions::default();
        options.set_iterate_upper_bound(raft_key(group, to).to_vec());
        let mut iter = self.db.raw_iterator_cf_opt(self.family(RAFT_LOG)?, options);
        iter.seek(raft_key(group, from));
        let mut entries = Vec::new();
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            entries.push((raft_key_index(key), Bytes::copy_from_slice(value)));
            iter.next();
        }
        iter.status()?;
        Ok(entries)
    }

    fn raft_state(&self, group: GroupId, field: u8) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get_cf(self.family(RAFT_STATE)?, raft_state_key(group, field))?)
    }

    fn raft_last(&self, group: GroupId) -> Result<Option<(u64, Bytes)>, StorageError> {
        let mut iter = self.db.raw_iterator_cf_opt(self.family(RAFT_LOG)?, Self::read_options_for(group));
        iter.seek_to_last();
        match (iter.key(), iter.value()) {
            (Some(key), Some(value)) => Ok(Some((raft_key_index(key), Bytes::copy_from_slice(value)))),
            _ => {
                iter.status()?;
                Ok(None)
            }
        }
    }

    fn coordinator_records(&self, shard: CoordinatorShard) -> Result<Vec<CoordinatorRecord>, StorageError> {
        let mut iter = self.db.raw_iterator_cf_opt(self.family(COORDINATOR)?, Self::read_options_for(shard));
        iter.seek_to_first();
        let mut records = Vec::new();
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            records.push((key[4..].to_vec(), value.to_vec()));
            iter.next();
        }
        iter.status()?;
        Ok(records)
    }
}

#[path = "rocks_collect.rs"]
mod collect;

#[cfg(test)]
#[path = "rocks_tests.rs"]
mod tests;
