//! Durability with real processes: an idempotent acks=all producer
//! (confluent-kafka) writes while the broker is killed with SIGKILL; after a
//! restart every acknowledged record is read back (kcat) at its acknowledged
//! offset, in order, exactly once.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use skein_integration_tests::{repo_root, run_ok, tool, Skein};

const ACKS_BEFORE_KILL: usize = 3000;

fn read_back(skein: &Skein, topic: &str) -> BTreeMap<i64, String> {
    let out = run_ok(
        Command::new("kcat").args([
            "-b",
            &skein.bootstrap(),
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%o %s\\n",
        ]),
        Duration::from_secs(60),
    );
    out.lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(offset, value)| (offset.parse().expect("offset"), value.to_owned()))
        .collect()
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let mut skein = Skein::start();
    let python = tool("venv/bin/python");
    let script = repo_root().join("integration-tests/python/durability_producer.py");
    let mut producer = Command::new(python)
        .arg(script)
        .args(["--bootstrap", &skein.bootstrap(), "--topic", "durable"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("producer starts");
    let stdout = producer.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.len() < ACKS_BEFORE_KILL {
        assert!(Instant::now() < deadline, "only {} acks in 120 s", acked.len());
        if let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(1)) {
            acked.push(line);
        }
    }
    skein.kill9();
    // Acks already in flight to the producer before the kill still count.
    std::thread::sleep(Duration::from_millis(500));
    let _ = producer.kill();
    let _ = producer.wait();
    let _ = reader.join();
    acked.extend(lines_rx.try_iter());

    skein.restart();
    let stored = read_back(&skein, "durable");
    for line in &acked {
        let mut fields = line.splitn(3, ' ');
        let (_partition, offset, value) = (fields.next(), fields.next(), fields.next().unwrap_or_default());
        let offset: i64 = offset.and_then(|o| o.parse().ok()).expect("offset");
        assert_eq!(stored.get(&offset).map(String::as_str), Some(value), "acknowledged record at offset {offset} lost");
    }
    // Dense offsets, production order, no duplicates.
    let values: Vec<&String> = stored.values().collect();
    assert_eq!(stored.keys().copied().collect::<Vec<_>>(), (0..stored.len() as i64).collect::<Vec<_>>());
    for (i, value) in values.iter().enumerate() {
        assert_eq!(**value, format!("record-{i}"), "offset {i} holds the i-th produced record");
    }
    assert!(stored.len() >= acked.len());
}

#[test]
fn sigterm_shuts_down_cleanly_and_keeps_data() {
    let mut skein = Skein::start();
    let lines: String = (0..100).map(|i| format!("line-{i}\n")).collect();
    let mut child = Command::new("kcat")
        .args(["-b", &skein.bootstrap(), "-P", "-t", "graceful", "-X", "acks=all"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("kcat");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), lines.as_bytes()).expect("write");
    assert!(child.wait().expect("kcat exits").success());
    assert_eq!(skein.terminate(), Some(0), "exit code 0 on SIGTERM; log:\n{}", skein.log());
    assert!(skein.log().contains("stopped cleanly"), "{}", skein.log());
    skein.restart();
    assert_eq!(read_back(&skein, "graceful").len(), 100);
}
