//! A binary encoding of [`WriteOp`] lists, so the replication layer can
//! carry them inside its log entries. Decoding is zero-copy for batch bytes
//! (slices of the entry) and bounds-checked everywhere: a corrupt entry is
//! an error, never a panic or an input-sized allocation.

use bytes::{BufMut, Bytes};

use crate::codec::{decode_producer_state, encode_producer_state, producer_state_len};
use crate::{LogAppend, StorageError, StoredBatch, TopicRecord, WriteOp};

const APPEND: u8 = 1;
const PUT_PRODUCER: u8 = 2;
const PUT_TOPIC: u8 = 3;
const DELETE_TOPIC: u8 = 4;
const PUT_META: u8 = 5;
const DELETE_META: u8 = 6;
const RAFT_APPEND: u8 = 7;
const RAFT_TRUNCATE: u8 = 8;
const RAFT_PURGE: u8 = 9;
const PUT_RAFT_STATE: u8 = 10;
const PUT_COORDINATOR_RECORD: u8 = 11;
const DELETE_COORDINATOR_RECORD: u8 = 12;
const TRUNCATE_LOG: u8 = 13;

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.put_u32(bytes.len() as u32);
    out.extend_from_slice(bytes);
}

/// The exact length of the encoding of `ops`, so the journal record it goes
/// into is allocated once (a short guess made the record grow, copying
/// whole write groups on the writer thread).
pub(crate) fn encoded_len(ops: &[WriteOp]) -> usize {
    const LEN: usize = 4;
    let op_len = |op: &WriteOp| {
        1 + match op {
            WriteOp::Append(append) => 4 + 8 * 3 + 1 + LEN + append.batch.bytes.len(),
            WriteOp::PutProducer { state, .. } => 4 + 8 + LEN + producer_state_len(state),
            WriteOp::PutTopic(topic) => LEN + serde_json::to_vec(topic).map_or(0, |json| json.len()),
            WriteOp::DeleteTopic { name, logs } => LEN + name.len() + LEN + 4 * logs.len(),
            WriteOp::PutMeta { key, value } => LEN + key.len() + LEN + value.len(),
            WriteOp::DeleteMeta { key } => LEN + key.len(),
            WriteOp::TruncateLog { .. } => 4 + 8,
            WriteOp::RaftAppend { entry, .. } => 4 + 8 + LEN + entry.len(),
            WriteOp::RaftTruncate { .. } | WriteOp::RaftPurge { .. } => 4 + 8,
            WriteOp::PutRaftState { value, .. } => 4 + 1 + LEN + value.len(),
            WriteOp::PutCoordinatorRecord { key, value, .. } => 4 + LEN + key.len() + LEN + value.len(),
            WriteOp::DeleteCoordinatorRecord { key, .. } => 4 + LEN + key.len(),
        }
    };
    LEN + ops.iter().map(op_len).sum::<usize>()
}

/// Appends the encoding of `ops` to `out`.
pub fn encode_ops(ops: &[WriteOp], out: &mut Vec<u8>) {
    encode_ops_locating_batches(ops, out);
}

