//! Response framing: length prefix, the response header in the version the
//! API and request version call for (ApiVersions is always header v0), then
//! the body encoded at the negotiated version.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

#[derive(Debug, thiserror::Error)]
#[error("cannot encode {api_key:?} v{version} response: {reason}")]
pub struct EncodeError {
    pub api_key: ApiKey,
    pub version: i16,
    pub reason: String,
}

/// Encodes a complete response frame, length prefix included.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<BytesMut, EncodeError> {
    let fail = |reason: String| EncodeError { api_key, version, reason };
    // A Fetch response (megabytes) is sized up front rather than grown,
    // and copied, a dozen times; the small ones are not worth measuring.
    let body_size = match body {
        ResponseKind::Fetch(fetch) => fetch.compute_size(version).map_err(|e| fail(e.to_string()))?,
        _ => 0,
    };
    let mut buf = BytesMut::with_capacity(body_size + 64);
    buf.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header.encode(&mut buf, api_key.response_header_version(version)).map_err(|e| fail(e.to_string()))?;
    body.encode(&mut buf, version).map_err(|e| fail(e.to_string()))?;
    let length = i32::try_from(buf.len() - 4).map_err(|_| fail("response larger than 2 GiB".to_owned()))?;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    Ok(buf)
}

/// A response frame as a list of byte chunks, to be written in order with
/// vectored I/O. Record sets of a Fetch response are chunks of their own,
/// the very `Bytes` the handler put in, so megabytes of stored batches reach
/// the socket without being copied into the frame.
#[derive(Debug, Default)]
pub struct ResponseChunks {
    pub chunks: Vec<Bytes>,
}

impl ResponseChunks {
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Stands in for each record set while the rest of a Fetch response is
/// encoded: 8 bytes no name can hold (names are ASCII) and the set's index.
/// The rest of the frame is numbers, names and broker-generated random topic
/// ids; markers are searched in order, each after the previous one, so a
/// false match would need 16 exact bytes between two record sets.
const RECORDS_MARKER: [u8; 8] = [0xF5, 0x00, 0xFF, 0x9C, 0xF5, 0x00, 0xFF, 0x9C];
const MARKER_LEN: usize = RECORDS_MARKER.len() + 8;
/// Fetch v12 and later are flexible: records carry a compact (varint) length.
const FIRST_FLEXIBLE_FETCH_VERSION: i16 = 12;

/// Like [`encode_response`], but as chunks; for Fetch, without copying the
/// record sets. The concatenated chunks are byte for byte what
/// `encode_response` produces.
pub fn encode_response_chunks(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: ResponseKind,
) -> Result<ResponseChunks, EncodeError> {
    match body {
        ResponseKind::Fetch(fetch) => encode_fetch_response_chunks(version, correlation_id, fetch, Vec::new()),
        body => {
            let frame = encode_response(api_key, version, correlation_id, &body)?;
            Ok(ResponseChunks { chunks: vec![frame.freeze()] })
        }
    }
}

/// A Fetch response with its record sets given apart, each as the stored
/// batches it is made of: `record_sets[i]` is the record set of the i-th
/// partition in the response's order, written as those chunks one after
/// another (neither joined nor copied). A partition without a list, or with
/// an empty one, keeps its own `records`.
pub fn encode_fetch_response_chunks(
    version: i16,
    correlation_id: i32,
    mut fetch: FetchResponse,
    record_sets: Vec<Vec<Bytes>>,
) -> Result<ResponseChunks, EncodeError> {
    let mut given = record_sets.into_iter();
    let mut spliced = Vec::new();
    for partition in fetch.responses.iter_mut().flat_map(|topic| topic.partitions.iter_mut()) {
        let parts = match given.next() {
            Some(parts) if !parts.is_empty() => parts,
            _ => partition.records.iter().cloned().collect(),
        };
        let parts: Vec<Bytes> = parts.into_iter().filter(|part| !part.is_empty()).collect();
        if parts.is_empty() {
            continue;
        }
        let mut marker = BytesMut::with_capacity(MARKER_LEN);
        marker.extend_from_slice(&RECORDS_MARKER);
        marker.put_u64(spliced.len() as u64);
        partition.records = Some(marker.freeze());
        spliced.push(parts);
    }
    let skeleton = encode_response(ApiKey::Fetch, version, correlation_id, &ResponseKind::Fetch(fetch))?;
    splice_record_sets(skeleton, spliced, version).map_err(|reason| EncodeError {
        api_key: ApiKey::Fetch,
        version,
        reason: reason.to_owned(),
    })
}

/// Replaces each marker (and the length prefix before it) in `skeleton`
/// with the real length prefix and record set, then fixes the frame length.
fn splice_record_sets(
    skeleton: BytesMut,
    record_sets: Vec<Vec<Bytes>>,
    version: i16,
) -> Result<ResponseChunks, &'static str> {
    let skeleton = skeleton.freeze();
    let flexible = version >= FIRST_FLEXIBLE_FETCH_VERSION;
    // A 16-byte marker's prefix: varint(16 + 1) is one byte, an i32 four.
    let marker_prefix = if flexible { 1 } else { 4 };
    let mut chunks = Vec::with_capacity(record_sets.len() * 2 + 1);
    let mut head = BytesMut::new();
    let mut position = 0;
    for (index, parts) in record_sets.into_iter().enumerate() {
        let length: usize = parts.iter().map(Bytes::len).sum();
        let mut marker = [0u8; MARKER_LEN];
        marker[..8].copy_from_slice(&RECORDS_MARKER);
        marker[8..].copy_from_slice(&(index as u64).to_be_bytes());
        let found = find(&skeleton[position..], &marker).ok_or("a record set's marker is missing")? + position;
        let prefix_start =
            found.checked_sub(marker_prefix).filter(|s| *s >= position).ok_or("marker without prefix")?;
        head.extend_from_slice(&skeleton[position..prefix_start]);
        if flexible {
            put_unsigned_varint(&mut head, length as u64 + 1);
        } else {
            head.put_i32(i32::try_from(length).map_err(|_| "record set larger than 2 GiB")?);
        }
        chunks.push(std::mem::take(&mut head).freeze());
        chunks.extend(parts);
        position = found + MARKER_LEN;
    }
    chunks.push(skeleton.slice(position..));
    let total: usize = chunks.iter().map(Bytes::len).sum();
    let length = i32::try_from(total - 4).map_err(|_| "response larger than 2 GiB")?;
    let first = chunks.first_mut().ok_or("empty frame")?;
    let mut with_length = BytesMut::from(&first[..]);
    with_length[..4].copy_from_slice(&length.to_be_bytes());
    *first = with_length.freeze();
    Ok(ResponseChunks { chunks })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

fn put_unsigned_varint(buf: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8 & 0x7F) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseKind, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use super::{encode_fetch_response_chunks, encode_response, encode_response_chunks};

