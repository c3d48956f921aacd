//! A zero-copy view of Kafka RecordBatch v2 (the only format Kafka 4.x
//! accepts, KIP-724). Produce never decompresses: it reads the 61-byte header,
//! checks the CRC-32C and patches the base offset in place. Only timestamp
//! lookups decode records, through [`first_record_at_or_after`].
//!
//! Layout: baseOffset 0..8, batchLength 8..12, partitionLeaderEpoch 12..16,
//! magic 16, crc 17..21, attributes 21..23, lastOffsetDelta 23..27,
//! baseTimestamp 27..35, maxTimestamp 35..43, producerId 43..51,
//! producerEpoch 51..53, baseSequence 53..57, recordCount 57..61. The CRC
//! covers bytes 21..end, so baseOffset and partitionLeaderEpoch can be
//! rewritten without recomputing it.

use bytes::Bytes;

pub const HEADER_BYTES: usize = 61;
/// Bytes before `batchLength`'s coverage starts: baseOffset + batchLength.
const LOG_OVERHEAD: usize = 12;
const CRC_RANGE_START: usize = 21;
pub const NO_PRODUCER_ID: i64 = -1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("record set of {length} bytes is shorter than a batch header")]
    TooShort { length: usize },
    #[error("record batch magic {magic} is not supported; only v2 is")]
    UnsupportedMagic { magic: i8 },
    #[error("batch length field says {declared} bytes but {available} are present")]
    LengthMismatch { declared: i64, available: usize },
    #[error("CRC-32C mismatch: header says {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("record count {count} does not match last offset delta {last_offset_delta}")]
    BadRecordCount { count: i32, last_offset_delta: i32 },
    #[error("a produce request must carry exactly one record batch, found more")]
    MultipleBatches,
}

/// Compression codec named by the low three attribute bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
    Unknown(u8),
}

/// The decoded fixed header of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(raw)
}

impl BatchHeader {
    /// Reads the header fields; checks only that 61 bytes are present.
    pub fn parse(bytes: &[u8]) -> Result<Self, BatchError> {
        if bytes.len() < HEADER_BYTES {
            return Err(BatchError::TooShort { length: bytes.len() });
        }
        Ok(Self {
            base_offset: be_i64(bytes, 0),
            batch_length: be_i32(bytes, 8),
            partition_leader_epoch: be_i32(bytes, 12),
            magic: bytes[16] as i8,
            crc: be_i32(bytes, 17) as u32,
            attributes: be_i16(bytes, 21),
            last_offset_delta: be_i32(bytes, 23),
            base_timestamp: be_i64(bytes, 27),
            max_timestamp: be_i64(bytes, 35),
            producer_id: be_i64(bytes, 43),
            producer_epoch: be_i16(bytes, 51),
            base_sequence: be_i32(bytes, 53),
            record_count: be_i32(bytes, 57),
        })
    }