/// [`encode_ops`], returning where in `out` each `Append`'s batch bytes
/// begin, in op order (the journal points at them there).
pub(crate) fn encode_ops_locating_batches(ops: &[WriteOp], out: &mut Vec<u8>) -> Vec<usize> {
    let mut batch_starts = Vec::new();
    out.put_u32(ops.len() as u32);
    for op in ops {
        match op {
            WriteOp::Append(append) => {
                out.put_u8(APPEND);
                out.put_u32(append.log);
                out.put_i64(append.batch.base_offset);
                out.put_i64(append.batch.last_offset);
                out.put_i64(append.batch.max_timestamp);
                out.put_u8(u8::from(append.index_timestamp));
                batch_starts.push(out.len() + 4);
                put_bytes(out, &append.batch.bytes);
            }
            WriteOp::PutProducer { log, producer_id, state } => {
                out.put_u8(PUT_PRODUCER);
                out.put_u32(*log);
                out.put_i64(*producer_id);
                put_bytes(out, &encode_producer_state(state));
            }
            WriteOp::PutTopic(topic) => {
                out.put_u8(PUT_TOPIC);
                put_bytes(out, &serde_json::to_vec(topic).unwrap_or_default());
            }
            WriteOp::DeleteTopic { name, logs } => {
                out.put_u8(DELETE_TOPIC);
                put_bytes(out, name.as_bytes());
                out.put_u32(logs.len() as u32);
                logs.iter().for_each(|log| out.put_u32(*log));
            }
            WriteOp::PutMeta { key, value } => {
                out.put_u8(PUT_META);
                put_bytes(out, key.as_bytes());
                put_bytes(out, value);
            }
            WriteOp::DeleteMeta { key } => {
                out.put_u8(DELETE_META);
                put_bytes(out, key.as_bytes());
            }
            WriteOp::TruncateLog { log, from_offset } => {
                out.put_u8(TRUNCATE_LOG);
                out.put_u32(*log);
                out.put_i64(*from_offset);
            }
            WriteOp::RaftAppend { group, index, entry } => {
                out.put_u8(RAFT_APPEND);
                out.put_u32(*group);
                out.put_u64(*index);
                put_bytes(out, entry);
            }
            WriteOp::RaftTruncate { group, from } => {
                out.put_u8(RAFT_TRUNCATE);
                out.put_u32(*group);
                out.put_u64(*from);
            }
            WriteOp::RaftPurge { group, up_to } => {
                out.put_u8(RAFT_PURGE);
                out.put_u32(*group);
                out.put_u64(*up_to);
            }
            WriteOp::PutRaftState { group, field, value } => {
                out.put_u8(PUT_RAFT_STATE);
                out.put_u32(*group);
                out.put_u8(*field);
                put_bytes(out, value);
            }
            WriteOp::PutCoordinatorRecord { shard, key, value } => {
                out.put_u8(PUT_COORDINATOR_RECORD);
                out.put_u32(*shard);
                put_bytes(out, key);
                put_bytes(out, value);
            }
            WriteOp::DeleteCoordinatorRecord { shard, key } => {
                out.put_u8(DELETE_COORDINATOR_RECORD);
                out.put_u32(*shard);
                put_bytes(out, key);
            }
        }
    }
    batch_starts
}

/// A bounds-checked cursor over an encoded entry.
struct Reader<'a> {
    source: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], StorageError> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.source.len()).ok_or_else(corrupt)?;
        let slice = &self.source[self.at..end];
        self.at = end;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8, StorageError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, StorageError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, StorageError> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(raw))
    }
    fn i64(&mut self) -> Result<i64, StorageError> {
        Ok(self.u64()? as i64)
    }
    fn bytes(&mut self) -> Result<Bytes, StorageError> {
        let len = self.u32()? as usize;
        let start = self.at;
        self.take(len)?;
        Ok(self.source.slice(start..start + len))
    }
    fn string(&mut self) -> Result<String, StorageError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| corrupt())
    }
}

fn corrupt() -> StorageError {
    StorageError::CorruptMetadata { key: "replicated write".to_owned(), reason: "truncated or malformed".to_owned() }
}

/// Decodes what [`encode_ops`] wrote.
pub fn decode_ops(source: &Bytes) -> Result<Vec<WriteOp>, StorageError> {
    decode_ops_locating_batches(source).map(|(ops, _)| ops)
}

