//! The stock Kafka 4.3.1 CLI tools (the Java client) against Skein:
//! kafka-topics, the console producer (idempotent by default) and consumer
//! (assign mode), kafka-get-offsets, kafka-configs and the producer perf test.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use skein_integration_tests::{run_ok, tool, Skein};

const TIMEOUT: Duration = Duration::from_secs(120);

fn kafka(skein: &Skein, name: &str) -> Command {
    let mut command = Command::new(tool(&format!("bin/{name}")));
    command.arg("--bootstrap-server").arg(skein.bootstrap());
    command
}

/// Runs a command expected to be refused; returns everything it printed.
fn refusal(command: &mut Command) -> String {
    let output = command.output().expect("runs");
    assert!(!output.status.success(), "{command:?} should have failed");
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

#[test]
fn topics_are_created_described_listed_and_deleted() {
    let skein = Skein::start();
    let out =
        run_ok(kafka(&skein, "kafka-topics").args(["--create", "--topic", "orders", "--partitions", "3"]), TIMEOUT);
    assert!(out.contains("Created topic orders"), "{out}");
    let out = run_ok(kafka(&skein, "kafka-topics").args(["--describe", "--topic", "orders"]), TIMEOUT);
    assert!(out.contains("PartitionCount: 3") && out.contains("Partition: 2\tLeader: 1"), "{out}");
    let out = run_ok(kafka(&skein, "kafka-topics").arg("--list"), TIMEOUT);
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["orders"]);
    let refused =
        refusal(kafka(&skein, "kafka-topics").args(["--create", "--topic", "orders3", "--replication-factor", "3"]));
    assert!(refused.contains("Replication factor: 3 larger than available brokers: 1"), "{refused}");
    run_ok(kafka(&skein, "kafka-topics").args(["--delete", "--topic", "orders"]), TIMEOUT);
    let out = run_ok(kafka(&skein, "kafka-topics").arg("--list"), TIMEOUT);
    assert!(out.trim().is_empty(), "{out}");
}

#[test]
fn console_producer_and_consumer_round_trip() {
    let skein = Skein::start();
    run_ok(kafka(&skein, "kafka-topics").args(["--create", "--topic", "chat", "--partitions", "1"]), TIMEOUT);
    let mut producer = kafka(&skein, "kafka-console-producer")
        .args(["--topic", "chat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("console producer starts");
    {
        let mut stdin = producer.stdin.take().expect("stdin");
        for i in 0..50 {
            writeln!(stdin, "message-{i}").expect("write");
        }
    }
    assert!(producer.wait().expect("exits").success());
    let out = run_ok(
        kafka(&skein, "kafka-console-consumer").args([
            "--topic",
            "chat",
            "--partition",
            "0",
            "--offset",
            "earliest",
            "--max-messages",
            "50",
            "--timeout-ms",
            "30000",
        ]),
        TIMEOUT,
    );
    let expected: Vec<String> = (0..50).map(|i| format!("message-{i}")).collect();
    assert_eq!(out.lines().collect::<Vec<_>>(), expected);
    let offsets = run_ok(kafka(&skein, "kafka-get-offsets").args(["--topic", "chat"]), TIMEOUT);
    assert_eq!(offsets.trim(), "chat:0:50");
    let earliest = run_ok(kafka(&skein, "kafka-get-offsets").args(["--topic", "chat", "--time", "earliest"]), TIMEOUT);
    assert_eq!(earliest.trim(), "chat:0:0");
}

#[test]
fn configs_are_described_with_kafka_names_and_sources() {
    let skein = Skein::start_with(&["--num.partitions=2"]);
    run_ok(
        kafka(&skein, "kafka-topics").args(["--create", "--topic", "conf", "--config", "retention.ms=1000"]),
        TIMEOUT,
    );
    let topic = run_ok(
        kafka(&skein, "kafka-configs").args([
            "--describe",
            "--entity-type",
            "topics",
            "--entity-name",
            "conf",
            "--all",
        ]),
        TIMEOUT,
    );
    assert!(
        topic.contains("retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000"),
        "{topic}"
    );
    assert!(topic.contains("max.message.bytes=1048588"), "{topic}");
    let broker = run_ok(
        kafka(&skein, "kafka-configs").args(["--describe", "--entity-type", "brokers", "--entity-name", "1", "--all"]),
        TIMEOUT,
    );
    assert!(
        broker.contains(
            "num.partitions=2 sensitive=false synonyms={STATIC_BROKER_CONFIG:num.partitions=2, DEFAULT_CONFIG:num.partitions=1}"
        ),
        "{broker}"
    );
    assert!(broker.contains("auto.create.topics.enable=true"), "{broker}");
    let refused = refusal(kafka(&skein, "kafka-topics").args([
        "--create",
        "--topic",
        "bad-conf",
        "--config",
        "no.such.config=1",
    ]));
    assert!(refused.contains("Unknown topic config name: no.such.config"), "{refused}");
}

#[test]
fn cluster_tool_reads_the_cluster_id_through_describe_cluster() {
    let skein = Skein::start();
    let cluster_id = |skein: &Skein| {
        let mut command = Command::new(tool("bin/kafka-cluster"));
        command.args(["cluster-id", "--bootstrap-server", &skein.bootstrap()]);
        run_ok(&mut command, TIMEOUT)
    };
    let out = cluster_id(&skein);
    let id = out.trim().strip_prefix("Cluster ID: ").unwrap_or_else(|| panic!("unexpected output: {out}"));
    assert_eq!(id.len(), 22, "a Kafka-style base64 UUID: {id}");
    let (_, metrics) = skein.http_get("/metrics").expect("metrics");
    assert!(metrics.contains("skein_requests_total{api=\"DescribeCluster\""), "answered through DescribeCluster");
    let mut skein = skein;
    skein.restart();
    let again = cluster_id(&skein);
    assert_eq!(again.trim(), out.trim(), "the cluster id survives a restart");
}

#[test]
fn producer_perf_test_runs_100k_records_with_acks_all() {
    let skein = Skein::start();
    let out = run_ok(
        Command::new(tool("bin/kafka-producer-perf-test")).args([
            "--topic",
            "perf",
            "--num-records",
            "100000",
            "--record-size",
            "1024",
            "--throughput",
            "-1",
            "--command-property",
            &format!("bootstrap.servers={}", skein.bootstrap()),
            "acks=all",
        ]),
        Duration::from_secs(300),
    );
    assert!(out.contains("100000 records sent"), "{out}");
    let offsets = run_ok(kafka(&skein, "kafka-get-offsets").args(["--topic", "perf"]), TIMEOUT);
    assert_eq!(offsets.trim(), "perf:0:100000");
}
