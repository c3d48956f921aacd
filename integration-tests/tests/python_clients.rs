//! confluent-kafka (librdkafka) and kafka-python against Skein: every codec,
//! several partitions, 1 MiB records, a 100k-record run, timestamp lookups.

use std::process::Command;
use std::time::Duration;

use skein_integration_tests::{repo_root, run_ok, tool, Skein};

fn script(name: &str) -> Command {
    let mut command = Command::new(tool("venv/bin/python"));
    command.arg(repo_root().join("integration-tests/python").join(name));
    command
}

fn roundtrip(skein: &Skein, client: &str, topic: &str, extra: &[&str]) -> String {
    run_ok(
        script("roundtrip.py")
            .args(["--client", client, "--bootstrap", &skein.bootstrap(), "--topic", topic])
            .args(extra),
        Duration::from_secs(300),
    )
}

#[test]
fn confluent_kafka_round_trips_every_codec() {
    let skein = Skein::start();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let out =
            roundtrip(&skein, "confluent", &format!("cf-{codec}"), &["--compression", codec, "--partitions", "3"]);
        assert!(out.contains("\"consumed\": 1000"), "{codec}: {out}");
    }
}

#[test]
fn kafka_python_round_trips_every_codec() {
    let skein = Skein::start();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let out =
            roundtrip(&skein, "kafka-python", &format!("kp-{codec}"), &["--compression", codec, "--partitions", "2"]);
        assert!(out.contains("\"consumed\": 1000"), "{codec}: {out}");
    }
}

#[test]
fn confluent_kafka_moves_100k_records_and_1_mib_records() {
    let skein = Skein::start_with(&["--message.max.bytes=4194304"]);
    let out =
        roundtrip(&skein, "confluent", "hundred-k", &["--count", "100000", "--size", "200", "--compression", "lz4"]);
    assert!(out.contains("\"consumed\": 100000"), "{out}");
    let out = roundtrip(&skein, "confluent", "one-mib", &["--count", "8", "--size", "1048576"]);
    assert!(out.contains("\"consumed\": 8"), "{out}");
}

#[test]
fn confluent_kafka_offsets_for_times_finds_the_first_offset_at_or_after() {
    let skein = Skein::start();
    // Non-monotonic CreateTime timestamps; 300+ targets checked against the
    // first offset at or after each, plus the earliest (-2) and latest (-1) specials.
    let out = run_ok(
        script("timestamps_confluent.py").args([
            "--bootstrap",
            &skein.bootstrap(),
            "--topic",
            "times",
            "--count",
            "2000",
        ]),
        Duration::from_secs(120),
    );
    assert!(out.contains("\"ok\": true"), "{out}");
}

#[test]
fn acks_0_and_acks_1_round_trip_with_both_python_clients() {
    let skein = Skein::start();
    for client in ["confluent", "kafka-python"] {
        for acks in ["0", "1"] {
            let out = roundtrip(&skein, client, &format!("acks{acks}-{client}"), &["--acks", acks, "--count", "3000"]);
            assert!(out.contains("\"consumed\": 3000"), "{client} acks={acks}: {out}");
        }
    }
}
