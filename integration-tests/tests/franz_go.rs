//! franz-go against Skein: idempotent acks=all produce and direct partition
//! consumption with every codec; a three-member consumer group.

use std::process::Command;
use std::time::Duration;

use skein_integration_tests::{run_ok, tool, Skein};

#[test]
fn franz_go_round_trips_every_codec() {
    let skein = Skein::start();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let out = run_ok(
            Command::new(tool("bin/franz-client")).args([
                "-bootstrap",
                &skein.bootstrap(),
                "-topic",
                &format!("fg-{codec}"),
                "-count",
                "5000",
                "-partitions",
                "3",
                "-compression",
                codec,
            ]),
            Duration::from_secs(120),
        );
        assert!(out.contains("\"consumed\":5000"), "{codec}: {out}");
    }
}

#[test]
fn franz_go_group_members_share_partitions_and_commit() {
    let skein = Skein::start();
    group_members_share_partitions(&skein, "classic");
}

#[test]
fn franz_go_group_members_share_partitions_with_the_kip_848_protocol() {
    let skein = Skein::start();
    group_members_share_partitions(&skein, "consumer");
}

fn group_members_share_partitions(skein: &Skein, protocol: &str) {
    let topic = format!("fg-group-{protocol}");
    let out = run_ok(
        Command::new(tool("bin/franz-client")).args(["-bootstrap", &skein.bootstrap(), "-topic", &topic]).args([
            "-count",
            "6000",
            "-partitions",
            "6",
            "-group",
            "franz-readers",
            "-members",
            "3",
            "-group-protocol",
            protocol,
        ]),
        Duration::from_secs(180),
    );
    assert!(out.contains("\"consumed\":6000") && out.contains("\"ok\":true"), "{protocol}: {out}");
}

/// With a request-bytes budget far below one produce request (franz-go puts
/// up to 1 MB per partition in each), requests run one at a time and every
/// record still lands once.
#[test]
fn franz_go_produces_through_a_tiny_request_bytes_budget() {
    let skein = Skein::start_with(&["--queued.max.request.bytes=65536"]);
    let out =
        run_ok(
            Command::new(tool("bin/franz-client"))
                .args(["-bootstrap", &skein.bootstrap(), "-topic", "fg-budget"])
                .args(["-mode", "bench", "-count", "30000", "-size", "1024", "-acks", "all", "-partitions", "8"]),
            Duration::from_secs(180),
        );
    assert!(out.contains("\"ok\":true") && out.contains("\"consumed\":30000"), "{out}");
}