    /// Size of the whole batch on the wire, log overhead included.
    pub fn total_bytes(&self) -> i64 {
        LOG_OVERHEAD as i64 + i64::from(self.batch_length)
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn codec(&self) -> Codec {
        match self.attributes & 0x07 {
            0 => Codec::None,
            1 => Codec::Gzip,
            2 => Codec::Snappy,
            3 => Codec::Lz4,
            4 => Codec::Zstd,
            other => Codec::Unknown(other as u8),
        }
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    pub fn has_producer_id(&self) -> bool {
        self.producer_id != NO_PRODUCER_ID
    }

    /// Sequence number of the last record in the batch (sequences wrap at i32::MAX).
    pub fn last_sequence(&self) -> i32 {
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        (last % (i64::from(i32::MAX) + 1)) as i32
    }
}

fn crc_of(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[CRC_RANGE_START..])
}

/// Validates a record set that must hold exactly one v2 batch, as a Produce
/// request v3+ does: magic, declared length, CRC-32C and record count.
pub fn validate_single_batch(records: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(records)?;
    if header.magic != 2 {
        return Err(BatchError::UnsupportedMagic { magic: header.magic });
    }
    let declared = header.total_bytes();
    if declared < HEADER_BYTES as i64 || declared > records.len() as i64 {
        return Err(BatchError::LengthMismatch { declared, available: records.len() });
    }
    if declared < records.len() as i64 {
        return Err(BatchError::MultipleBatches);
    }
    let computed = crc_of(records);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch { stored: header.crc, computed });
    }
    if header.record_count <= 0 || header.last_offset_delta != header.record_count - 1 {
        return Err(BatchError::BadRecordCount {
            count: header.record_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    Ok(header)
}

/// Rewrites the base offset in place; the CRC does not cover it.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Rewrites the partition leader epoch in place; the CRC does not cover it.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[12..16].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch as LogAppendTime with the given time and recomputes the
/// CRC (attributes and maxTimestamp are covered by it).
pub fn set_log_append_time(batch: &mut [u8], append_time_ms: i64) {
    let attributes = be_i16(batch, 21) | 0x08;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[35..43].copy_from_slice(&append_time_ms.to_be_bytes());
    let crc = crc_of(batch);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Iterates the batches of a stored record set (one or more whole batches).
/// Stops at the first batch whose header is short or whose length overruns.
pub fn batches(records: &Bytes) -> impl Iterator<Item = (BatchHeader, Bytes)> + '_ {
    let mut position = 0usize;
    std::iter::from_fn(move || {
        let rest = records.get(position..)?;
        let header = BatchHeader::parse(rest).ok()?;
        let size = usize::try_from(header.total_bytes()).ok()?;
        if size < HEADER_BYTES || size > rest.len() {
            return None;
        }
        let batch = records.slice(position..position + size);
        position += size;
        Some((header, batch))
    })
}

/// The offset and timestamp of the first record in `batch` whose timestamp
/// is at least `target_ms`, decompressing as needed. `None` if no record
/// qualifies or the batch cannot be decoded.
pub fn first_record_at_or_after(batch: &Bytes, target_ms: i64) -> Option<(i64, i64)> {
    let header = BatchHeader::parse(batch).ok()?;
    if header.is_log_append_time() {
        return (header.max_timestamp >= target_ms).then_some((header.base_offset, header.max_timestamp));
    }
    let mut buf = batch.clone();
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).ok()?;
    set.records.iter().find(|record| record.timestamp >= target_ms).map(|record| (record.offset, record.timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    pub(crate) fn encode_batch(timestamps: &[i64], compression: Compression) -> BytesMut {
        let records: Vec<Record> = timestamps
            .iter()
            .enumerate()
            .map(|(i, ts)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 7,
                producer_epoch: 1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32,
                timestamp: *ts,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(vec![b'v'; 100])),
                headers: [(StrBytes::from_static_str("h"), None)].into_iter().collect(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression };
        RecordBatchEncoder::encode(&mut buf, records.iter(), &options).expect("encodes");
        buf
    }

    #[test]
    fn validates_every_codec_and_reads_header_fields() {
        for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let batch = encode_batch(&[1000, 3000, 2000], codec);
            let header = validate_single_batch(&batch).expect("valid batch");
            assert_eq!(header.record_count, 3);
            assert_eq!(header.last_offset_delta, 2);
            assert_eq!(header.max_timestamp, 3000);
            assert_eq!(header.producer_id, 7);
            assert_eq!(header.total_bytes() as usize, batch.len());
        }
    }

    #[test]
    fn rewriting_the_base_offset_keeps_the_crc_valid() {
        let mut batch = encode_batch(&[1, 2], Compression::Lz4);
        set_base_offset(&mut batch, 1_000_000);
        set_partition_leader_epoch(&mut batch, 9);
        let header = validate_single_batch(&batch).expect("still valid");
        assert_eq!(header.base_offset, 1_000_000);
        assert_eq!(header.last_offset(), 1_000_001);
        assert_eq!(header.partition_leader_epoch, 9);
    }

    #[test]
    fn log_append_time_recomputes_the_crc() {
        let mut batch = encode_batch(&[1, 2], Compression::None);
        set_log_append_time(&mut batch, 5555);
        let header = validate_single_batch(&batch).expect("valid after rewrite");
        assert!(header.is_log_append_time());
        assert_eq!(header.max_timestamp, 5555);
    }

    #[test]
    fn detects_corruption_truncation_and_trailing_batches() {
        let batch = encode_batch(&[1, 2, 3], Compression::None);
        let mut flipped = batch.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(matches!(validate_single_batch(&flipped), Err(BatchError::CrcMismatch { .. })));
        assert!(matches!(validate_single_batch(&batch[..batch.len() - 1]), Err(BatchError::LengthMismatch { .. })));
        assert!(matches!(validate_single_batch(&batch[..10]), Err(BatchError::TooShort { .. })));
        let mut two = batch.clone();
        two.extend_from_slice(&batch);
        assert_eq!(validate_single_batch(&two), Err(BatchError::MultipleBatches));
        let mut magic1 = batch.clone();
        magic1[16] = 1;
        assert_eq!(validate_single_batch(&magic1), Err(BatchError::UnsupportedMagic { magic: 1 }));
    }

    #[test]
    fn iterates_stored_batches_and_finds_timestamps_inside_compressed_ones() {
        let mut stored = encode_batch(&[10, 30, 20], Compression::Zstd);
        let mut second = encode_batch(&[50, 40], Compression::Gzip);
        set_base_offset(&mut second, 3);
        stored.extend_from_slice(&second);
        let stored = stored.freeze();
        let found: Vec<_> = batches(&stored).map(|(h, _)| (h.base_offset, h.record_count)).collect();
        assert_eq!(found, vec![(0, 3), (3, 2)]);
        let (_, first) = batches(&stored).next().expect("first batch");
        assert_eq!(first_record_at_or_after(&first, 25), Some((1, 30)));
        assert_eq!(first_record_at_or_after(&first, 31), None);
        let (_, second) = batches(&stored).nth(1).expect("second batch");
        assert_eq!(first_record_at_or_after(&second, 41), Some((3, 50)));
    }
}
