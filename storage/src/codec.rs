//! Byte layouts of keys and values. Keys are big-endian so RocksDB's byte
//! order is numeric order: one log's batches are contiguous and sorted by
//! offset, and its time-index entries sorted by timestamp.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::journal::Location;
use crate::{LogId, ProducerBatch, ProducerState, StorageError, StoredBatch, PRODUCER_BATCHES_KEPT};

/// Offsets and timestamps are i64 but may be negative (timestamps); flipping
/// the sign bit makes their big-endian bytes sort numerically.
fn ordered_i64(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

fn from_ordered_i64(bytes: &[u8]) -> i64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[..8]);
    (u64::from_be_bytes(raw) ^ (1 << 63)) as i64
}

/// `[log][offset]`
pub(crate) fn batch_key(log: LogId, offset: i64) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..4].copy_from_slice(&log.to_be_bytes());
    key[4..].copy_from_slice(&ordered_i64(offset));
    key
}

pub(crate) fn batch_key_offset(key: &[u8]) -> i64 {
    from_ordered_i64(&key[4..12])
}

/// The first key of `log`'s range and the first key past it.
pub(crate) fn log_range(log: LogId) -> ([u8; 4], Vec<u8>) {
    let start = log.to_be_bytes();
    let end = match log.checked_add(1) {
        Some(next) => next.to_be_bytes().to_vec(),
        None => vec![0xff; 5],
    };
    (start, end)
}

/// `[log][timestamp][offset]`
pub(crate) fn time_key(log: LogId, timestamp: i64, offset: i64) -> [u8; 20] {
    let mut key = [0u8; 20];
    key[..4].copy_from_slice(&log.to_be_bytes());
    key[4..12].copy_from_slice(&ordered_i64(timestamp));
    key[12..].copy_from_slice(&ordered_i64(offset));
    key
}

pub(crate) fn time_key_fields(key: &[u8]) -> (i64, i64) {
    (from_ordered_i64(&key[4..12]), from_ordered_i64(&key[12..20]))
}

/// `[group][index]`
pub(crate) fn raft_key(group: crate::GroupId, index: u64) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..4].copy_from_slice(&group.to_be_bytes());
    key[4..].copy_from_slice(&index.to_be_bytes());
    key
}

pub(crate) fn raft_key_index(key: &[u8]) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&key[4..12]);
    u64::from_be_bytes(raw)
}

/// `[group][field]`
pub(crate) fn raft_state_key(group: crate::GroupId, field: u8) -> [u8; 5] {
    let mut key = [0u8; 5];
    key[..4].copy_from_slice(&group.to_be_bytes());
    key[4] = field;
    key
}

/// `[shard][key]`
pub(crate) fn coordinator_key(shard: crate::CoordinatorShard, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + key.len());
    out.extend_from_slice(&shard.to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// `[log][producer id]`
pub(crate) fn producer_key(log: LogId, producer_id: i64) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..4].copy_from_slice(&log.to_be_bytes());
    key[4..].copy_from_slice(&ordered_i64(producer_id));
    key
}

pub(crate) fn producer_key_id(key: &[u8]) -> i64 {
    from_ordered_i64(&key[4..12])
}

