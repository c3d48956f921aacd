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
