//! Kafka semantics checked at the wire: Fetch long-polling woken by appends,
//! and idempotent-producer dedupe that survives a broker restart.

use std::time::{Duration, Instant};

use skein_integration_tests::wire::{record_batch, WireClient};
use skein_integration_tests::Skein;

#[test]
fn fetch_waits_for_data_and_wakes_on_append() {
    let skein = Skein::start();
    let mut admin = WireClient::connect(skein.port).expect("connects");
    assert_eq!(admin.create_topic("poll", 1), 0);

    // Nothing to read: the broker holds the fetch for max_wait, not less.
    let mut consumer = WireClient::connect(skein.port).expect("connects");
    let started = Instant::now();
    let empty = consumer.fetch("poll", 0, 400, 1);
    assert!(started.elapsed() >= Duration::from_millis(380), "answered after {:?}", started.elapsed());
    assert_eq!((empty.error_code, empty.high_watermark), (0, 0));

    // A long wait ends as soon as a batch is appended.
    let port = skein.port;
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut client = WireClient::connect(port).expect("connects");
        client.produce("poll", record_batch(&["wake-up"], None))
    });
    let started = Instant::now();
    let woken = consumer.fetch("poll", 0, 20_000, 1);
    let waited = started.elapsed();
    assert_eq!(producer.join().expect("producer"), (0, 0));
    assert!(waited < Duration::from_secs(5), "woken by the append, not the 20 s timeout: {waited:?}");
    assert_eq!(woken.high_watermark, 1);
    assert!(woken.records.as_ref().is_some_and(|r| !r.is_empty()), "the fetch carries the batch");
}

#[test]
fn idempotent_retries_are_deduplicated_across_a_restart() {
    let mut skein = Skein::start();
    let mut client = WireClient::connect(skein.port).expect("connects");
    assert_eq!(client.create_topic("dedupe", 1), 0);
    let (producer_id, epoch) = client.init_producer_id();
    let first = record_batch(&["a", "b", "c"], Some((producer_id, epoch, 0)));
    let second = record_batch(&["d", "e"], Some((producer_id, epoch, 3)));
    assert_eq!(client.produce("dedupe", first.clone()), (0, 0));
    assert_eq!(client.produce("dedupe", second.clone()), (0, 3));
    // A retry in the same session: the original offset, nothing written.
    assert_eq!(client.produce("dedupe", first.clone()), (0, 0));

    skein.restart();
    let mut client = WireClient::connect(skein.port).expect("reconnects");
    assert_eq!(client.produce("dedupe", second), (0, 3), "the dedupe window survives the restart");
    assert_eq!(client.fetch("dedupe", 0, 0, 0).high_watermark, 5, "no record was written twice");
    // A gap in the sequence is refused, not written.
    let gap = record_batch(&["z"], Some((producer_id, epoch, 9)));
    assert_eq!(client.produce("dedupe", gap).0, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER");
    let next = record_batch(&["f"], Some((producer_id, epoch, 5)));
    assert_eq!(client.produce("dedupe", next), (0, 5));
    // A new producer id is never one issued before the restart.
    assert!(client.init_producer_id().0 > producer_id);
}
