//! Bad input gets Kafka's answer (an error code, or a closed connection where
//! Kafka closes it), the broker stays up, and nothing stored is lost.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use skein_integration_tests::wire::{api_versions_v0_error, record_batch, WireClient};
use skein_integration_tests::Skein;

fn assert_still_serving(skein: &Skein) {
    let mut client = WireClient::connect(skein.port).expect("connects");
    let response = client.call(ApiKey::ApiVersions, 3, &RequestKind::ApiVersions(ApiVersionsRequest::default()));
    assert!(matches!(response, Ok(ResponseKind::ApiVersions(r)) if r.error_code == 0), "broker still answers");
}

#[test]
fn broken_frames_close_the_connection_and_the_broker_stays_up() {
    let skein = Skein::start();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("oversized length prefix", vec![0x7f, 0xff, 0xff, 0xff]),
        ("negative length prefix", vec![0xff, 0xff, 0xff, 0x00]),
        ("frame shorter than a request header", vec![0, 0, 0, 3, 0, 18, 0]),
        ("unknown API key", vec![0, 0, 0, 10, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff]),
        ("unsupported Metadata version", vec![0, 0, 0, 10, 0, 3, 0, 99, 0, 0, 0, 1, 0xff, 0xff]),
        ("Produce v2 (removed in Kafka 4)", vec![0, 0, 0, 10, 0, 0, 0, 2, 0, 0, 0, 1, 0xff, 0xff]),
        ("garbage body", vec![0, 0, 0, 12, 0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xde, 0xad]),
    ];
    for (name, bytes) in cases {
        let mut client = WireClient::connect(skein.port).expect("connects");
        client.send_raw(&bytes).expect("sends");
        assert!(client.is_closed_by_peer(), "{name}: connection closed");
        assert_still_serving(&skein);
    }
    // A truncated frame followed by a hang-up.
    let mut client = WireClient::connect(skein.port).expect("connects");
    client.send_raw(&[0, 0, 1, 0, 0, 3, 0, 1]).expect("sends");
    drop(client);
    assert_still_serving(&skein);
}

#[test]
fn bogus_array_counts_do_not_allocate_or_crash() {
    let skein = Skein::start();
    // Metadata v1: header, then a topics array claiming 2^31-1 entries with no bytes behind it.
    for count in [i32::MAX, 0x4000_0000, 1_000_000] {
        let mut frame = BytesMut::new();
        let mut body = BytesMut::new();
        body.put_i16(3);
        body.put_i16(1);
        body.put_i32(7);
        body.put_i16(-1);
        body.put_i32(count);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        let mut client = WireClient::connect(skein.port).expect("connects");
        client.send_raw(&frame).expect("sends");
        assert!(client.is_closed_by_peer(), "count {count}: connection closed");
        assert_still_serving(&skein);
    }
    // Metadata v12 (flexible): null client id, no tags, then a compact array
    // whose varint count is u32::MAX.
    let body: &[u8] = &[0, 3, 0, 12, 0, 0, 0, 7, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    let mut client = WireClient::connect(skein.port).expect("connects");
    client.send_raw(&frame).expect("sends");
    assert!(client.is_closed_by_peer(), "compact count: connection closed");
    assert_still_serving(&skein);
}

#[test]
fn unknown_api_versions_version_gets_the_table_with_unsupported_version() {
    let skein = Skein::start();
    let mut client = WireClient::connect(skein.port).expect("connects");
    // ApiVersions v99 with correlation id 77 and a null client id.
    client.send_raw(&[0, 0, 0, 10, 0, 18, 0, 99, 0, 0, 0, 77, 0xff, 0xff]).expect("sends");
    let frame = client.read_frame().expect("reads").expect("answered, not closed");
    let (correlation_id, error_code) = api_versions_v0_error(frame);
    assert_eq!((correlation_id, error_code), (77, 35), "UNSUPPORTED_VERSION in a v0 answer");
}

#[test]
fn bad_batches_get_kafka_error_codes_and_lose_nothing() {
    let skein = Skein::start();
    let mut client = WireClient::connect(skein.port).expect("connects");
    assert_eq!(client.create_topic("bad-input", 1), 0);
    assert_eq!(client.produce("bad-input", record_batch(&["kept-0", "kept-1"], None)).0, 0);

    let mut corrupt = BytesMut::from(&record_batch(&["x"], None)[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55;
    assert_eq!(client.produce("bad-input", corrupt.freeze()).0, 2, "CORRUPT_MESSAGE");

    let mut magic1 = BytesMut::from(&record_batch(&["x"], None)[..]);
    magic1[16] = 1;
    assert_eq!(client.produce("bad-input", magic1.freeze()).0, 87, "INVALID_RECORD");

    assert_eq!(client.produce("bad-input", Bytes::from_static(b"short")).0, 2, "CORRUPT_MESSAGE");
    let big = "b".repeat(1_100_000);
    assert_eq!(client.produce("bad-input", record_batch(&[&big], None)).0, 10, "MESSAGE_TOO_LARGE");

    assert_eq!(client.produce("bad-input", record_batch(&["kept-2"], None)).0, 0);
    let mut fetch_partition = fetch_request::FetchPartition::default();
    fetch_partition.partition_max_bytes = 1 << 20;
    let mut fetch_topic = fetch_request::FetchTopic::default();
    fetch_topic.topic = TopicName(StrBytes::from_static_str("bad-input"));
    fetch_topic.partitions = vec![fetch_partition];
    let mut request = FetchRequest::default();
    request.max_bytes = 1 << 20;
    request.topics = vec![fetch_topic];
    let ResponseKind::Fetch(response) = client.call(ApiKey::Fetch, 12, &RequestKind::Fetch(request)).expect("fetch")
    else {
        panic!("not a fetch response")
    };
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.high_watermark, 3, "only the three good records were appended");
    let records = partition.records.clone().expect("records");
    let mut decode = records.clone();
    let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut decode).expect("decodes");
    let values: Vec<_> = sets.iter().flat_map(|s| s.records.iter()).map(|r| (r.offset, r.value.clone())).collect();
    assert_eq!(
        values,
        vec![
            (0, Some(Bytes::from_static(b"kept-0"))),
            (1, Some(Bytes::from_static(b"kept-1"))),
            (2, Some(Bytes::from_static(b"kept-2")))
        ]
    );
}

#[test]
fn invalid_topics_and_missing_topics_get_their_error_codes() {
    let skein = Skein::start_with(&["--auto.create.topics.enable=false"]);
    let mut client = WireClient::connect(skein.port).expect("connects");
    assert_eq!(client.create_topic("bad name!", 1), 17, "INVALID_TOPIC_EXCEPTION");
    assert_eq!(client.create_topic(&"x".repeat(250), 1), 17);
    assert_eq!(client.create_topic("ok", 1), 0);
    assert_eq!(client.create_topic("ok", 1), 36, "TOPIC_ALREADY_EXISTS");
    assert_eq!(
        client.produce("missing", record_batch(&["x"], None)).0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION with auto-create off"
    );
    let mut request = MetadataRequest::default();
    let mut wanted = MetadataRequestTopic::default();
    wanted.name = Some(TopicName(StrBytes::from_static_str("missing")));
    request.topics = Some(vec![wanted]);
    request.allow_auto_topic_creation = true;
    let ResponseKind::Metadata(response) =
        client.call(ApiKey::Metadata, 12, &RequestKind::Metadata(request)).expect("metadata")
    else {
        panic!("not metadata")
    };
    assert_eq!(response.topics[0].error_code, 3, "not auto-created when the broker forbids it");
}
