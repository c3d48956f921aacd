//! The HTTP listener: Prometheus metrics fed by real traffic, and health.

use std::io::Write;
use std::process::{Command, Stdio};

use skein_integration_tests::wire::{record_batch, WireClient};
use skein_integration_tests::Skein;

#[test]
fn metrics_count_requests_bytes_and_high_watermarks() {
    let skein = Skein::start();
    let mut kcat = Command::new("kcat")
        .args(["-b", &skein.bootstrap(), "-P", "-t", "observed"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("kcat");
    writeln!(kcat.stdin.take().expect("stdin"), "one\ntwo\nthree").expect("write");
    assert!(kcat.wait().expect("exits").success());

    let (status, body) = skein.http_get("/metrics").expect("metrics answer");
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("skein_requests_total{api=\"Produce\",version="), "{body}");
    assert!(body.contains("skein_request_duration_seconds_bucket{api=\"Metadata\""), "{body}");
    assert!(body.contains("skein_topic_bytes_in_total{topic=\"observed\"}"), "{body}");
    assert!(body.contains("skein_partition_high_watermark{partition=\"0\",topic=\"observed\"} 3"), "{body}");
    assert!(body.contains("skein_connections"), "{body}");

    let (status, body) = skein.http_get("/health").expect("health answer");
    assert!(status.contains("200") && body.contains("\"ok\""), "{status} {body}");
    let (status, _) = skein.http_get("/nope").expect("answer");
    assert!(status.contains("404"), "{status}");
}

/// The allocator's totals as `/metrics` reports them.
fn allocations(skein: &Skein) -> u64 {
    metric(skein, "skein_allocations_total") as u64
}

/// What a Produce request costs in allocations does not grow with the
/// records its batch carries: batches are validated and stored whole, never
/// decoded record by record. (Measured through `skein_allocations_total`, so
/// the counter is proven against real traffic too.)
#[test]
fn allocations_per_produce_request_do_not_grow_with_the_records_in_it() {
    const REQUESTS: u64 = 200;
    let skein = Skein::start();
    let mut client = WireClient::connect(skein.port).expect("connects");
    assert_eq!(client.create_topic("flat", 1), 0);
    let few: Vec<String> = (0..5).map(|i| format!("record {i}")).collect();
    let many: Vec<String> = (0..500).map(|i| format!("record {i}")).collect();
    let batch = |values: &[String]| record_batch(&values.iter().map(String::as_str).collect::<Vec<_>>(), None);
    let (few, many) = (batch(&few), batch(&many));
    // Warm up: first-use allocations (metadata caches, the partition's state).
    for _ in 0..20 {
        assert_eq!(client.produce("flat", few.clone()).0, 0);
    }
    let per_request = |client: &mut WireClient, batch: &bytes::Bytes| {
        let before = allocations(&skein);
        for _ in 0..REQUESTS {
            assert_eq!(client.produce("flat", batch.clone()).0, 0);
        }
        (allocations(&skein) - before) / REQUESTS
    };
    let with_few = per_request(&mut client, &few);
    let with_many = per_request(&mut client, &many);
    eprintln!("allocations per Produce request: {with_few} with 5 records, {with_many} with 500");
    assert!(with_few > 0, "the counter counts");
    // One allocation per record would add 495 per request here.
    assert!(
        with_many <= with_few + with_few / 2 + 20,
        "allocations per request: {with_few} with 5 records, {with_many} with 500"
    );
}

/// A figure from `/metrics` (the first sample whose line starts with `name `).
fn metric(skein: &Skein, name: &str) -> f64 {
    let (_, body) = skein.http_get("/metrics").expect("metrics answer");
    let prefix = format!("{name} ");
    let line = body.lines().find(|line| line.starts_with(&prefix)).unwrap_or_else(|| panic!("no {name} in {body}"));
    line.rsplit(' ').next().and_then(|value| value.parse().ok()).expect("a number")
}

/// Each acks=all Produce waits for a journal fsync (the default
/// `skein.fsync=always`), and `/metrics` shows it: sequential requests
/// cannot share one, so each adds at least one fsync and one waiting write.
/// (With `--fsync=interval` the same run counts 1 fsync and 0 waits.)
#[test]
fn acks_all_produce_requests_wait_for_journal_fsyncs_that_metrics_count() {
    const REQUESTS: u32 = 20;
    let skein = Skein::start();
    let mut client = WireClient::connect(skein.port).expect("connects");
    assert_eq!(client.create_topic("synced", 1), 0);
    let batch = record_batch(&["durable"], None);
    let fsyncs_before = metric(&skein, "skein_journal_fsync_seconds_count");
    let waiting_before = metric(&skein, "skein_journal_fsync_waiting_writes_total");
    for _ in 0..REQUESTS {
        assert_eq!(client.produce("synced", batch.clone()).0, 0);
    }
    let fsyncs = metric(&skein, "skein_journal_fsync_seconds_count") - fsyncs_before;
    let waiting = metric(&skein, "skein_journal_fsync_waiting_writes_total") - waiting_before;
    eprintln!("{REQUESTS} acks=all requests: {fsyncs} fsyncs, {waiting} writes waited for one");
    assert!(fsyncs >= f64::from(REQUESTS), "{fsyncs} fsyncs for {REQUESTS} sequential acks=all requests");
    assert!(waiting >= f64::from(REQUESTS), "{waiting} waiting writes for {REQUESTS} requests");
    assert!(metric(&skein, "skein_journal_fsync_seconds_sum") > 0.0);
}
