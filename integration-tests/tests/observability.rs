//! The HTTP listener: Prometheus metrics fed by real traffic, and health.

use std::io::Write;
use std::process::{Command, Stdio};

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