    fn fetch_response(record_sizes: &[usize]) -> FetchResponse {
        let mut topic = FetchableTopicResponse::default();
        topic.topic = TopicName(StrBytes::from_static_str("orders"));
        for (index, size) in record_sizes.iter().enumerate() {
            let mut partition = PartitionData::default();
            partition.partition_index = index as i32;
            partition.high_watermark = 1_000 + index as i64;
            partition.last_stable_offset = partition.high_watermark;
            partition.aborted_transactions = Some(Vec::new());
            partition.records = Some(Bytes::from((0..*size).map(|i| (i * 7 + index) as u8).collect::<Vec<u8>>()));
            topic.partitions.push(partition);
        }
        let mut response = FetchResponse::default();
        response.responses = vec![topic];
        response
    }

    #[test]
    fn chunks_are_byte_for_byte_the_plain_encoding_and_records_are_not_copied() {
        // Sizes around the varint boundaries (127/128, 16383/16384) and empty sets.
        let sizes = [0, 1, 126, 127, 128, 16_383, 16_384, 300_000, 0];
        for version in [4, 7, 11, 12, 13, 15, 16, 17, 18] {
            let response = fetch_response(&sizes);
            let expected = encode_response(ApiKey::Fetch, version, 42, &ResponseKind::Fetch(response.clone()))
                .expect("plain encoding");
            let records: Vec<Bytes> = response
                .responses
                .iter()
                .flat_map(|t| t.partitions.iter())
                .filter_map(|p| p.records.clone())
                .filter(|r| !r.is_empty())
                .collect();
            let chunks = encode_response_chunks(ApiKey::Fetch, version, 42, ResponseKind::Fetch(response))
                .expect("chunked encoding");
            let joined: Vec<u8> = chunks.chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(joined, expected.to_vec(), "Fetch v{version}");
            for set in &records {
                assert!(
                    chunks.chunks.iter().any(|c| c.as_ptr() == set.as_ptr() && c.len() == set.len()),
                    "v{version}: a record set of {} bytes was copied",
                    set.len()
                );
            }
        }
    }

    #[test]
    fn record_sets_given_as_several_chunks_encode_as_if_joined() {
        let sizes = [0, 300, 20_000, 5];
        for version in [4, 11, 12, 18] {
            let joined = fetch_response(&sizes);
            let expected = encode_response(ApiKey::Fetch, version, 9, &ResponseKind::Fetch(joined.clone()))
                .expect("plain encoding");
            // The same response with each record set cut in three and passed apart.
            let mut apart = joined.clone();
            let mut record_sets = Vec::new();
            for partition in apart.responses.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                let records = partition.records.replace(bytes::Bytes::new()).unwrap_or_default();
                let (third, two_thirds) = (records.len() / 3, records.len() * 2 / 3);
                record_sets.push(vec![
                    records.slice(..third),
                    records.slice(third..two_thirds),
                    records.slice(two_thirds..),
                ]);
            }
            let chunks = encode_fetch_response_chunks(version, 9, apart, record_sets).expect("chunked encoding");
            let bytes: Vec<u8> = chunks.chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(bytes, expected.to_vec(), "Fetch v{version}");
        }
    }

    #[test]
    fn other_responses_are_one_chunk_equal_to_the_plain_encoding() {
        let body = ResponseKind::Heartbeat(Default::default());
        let expected = encode_response(ApiKey::Heartbeat, 4, 7, &body).expect("plain");
        let chunks = encode_response_chunks(ApiKey::Heartbeat, 4, 7, body).expect("chunks");
        assert_eq!(chunks.chunks.len(), 1);
        assert_eq!(chunks.chunks[0], expected.freeze());
    }
}
