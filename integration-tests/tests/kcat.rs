//! kcat (librdkafka) against a real Skein: metadata listing, produce and
//! consume with every codec, timestamp lookups, and 1 MiB records.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use skein_integration_tests::{run_ok, Skein};

const TIMEOUT: Duration = Duration::from_secs(60);

fn kcat(skein: &Skein) -> Command {
    let mut command = Command::new("kcat");
    command.arg("-b").arg(skein.bootstrap());
    command
}

fn produce(skein: &Skein, topic: &str, codec: &str, lines: &[String], extra: &[&str]) {
    let mut child = kcat(skein)
        .args(["-P", "-t", topic, "-z", codec, "-X", "acks=all"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat is installed (make deps)");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for line in lines {
            writeln!(stdin, "{line}").expect("write");
        }
    }
    let output = child.wait_with_output().expect("kcat runs");
    assert!(output.status.success(), "kcat produce failed: {}", String::from_utf8_lossy(&output.stderr));
}

fn consume(skein: &Skein, topic: &str, format: &str) -> Vec<String> {
    let out = run_ok(kcat(skein).args(["-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", format]), TIMEOUT);
    out.lines().map(str::to_owned).collect()
}

#[test]
fn metadata_lists_the_broker() {
    let skein = Skein::start();
    let out = run_ok(kcat(&skein).arg("-L"), TIMEOUT);
    assert!(out.contains(&format!("broker 1 at 127.0.0.1:{}", skein.port)), "{out}");
}

#[test]
fn every_codec_round_trips_in_order() {
    let skein = Skein::start();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        let lines: Vec<String> = (0..500).map(|i| format!("{codec}-record-{i:05}-{}", "x".repeat(i % 50))).collect();
        produce(&skein, &topic, codec, &lines, &[]);
        let read = consume(&skein, &topic, "%o %s\\n");
        let expected: Vec<String> = lines.iter().enumerate().map(|(i, l)| format!("{i} {l}")).collect();
        assert_eq!(read, expected, "codec {codec}");
    }
}

#[test]
fn one_mib_records_round_trip() {
    let skein = Skein::start_with(&["--message.max.bytes=4194304"]);
    let lines: Vec<String> = (0..4).map(|i| format!("{i}{}", "m".repeat(1024 * 1024))).collect();
    produce(&skein, "big", "none", &lines, &["-X", "message.max.bytes=4194304"]);
    let read = consume(&skein, "big", "%s\\n");
    assert_eq!(read.len(), 4);
    for (i, line) in read.iter().enumerate() {
        assert_eq!(line.len(), 1024 * 1024 + 1);
        assert!(line.starts_with(&i.to_string()));
    }
}

#[test]
fn timestamp_queries_find_the_first_offset_at_or_after() {
    let skein = Skein::start();
    // Pre-create so the topic exists before timestamps are queried.
    produce(&skein, "times", "none", &["first".to_owned()], &[]);
    let out = run_ok(kcat(&skein).args(["-Q", "-t", "times:0:0"]), TIMEOUT);
    assert!(out.contains("offset 0"), "{out}");
    let out = run_ok(kcat(&skein).args(["-Q", "-t", "times:0:99999999999999"]), TIMEOUT);
    assert!(out.contains("offset -1") || out.contains("offset 1"), "beyond the newest record: {out}");
}