pub(crate) fn topic_key(name: &str) -> Vec<u8> {
    let mut key = b"topic/".to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

pub(crate) fn meta_key(name: &str) -> Vec<u8> {
    let mut key = b"meta/".to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

pub(crate) const TOPIC_PREFIX: &[u8] = b"topic/";

/// Inline batch value (written before the journal existed, still read):
/// `[crc32 of the rest: 4][last offset: 8][max timestamp: 8][batch bytes]`.
/// The checksum is Skein's own (crc32fast), so corruption below the Kafka
/// layer is reported as such instead of being served to consumers.
const BATCH_VALUE_HEADER: usize = 20;

/// Pointer batch value, what the store writes now: `[crc32 of the batch
/// bytes: 4][last offset: 8][max timestamp: 8][journal file: 4][offset in
/// it: 8][length: 4]`. An inline value holds a whole Kafka batch (at least
/// 61 bytes) behind its header, so it is never this short.
pub(crate) const BATCH_POINTER_LEN: usize = 36;

/// A stored batch as its value describes it.
pub(crate) enum BatchValue {
    Inline(StoredBatch),
    InJournal { base_offset: i64, last_offset: i64, max_timestamp: i64, crc: u32, at: Location },
}

impl BatchValue {
    pub(crate) fn last_offset(&self) -> i64 {
        match self {
            BatchValue::Inline(batch) => batch.last_offset,
            BatchValue::InJournal { last_offset, .. } => *last_offset,
        }
    }

    pub(crate) fn max_timestamp(&self) -> i64 {
        match self {
            BatchValue::Inline(batch) => batch.max_timestamp,
            BatchValue::InJournal { max_timestamp, .. } => *max_timestamp,
        }
    }

    /// Length of the batch bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            BatchValue::Inline(batch) => batch.bytes.len(),
            BatchValue::InJournal { at, .. } => at.len as usize,
        }
    }
}

/// `crc` is the crc32fast checksum of `batch.bytes`.
pub(crate) fn encode_batch_pointer(batch: &StoredBatch, at: Location, crc: u32) -> [u8; BATCH_POINTER_LEN] {
    let mut value = [0u8; BATCH_POINTER_LEN];
    value[..4].copy_from_slice(&crc.to_be_bytes());
    value[4..12].copy_from_slice(&batch.last_offset.to_be_bytes());
    value[12..20].copy_from_slice(&batch.max_timestamp.to_be_bytes());
    value[20..24].copy_from_slice(&at.file.to_be_bytes());
    value[24..32].copy_from_slice(&at.offset.to_be_bytes());
    value[32..36].copy_from_slice(&at.len.to_be_bytes());
    value
}

fn be_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(raw)
}

pub(crate) fn decode_stored_value(log: LogId, base_offset: i64, value: &[u8]) -> Result<BatchValue, StorageError> {
    if value.len() != BATCH_POINTER_LEN {
        return decode_batch_value(log, base_offset, value).map(BatchValue::Inline);
    }
    Ok(BatchValue::InJournal {
        base_offset,
        last_offset: be_u64(&value[4..12]) as i64,
        max_timestamp: be_u64(&value[12..20]) as i64,
        crc: be_u32(&value[..4]),
        at: Location { file: be_u32(&value[20..24]), offset: be_u64(&value[24..32]), len: be_u32(&value[32..36]) },
    })
}

/// The journal file a stored value points into (none for an inline value).
pub(crate) fn pointed_file(value: &[u8]) -> Option<u32> {
    (value.len() == BATCH_POINTER_LEN).then(|| be_u32(&value[20..24]))
}

#[cfg(test)]
pub(crate) fn encode_batch_value(batch: &StoredBatch) -> Vec<u8> {
    let mut value = Vec::with_capacity(BATCH_VALUE_HEADER + batch.bytes.len());
    value.extend_from_slice(&[0; 4]);
    value.extend_from_slice(&batch.last_offset.to_be_bytes());
    value.extend_from_slice(&batch.max_timestamp.to_be_bytes());
    value.extend_from_slice(&batch.bytes);
    let crc = crc32fast::hash(&value[4..]);
    value[..4].copy_from_slice(&crc.to_be_bytes());
    value
}

pub(crate) fn decode_batch_value(log: LogId, base_offset: i64, value: &[u8]) -> Result<StoredBatch, StorageError> {
    let corrupt = |reason: &str| StorageError::Corrupt { log, offset: base_offset, reason: reason.to_owned() };
    if value.len() < BATCH_VALUE_HEADER {
        return Err(corrupt("value shorter than its header"));
    }
    let stored_crc = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
    if crc32fast::hash(&value[4..]) != stored_crc {
        return Err(corrupt("checksum mismatch"));
    }
    let mut last = [0u8; 8];
    last.copy_from_slice(&value[4..12]);
    let mut max_ts = [0u8; 8];
    max_ts.copy_from_slice(&value[12..20]);
    Ok(StoredBatch {
        base_offset,
        last_offset: i64::from_be_bytes(last),
        max_timestamp: i64::from_be_bytes(max_ts),
        bytes: Bytes::copy_from_slice(&value[BATCH_VALUE_HEADER..]),
    })
}

