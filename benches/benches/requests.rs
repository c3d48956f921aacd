//! The protocol layer's share of produce and fetch: decoding a Produce
//! request (16 partitions, one 16 KiB batch each) from its frame, and
//! encoding a Fetch response carrying 16 x 1 MiB of stored batches.

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, FetchResponse, ProduceRequest, RequestHeader, ResponseKind, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::Compression;
use skein_benches::producer_batch;
use skein_protocol::request::decode_request;
use skein_protocol::response::{encode_response, encode_response_chunks};

const PARTITIONS: i32 = 16;

/// A Produce v9 request frame (header and body, no length prefix).
fn produce_frame() -> Bytes {
    let batch = producer_batch(16, 1024, Compression::None);
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_static_str("bench"));
    topic.partition_data = (0..PARTITIONS)
        .map(|index| {
            let mut partition = PartitionProduceData::default();
            partition.index = index;
            partition.records = Some(batch.clone());
            partition
        })
        .collect();
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 30_000;
    request.topic_data = vec![topic];
    let mut header = RequestHeader::default();
    header.request_api_key = ApiKey::Produce as i16;
    header.request_api_version = 9;
    header.correlation_id = 1;
    header.client_id = Some(StrBytes::from_static_str("bench"));
    let mut frame = BytesMut::new();
    header.encode(&mut frame, ApiKey::Produce.request_header_version(9)).expect("header encodes");
    request.encode(&mut frame, 9).expect("request encodes");
    frame.freeze()
}

/// A Fetch v12 response whose partitions each carry 1 MiB of batches.
fn fetch_response() -> ResponseKind {
    let batch = producer_batch(16, 1024, Compression::None);
    let mut records = BytesMut::new();
    while records.len() + batch.len() <= 1 << 20 {
        records.put_slice(&batch);
    }
    let records = records.freeze();
    let mut topic = FetchableTopicResponse::default();
    topic.topic = TopicName(StrBytes::from_static_str("bench"));
    topic.partitions = (0..PARTITIONS)
        .map(|index| {
            let mut partition = PartitionData::default();
            partition.partition_index = index;
            partition.high_watermark = 1_000_000;
            partition.records = Some(records.clone());
            partition
        })
        .collect();
    let mut response = FetchResponse::default();
    response.responses = vec![topic];
    ResponseKind::Fetch(response)
}

fn requests(c: &mut Criterion) {
    let mut group = c.benchmark_group("requests");
    let frame = produce_frame();
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("decode/produce v9 16x16KiB", |b| {
        b.iter(|| decode_request(frame.clone()).expect("decodes").version)
    });
    let response = fetch_response();
    group.throughput(Throughput::Bytes(16 << 20));
    group.bench_function("encode/fetch v12 16x1MiB", |b| {
        b.iter(|| encode_response(ApiKey::Fetch, 12, 1, &response).expect("encodes").len())
    });
    // What the broker sends: record sets spliced in as chunks, not copied.
    group.bench_function("encode/fetch v12 16x1MiB as chunks", |b| {
        b.iter(|| encode_response_chunks(ApiKey::Fetch, 12, 1, response.clone()).expect("encodes").len())
    });
    group.finish();
}

criterion_group!(benches, requests);
criterion_main!(benches);