/// [`decode_ops`], also returning where in `source` each `Append`'s batch
/// bytes begin, in op order.
pub(crate) fn decode_ops_locating_batches(source: &Bytes) -> Result<(Vec<WriteOp>, Vec<usize>), StorageError> {
    let mut batch_starts = Vec::new();
    let mut reader = Reader { source, at: 0 };
    let count = reader.u32()? as usize;
    // Each op takes at least 5 bytes, which bounds the allocation by the input.
    let mut ops = Vec::with_capacity(count.min(source.len() / 5));
    for _ in 0..count {
        let op = match reader.u8()? {
            APPEND => {
                let log = reader.u32()?;
                let (base_offset, last_offset, max_timestamp) = (reader.i64()?, reader.i64()?, reader.i64()?);
                let index_timestamp = reader.u8()? != 0;
                batch_starts.push(reader.at + 4);
                let bytes = reader.bytes()?;
                let batch = StoredBatch { base_offset, last_offset, max_timestamp, bytes };
                WriteOp::Append(LogAppend { log, batch, index_timestamp })
            }
            PUT_PRODUCER => {
                let (log, producer_id) = (reader.u32()?, reader.i64()?);
                let state = decode_producer_state(&reader.bytes()?).ok_or_else(corrupt)?;
                WriteOp::PutProducer { log, producer_id, state }
            }
            PUT_TOPIC => {
                let topic: TopicRecord = serde_json::from_slice(&reader.bytes()?).map_err(|_| corrupt())?;
                WriteOp::PutTopic(topic)
            }
            DELETE_TOPIC => {
                let name = reader.string()?;
                let count = reader.u32()? as usize;
                let logs = (0..count).map(|_| reader.u32()).collect::<Result<Vec<_>, _>>()?;
                WriteOp::DeleteTopic { name, logs }
            }
            PUT_META => WriteOp::PutMeta { key: reader.string()?, value: reader.bytes()?.to_vec() },
            DELETE_META => WriteOp::DeleteMeta { key: reader.string()? },
            TRUNCATE_LOG => WriteOp::TruncateLog { log: reader.u32()?, from_offset: reader.i64()? },
            RAFT_APPEND => WriteOp::RaftAppend { group: reader.u32()?, index: reader.u64()?, entry: reader.bytes()? },
            RAFT_TRUNCATE => WriteOp::RaftTruncate { group: reader.u32()?, from: reader.u64()? },
            RAFT_PURGE => WriteOp::RaftPurge { group: reader.u32()?, up_to: reader.u64()? },
            PUT_RAFT_STATE => {
                WriteOp::PutRaftState { group: reader.u32()?, field: reader.u8()?, value: reader.bytes()?.to_vec() }
            }
            PUT_COORDINATOR_RECORD => WriteOp::PutCoordinatorRecord {
                shard: reader.u32()?,
                key: reader.bytes()?.to_vec(),
                value: reader.bytes()?.to_vec(),
            },
            DELETE_COORDINATOR_RECORD => {
                WriteOp::DeleteCoordinatorRecord { shard: reader.u32()?, key: reader.bytes()?.to_vec() }
            }
            _ => return Err(corrupt()),
        };
        ops.push(op);
    }
    Ok((ops, batch_starts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ProducerBatch, ProducerState};

    #[test]
    fn every_op_round_trips_and_truncation_is_an_error() {
        let ops = vec![
            WriteOp::Append(LogAppend {
                log: 3,
                batch: StoredBatch {
                    base_offset: 10,
                    last_offset: 12,
                    max_timestamp: -4,
                    bytes: Bytes::from_static(b"batch"),
                },
                index_timestamp: true,
            }),
            WriteOp::PutProducer {
                log: 3,
                producer_id: 9,
                state: ProducerState {
                    epoch: 1,
                    batches: [ProducerBatch {
                        first_sequence: 0,
                        last_sequence: 2,
                        base_offset: 10,
                        append_time_ms: 5,
                    }]
                    .into(),
                },
            },
            WriteOp::PutTopic(TopicRecord {
                name: "t".to_owned(),
                id: [1; 16],
                logs: vec![3],
                configs: Default::default(),
                created_ms: 1,
            }),
            WriteOp::DeleteTopic { name: "t".to_owned(), logs: vec![3, 4] },
            WriteOp::PutMeta { key: "k".to_owned(), value: vec![1, 2] },
            WriteOp::DeleteMeta { key: "k".to_owned() },
            WriteOp::TruncateLog { log: 3, from_offset: 42 },
            WriteOp::RaftAppend { group: 1, index: 2, entry: Bytes::from_static(b"e") },
            WriteOp::RaftTruncate { group: 1, from: 3 },
            WriteOp::RaftPurge { group: 1, up_to: 1 },
            WriteOp::PutRaftState { group: 1, field: 2, value: vec![3] },
            WriteOp::PutCoordinatorRecord { shard: 4, key: vec![1, 2], value: vec![3, 4, 5] },
            WriteOp::DeleteCoordinatorRecord { shard: 4, key: vec![1, 2] },
        ];
        let mut encoded = Vec::new();
        encode_ops(&ops, &mut encoded);
        assert_eq!(encoded_len(&ops), encoded.len());
        for op in &ops {
            let mut one = Vec::new();
            encode_ops(std::slice::from_ref(op), &mut one);
            assert_eq!(encoded_len(std::slice::from_ref(op)), one.len(), "{op:?}");
        }
        let encoded = Bytes::from(encoded);
        let decoded = decode_ops(&encoded).expect("decodes");
        assert_eq!(format!("{ops:?}"), format!("{decoded:?}"));
        for cut in 0..encoded.len() {
            assert!(decode_ops(&encoded.slice(..cut)).is_err(), "cut at {cut}");
        }
    }
}
