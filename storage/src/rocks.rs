//! The RocksDB implementation of [`Store`]. One database for all partitions,
//! so one WAL sync makes the appends of many partitions durable together.
//!
//! Column families:
//! - `logs`: `[log][offset] -> batch` (RocksDB compression off: producers
//!   already compressed the batches, and recompressing costs CPU for nothing);
//! - `time_index`: `[log][timestamp][offset] -> ()`, one entry each time a
//!   log's running max timestamp rises, so the first entry at or after a
//!   target timestamp names the first batch reaching it;
//! - `producers`: `[log][producer id] -> producer state`;
//! - `coordinator`: `[shard][key] -> value`, consumer-group records;
//! - `default`: metadata (`topic/<name>` -> JSON).

use std::path::Path;

use bytes::Bytes;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode, Options, ReadOptions,
    WriteBatch, WriteOptions, DB,
};

use crate::codec::{
    batch_key, batch_key_offset, coordinator_key, decode_batch_value, decode_producer_state, encode_batch_value,
    encode_producer_state, log_range, meta_key, producer_key, producer_key_id, raft_key, raft_key_index,
    raft_state_key, time_key, time_key_fields, topic_key, TOPIC_PREFIX,
};
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

pub struct RocksStore {
    db: DB,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore").field("path", &self.db.path()).finish()
    }
}

/// Memory bounds. RocksDB's defaults (64 MiB memtables, two per column
/// family, and a block cache per family) let six families hold most of a
/// gigabyte; these keep the broker's whole footprint in the low hundreds.
const MEMTABLES_TOTAL_BYTES: usize = 48 << 20;
const LOG_MEMTABLE_BYTES: usize = 16 << 20;
const RAFT_LOG_MEMTABLE_BYTES: usize = 16 << 20;
const SMALL_MEMTABLE_BYTES: usize = 4 << 20;
const BLOCK_CACHE_BYTES: usize = 16 << 20;

/// Options of a family; all share one block cache.
fn family_options(cache: &Cache, memtable_bytes: usize, block_bytes: usize) -> Options {
    let mut options = Options::default();
    options.set_write_buffer_size(memtable_bytes);
    let mut table = BlockBasedOptions::default();
    table.set_block_size(block_bytes);
    table.set_block_cache(cache);
    options.set_block_based_table_factory(&table);
    options
}

fn logs_options(cache: &Cache, memtable_bytes: usize) -> Options {
    let mut options = family_options(cache, memtable_bytes, 64 << 10);
    options.set_compression_type(DBCompressionType::None);
    options.set_target_file_size_base(64 << 20);
    options
}

/// The partition logs keep batch bytes in blob files (RocksDB's BlobDB): a
/// flush writes each batch once into a blob file and compaction then moves
/// only keys and blob references, so batches are not rewritten level after
/// level. Small batches stay inline, where a blob lookup would cost more.
fn partition_logs_options(cache: &Cache) -> Options {
    let mut options = logs_options(cache, LOG_MEMTABLE_BYTES);
    options.set_enable_blob_files(true);
    options.set_min_blob_size(1024);
    options.set_blob_file_size(256 << 20);
    options.set_blob_compression_type(DBCompressionType::None);
    // Reclaims blob space once retention deletes batches.
    options.set_enable_blob_gc(true);
    options
}