/// The length of [`encode_producer_state`]'s output.
pub(crate) fn producer_state_len(state: &ProducerState) -> usize {
    3 + state.batches.len().min(PRODUCER_BATCHES_KEPT) * 24
}

/// Producer state value: `[epoch: 2][count: 1]` then per batch
/// `[first seq: 4][last seq: 4][base offset: 8][append time: 8]`.
pub(crate) fn encode_producer_state(state: &ProducerState) -> Vec<u8> {
    let kept = state.batches.len().min(PRODUCER_BATCHES_KEPT);
    let mut value = Vec::with_capacity(producer_state_len(state));
    value.extend_from_slice(&state.epoch.to_be_bytes());
    value.push(kept as u8);
    for batch in state.batches.iter().skip(state.batches.len() - kept) {
        value.extend_from_slice(&batch.first_sequence.to_be_bytes());
        value.extend_from_slice(&batch.last_sequence.to_be_bytes());
        value.extend_from_slice(&batch.base_offset.to_be_bytes());
        value.extend_from_slice(&batch.append_time_ms.to_be_bytes());
    }
    value
}

pub(crate) fn decode_producer_state(value: &[u8]) -> Option<ProducerState> {
    let epoch = i16::from_be_bytes([*value.first()?, *value.get(1)?]);
    let count = usize::from(*value.get(2)?);
    if value.len() != 3 + count * 24 {
        return None;
    }
    let mut batches = VecDeque::with_capacity(count);
    for chunk in value[3..].chunks_exact(24) {
        let i32_at = |at: usize| i32::from_be_bytes([chunk[at], chunk[at + 1], chunk[at + 2], chunk[at + 3]]);
        let i64_at = |at: usize| {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&chunk[at..at + 8]);
            i64::from_be_bytes(raw)
        };
        batches.push_back(ProducerBatch {
            first_sequence: i32_at(0),
            last_sequence: i32_at(4),
            base_offset: i64_at(8),
            append_time_ms: i64_at(16),
        });
    }
    Some(ProducerState { epoch, batches })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_numerically() {
        assert!(batch_key(1, 9) < batch_key(1, 10));
        assert!(batch_key(1, i64::MAX) < batch_key(2, 0));
        assert!(time_key(1, -5, 0) < time_key(1, 3, 0));
        assert_eq!(time_key_fields(&time_key(3, -7, 12)), (-7, 12));
        assert_eq!(batch_key_offset(&batch_key(3, 77)), 77);
    }

    #[test]
    fn producer_state_round_trips_and_rejects_garbage() {
        let mut state = ProducerState { epoch: 3, batches: VecDeque::new() };
        for i in 0..7 {
            state.batches.push_back(ProducerBatch {
                first_sequence: i * 10,
                last_sequence: i * 10 + 9,
                base_offset: i64::from(i) * 100,
                append_time_ms: 5,
            });
        }
        let decoded = decode_producer_state(&encode_producer_state(&state)).expect("decodes");
        assert_eq!(decoded.epoch, 3);
        assert_eq!(decoded.batches.len(), PRODUCER_BATCHES_KEPT);
        assert_eq!(decoded.batches.back(), state.batches.back());
        assert!(decode_producer_state(&[0, 1, 2]).is_none());
    }

    #[test]
    fn batch_value_detects_corruption() {
        let batch =
            StoredBatch { base_offset: 5, last_offset: 7, max_timestamp: 99, bytes: Bytes::from_static(b"abc") };
        let mut value = encode_batch_value(&batch);
        assert_eq!(decode_batch_value(1, 5, &value).expect("valid"), batch);
        value[22] ^= 1;
        assert!(matches!(decode_batch_value(1, 5, &value), Err(StorageError::Corrupt { .. })));
    }
}
