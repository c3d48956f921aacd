//! A raw Kafka wire client for tests that must send exactly the bytes they
//! choose: malformed frames, unknown versions, hand-built record batches.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

pub struct WireClient {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl WireClient {
    pub fn connect(port: u16) -> std::io::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Self { stream, next_correlation_id: 1 })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one response frame; `Ok(None)` when the broker closed the connection.
    pub fn read_frame(&mut self) -> std::io::Result<Option<Bytes>> {
        let mut length = [0u8; 4];
        match self.stream.read_exact(&mut length) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut body = vec![0u8; i32::from_be_bytes(length) as usize];
        self.stream.read_exact(&mut body)?;
        Ok(Some(Bytes::from(body)))
    }

    /// True if the broker closed the connection (reads EOF).
    pub fn is_closed_by_peer(&mut self) -> bool {
        matches!(self.read_frame(), Ok(None))
    }

    /// Encodes a request frame (length prefix included).
    pub fn encode(&mut self, api_key: ApiKey, version: i16, body: &RequestKind) -> BytesMut {
        let mut header = RequestHeader::default();
        header.request_api_key = api_key as i16;
        header.request_api_version = version;
        header.correlation_id = self.next_correlation_id;
        header.client_id = Some(StrBytes::from_static_str("skein-wire-test"));
        self.next_correlation_id += 1;
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, api_key.request_header_version(version)).expect("header encodes");
        body.encode(&mut buf, version).expect("body encodes");
        let length = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&length.to_be_bytes());
        buf
    }

    /// Sends a request and decodes the response at the same version.
    pub fn call(&mut self, api_key: ApiKey, version: i16, body: &RequestKind) -> anyhow::Result<ResponseKind> {
        let frame = self.encode(api_key, version, body);
        self.send_raw(&frame)?;
        let mut response = self.read_frame()?.ok_or_else(|| anyhow::anyhow!("connection closed"))?;
        let header_version = api_key.response_header_version(version);
        let header = ResponseHeader::decode(&mut response, header_version)?;
        anyhow::ensure!(header.correlation_id == self.next_correlation_id - 1, "correlation id mismatch");
        ResponseKind::decode(api_key, &mut response, version)
    }
}

/// Reads the correlation id and error code of an ApiVersions v0 response body.
pub fn api_versions_v0_error(mut frame: Bytes) -> (i32, i16) {
    let correlation_id = frame.get_i32();
    (correlation_id, frame.get_i16())
}

/// A RecordBatch v2 holding `values`; `producer` is (id, epoch, first
/// sequence) for an idempotent batch, `None` for a plain one.
pub fn record_batch(values: &[&str], producer: Option<(i64, i16, i32)>) -> Bytes {
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let (producer_id, producer_epoch, first_sequence) = producer.unwrap_or((-1, -1, 0));
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Offset minus sequence must be constant for the encoder to keep one batch.
            sequence: first_sequence + i as i32,
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).expect("encodes");
    buf.freeze()
}

impl WireClient {
    /// CreateTopics v7 for one topic; returns the error code.
    pub fn create_topic(&mut self, name: &str, partitions: i32) -> i16 {
        use kafka_protocol::messages::create_topics_request::CreatableTopic;
        let mut topic = CreatableTopic::default();
        topic.name = kafka_protocol::messages::TopicName(StrBytes::from_string(name.to_owned()));
        topic.num_partitions = partitions;
        topic.replication_factor = 1;
        let mut request = kafka_protocol::messages::CreateTopicsRequest::default();
        request.topics = vec![topic];
        request.timeout_ms = 5000;
        match self.call(ApiKey::CreateTopics, 7, &RequestKind::CreateTopics(request)) {
            Ok(ResponseKind::CreateTopics(response)) => response.topics[0].error_code,
            other => panic!("unexpected CreateTopics answer {other:?}"),
        }
    }

    /// Produce v9 (acks=all) of one batch to partition 0; returns (error code, base offset).
    pub fn produce(&mut self, topic: &str, records: Bytes) -> (i16, i64) {
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        let mut partition = PartitionProduceData::default();
        partition.index = 0;
        partition.records = Some(records);
        let mut topic_data = TopicProduceData::default();
        topic_data.name = kafka_protocol::messages::TopicName(StrBytes::from_string(topic.to_owned()));
        topic_data.partition_data = vec![partition];
        let mut request = kafka_protocol::messages::ProduceRequest::default();
        request.acks = -1;
        request.timeout_ms = 5000;
        request.topic_data = vec![topic_data];
        match self.call(ApiKey::Produce, 9, &RequestKind::Produce(request)) {
            Ok(ResponseKind::Produce(response)) => {
                let answer = &response.responses[0].partition_responses[0];
                (answer.error_code, answer.base_offset)
            }
            other => panic!("unexpected Produce answer {other:?}"),
        }
    }

    /// Fetch v12 from partition 0; returns the partition's answer.
    pub fn fetch(
        &mut self,
        topic: &str,
        offset: i64,
        max_wait_ms: i32,
        min_bytes: i32,
    ) -> kafka_protocol::messages::fetch_response::PartitionData {
        use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
        let mut partition = FetchPartition::default();
        partition.fetch_offset = offset;
        partition.partition_max_bytes = 1 << 20;
        let mut fetch_topic = FetchTopic::default();
        fetch_topic.topic = kafka_protocol::messages::TopicName(StrBytes::from_string(topic.to_owned()));
        fetch_topic.partitions = vec![partition];
        let mut request = kafka_protocol::messages::FetchRequest::default();
        request.max_bytes = 1 << 20;
        request.max_wait_ms = max_wait_ms;
        request.min_bytes = min_bytes;
        request.topics = vec![fetch_topic];
        match self.call(ApiKey::Fetch, 12, &RequestKind::Fetch(request)) {
            Ok(ResponseKind::Fetch(response)) => response.responses[0].partitions[0].clone(),
            other => panic!("unexpected Fetch answer {other:?}"),
        }
    }

    /// InitProducerId v4 for an idempotent producer; returns (id, epoch).
    pub fn init_producer_id(&mut self) -> (i64, i16) {
        let mut request = kafka_protocol::messages::InitProducerIdRequest::default();
        request.transactional_id = None;
        request.transaction_timeout_ms = 60_000;
        request.producer_id = (-1).into();
        request.producer_epoch = -1;
        match self.call(ApiKey::InitProducerId, 4, &RequestKind::InitProducerId(request)) {
            Ok(ResponseKind::InitProducerId(response)) => {
                assert_eq!(response.error_code, 0, "InitProducerId succeeds");
                (response.producer_id.0, response.producer_epoch)
            }
            other => panic!("unexpected InitProducerId answer {other:?}"),
        }
    }
}