impl RocksStore {
    /// Opens (or creates) the store in `path`. RocksDB replays its WAL here,
    /// which is the crash recovery: a torn tail record is dropped, so a batch
    /// is either wholly present with its index entries or absent.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
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
        // Past this total, the largest memtable is flushed early.
        options.set_db_write_buffer_size(MEMTABLES_TOTAL_BYTES);
        // The `default` family (topic metadata) is small.
        options.set_write_buffer_size(SMALL_MEMTABLE_BYTES);
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let small = || family_options(&cache, SMALL_MEMTABLE_BYTES, 4 << 10);
        let families = vec![
            ColumnFamilyDescriptor::new(LOGS, partition_logs_options(&cache)),
            ColumnFamilyDescriptor::new(TIME_INDEX, small()),
            ColumnFamilyDescriptor::new(PRODUCERS, small()),
            ColumnFamilyDescriptor::new(RAFT_LOG, logs_options(&cache, RAFT_LOG_MEMTABLE_BYTES)),
            ColumnFamilyDescriptor::new(RAFT_STATE, small()),
            ColumnFamilyDescriptor::new(COORDINATOR, small()),
        ];
        let db = DB::open_cf_descriptors(&options, path, families)?;
        Ok(Self { db })
    }

    fn family(&self, name: &str) -> Result<&rocksdb::ColumnFamily, StorageError> {
        self.db.cf_handle(name).ok_or_else(|| StorageError::Io(format!("column family {name} missing")))
    }

    fn read_options_for(log: LogId) -> ReadOptions {
        let (start, end) = log_range(log);
        let mut options = ReadOptions::default();
        options.set_iterate_lower_bound(start.to_vec());
        options.set_iterate_upper_bound(end);
        options
    }

    fn batch_at_or_before(&self, log: LogId, offset: i64) -> Result<Option<StoredBatch>, StorageError> {
        let mut iter = self.db.raw_iterator_cf_opt(self.family(LOGS)?, Self::read_options_for(log));
        iter.seek_for_prev(batch_key(log, offset));
        match (iter.key(), iter.value()) {
            (Some(key), Some(value)) => Ok(Some(decode_batch_value(log, batch_key_offset(key), value)?)),
            _ => {
                iter.status()?;
                Ok(None)
            }
        }
    }

    /// Deletes a log's batches from `from_offset` on, and the time-index
    /// entries that point at them: the index rises with offsets, so those
    /// are the entries after the last one pointing below the cut.
    fn truncate_log(&self, batch: &mut WriteBatch, log: LogId, from_offset: i64) -> Result<(), StorageError> {
        let (_, end) = log_range(log);
        batch.delete_range_cf(self.family(LOGS)?, batch_key(log, from_offset).to_vec(), end);
        let mut iter = self.db.raw_iterator_cf_opt(self.family(TIME_INDEX)?, Self::read_options_for(log));
        iter.seek_to_last();
        while let Some(key) = iter.key() {
            if time_key_fields(key).1 < from_offset {
                break;
            }
            batch.delete_cf(self.family(TIME_INDEX)?, key);
            iter.prev();
        }
        iter.status()?;
        Ok(())
    }

    fn add_to_batch(&self, batch: &mut WriteBatch, op: &WriteOp) -> Result<(), StorageError> {
        match op {
            WriteOp::Append(append) => {
                let stored = &append.batch;
                batch.put_cf(self.family(LOGS)?, batch_key(append.log, stored.base_offset), encode_batch_value(stored));
                if append.index_timestamp {
                    let key = time_key(append.log, stored.max_timestamp, stored.base_offset);
                    batch.put_cf(self.family(TIME_INDEX)?, key, []);
                }
            }
            WriteOp::PutProducer { log, producer_id, state } => {
                batch.put_cf(self.family(PRODUCERS)?, producer_key(*log, *producer_id), encode_producer_state(state));
            }
            WriteOp::PutTopic(topic) => {
                let json = serde_json::to_vec(topic).map_err(|e| StorageError::Io(e.to_string()))?;
                batch.put(topic_key(&topic.name), json);
            }
            WriteOp::PutMeta { key, value } => batch.put(meta_key(key), value),
            WriteOp::DeleteMeta { key } => batch.delete(meta_key(key)),
            WriteOp::TruncateLog { log, from_offset } => self.truncate_log(batch, *log, *from_offset)?,
            WriteOp::RaftAppend { group, index, entry } => {
                batch.put_cf(self.family(RAFT_LOG)?, raft_key(*group, *index), entry)
            }
            WriteOp::PutRaftState { group, field, value } => {
                batch.put_cf(self.family(RAFT_STATE)?, raft_state_key(*group, *field), value)
            }
            WriteOp::RaftTruncate { group, from } => {
                batch.delete_range_cf(self.family(RAFT_LOG)?, raft_key(*group, *from), raft_key(*group, u64::MAX));
                batch.delete_cf(self.family(RAFT_LOG)?, raft_key(*group, u64::MAX));
            }
            WriteOp::RaftPurge { group, up_to } => {
                batch.delete_range_cf(self.family(RAFT_LOG)?, raft_key(*group, 0), raft_key(*group, *up_to));
                batch.delete_cf(self.family(RAFT_LOG)?, raft_key(*group, *up_to));
            }
            WriteOp::PutCoordinatorRecord { shard, key, value } => {
                batch.put_cf(self.family(COORDINATOR)?, coordinator_key(*shard, key), value)
            }
            WriteOp::DeleteCoordinatorRecord { shard, key } => {
                batch.delete_cf(self.family(COORDINATOR)?, coordinator_key(*shard, key))
            }
            WriteOp::DeleteTopic { name, logs } => {
                batch.delete(topic_key(name));
                for log in logs {
                    let (start, end) = log_range(*log);
                    for family in [LOGS, TIME_INDEX, PRODUCERS, RAFT_LOG, RAFT_STATE] {
                        batch.delete_range_cf(self.family(family)?, start.to_vec(), end.clone());
                    }
                }
            }
        }
        Ok(())
    }
}

impl Store for RocksStore {
    fn write(&self, ops: &[WriteOp], sync: bool) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        for op in ops {
            self.add_to_batch(&mut batch, op)?;
        }
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        self.db.write_opt(batch, &options)?;
        Ok(())
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.db.flush_wal(true)?;
        Ok(())
    }

    fn checkpoint(&self) -> Result<(), StorageError> {
        for family in [LOGS, TIME_INDEX, PRODUCERS, RAFT_LOG, RAFT_STATE, COORDINATOR] {
            self.db.flush_cf(self.family(family)?)?;
        }
        self.db.flush()?;
        Ok(())
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
        let mut batches = Vec::new();
        let mut total_bytes = 0usize;
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            let batch = decode_batch_value(log, batch_key_offset(key), value)?;
            if batch.last_offset >= from_offset {
                if !batches.is_empty() && total_bytes + batch.bytes.len() > max_bytes {
                    break;
                }
                total_bytes += batch.bytes.len();
                batches.push(batch);
                if total_bytes >= max_bytes {
                    break;
                }
            }
            iter.next();
        }
        iter.status()?;
        Ok(batches)
    }

    fn bounds(&self, log: LogId) -> Result<LogBounds, StorageError> {
        let mut iter = self.db.raw_iterator_cf_opt(self.family(LOGS)?, Self::read_options_for(log));
        iter.seek_to_first();
        let first = iter.key().map(batch_key_offset);
        iter.status()?;
        let last = self.batch_at_or_before(log, i64::MAX)?;
        let max_timestamp = self.find_max_timestamp(log)?.map_or(-1, |b| b.max_timestamp);
        Ok(LogBounds {
            log_start_offset: first.unwrap_or(0),
            next_offset: last.map_or(0, |b| b.last_offset + 1),
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
        let mut iter = self.db.raw_iterator_cf_opt(self.family(TIME_INDEX)?, Self::read_options_for(log));
        iter.seek_to_last();
        let Some(key) = iter.key() else {
            iter.status()?;
            return Ok(None);
        };
        let (_, offset) = time_key_fields(key);
        self.batch_at_or_before(log, offset)
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
