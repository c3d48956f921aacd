//! Consumer groups (classic protocol) with real clients: confluent-kafka
//! (eager `range` and incremental `cooperative-sticky`), kafka-python, the
//! Java console consumer and `kafka-consumer-groups`; committed offsets and
//! groups across a `kill -9` restart; Kafka's error codes for bad requests.

use std::process::Command;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, HeartbeatRequest, JoinGroupRequest, OffsetCommitRequest, RequestKind, ResponseKind, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use skein_integration_tests::console::{kafka, member_assignments, produce_lines, ConsoleMembers};
use skein_integration_tests::wire::WireClient;
use skein_integration_tests::{repo_root, run_ok, tool, Skein};

const TIMEOUT: Duration = Duration::from_secs(180);

fn groups_script(skein: &Skein, client: &str, assignor: &str, name: &str) -> String {
    groups_script_with(skein, &["--client", client, "--assignor", assignor, "--topic", name, "--group", name])
}

fn groups_script_with(skein: &Skein, args: &[&str]) -> String {
    run_ok(
        Command::new(tool("venv/bin/python"))
            .arg(repo_root().join("integration-tests/python/groups.py"))
            .args(["--bootstrap", &skein.bootstrap()])
            .args(args),
        TIMEOUT,
    )
}

#[test]
fn confluent_kafka_groups_share_partitions_through_leave_and_kill() {
    let skein = Skein::start();
    for assignor in ["range", "cooperative-sticky"] {
        let out = groups_script(&skein, "confluent", assignor, &format!("cf-{assignor}"));
        assert!(out.contains("\"ok\": true") && out.contains("\"consumed\": 1800"), "{assignor}: {out}");
        eprintln!("confluent-kafka {assignor}: {out}");
    }
}

#[test]
fn confluent_kafka_groups_with_the_kip_848_protocol_share_partitions_through_leave_and_kill() {
    // The broker owns KIP-848 sessions: short enough for the killed member.
    let skein =
        Skein::start_with(&["--group.consumer.session.timeout.ms=6000", "--group.consumer.heartbeat.interval.ms=500"]);
    for assignor in ["uniform", "range"] {
        let name = format!("cf-848-{assignor}");
        let out = groups_script_with(
            &skein,
            &[
                "--client",
                "confluent",
                "--protocol",
                "consumer",
                "--assignor",
                assignor,
                "--topic",
                &name,
                "--group",
                &name,
            ],
        );
        assert!(out.contains("\"ok\": true") && out.contains("\"consumed\": 1800"), "{assignor}: {out}");
        eprintln!("confluent-kafka KIP-848 {assignor}: {out}");
    }
}

#[test]
fn kafka_python_groups_share_partitions_through_leave_and_kill() {
    let skein = Skein::start();
    let out = groups_script(&skein, "kafka-python", "range", "kp-range");
    assert!(out.contains("\"ok\": true") && out.contains("\"consumed\": 1800"), "{out}");
    eprintln!("kafka-python range: {out}");
}

#[test]
fn a_static_member_restarting_within_its_session_keeps_its_partitions_without_a_rebalance() {
    let skein = Skein::start();
    let out = run_ok(
        Command::new(tool("venv/bin/python"))
            .arg(repo_root().join("integration-tests/python/static_members.py"))
            .args(["--bootstrap", &skein.bootstrap(), "--topic", "static", "--group", "static"]),
        TIMEOUT,
    );
    assert!(out.contains("\"ok\": true"), "{out}");
    eprintln!("static membership: {out}");
}

fn consume_in_group(skein: &Skein, topic: &str, group: &str, count: usize) -> Vec<String> {
    let out = run_ok(
        kafka(skein, "kafka-console-consumer").args([
            "--topic",
            topic,
            "--group",
            group,
            "--from-beginning",
            "--max-messages",
            &count.to_string(),
            "--timeout-ms",
            "60000",
        ]),
        TIMEOUT,
    );
    out.lines().map(str::to_owned).collect()
}

/// The `kafka-consumer-groups --describe` row of one partition, split on whitespace.
fn describe_row(skein: &Skein, group: &str, topic: &str, partition: i32) -> Vec<String> {
    let out = run_ok(kafka(skein, "kafka-consumer-groups").args(["--describe", "--group", group]), TIMEOUT);
    out.lines()
        .map(|line| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|cols| cols.len() > 3 && cols[0] == group && cols[1] == topic && cols[2] == partition.to_string())
        .unwrap_or_else(|| panic!("no row for {topic}-{partition} in:\n{out}"))
}

/// `kafka-consumer-groups --reset-offsets` of group auditors on topic ledger.
fn reset_offsets(skein: &Skein, how: &[&str]) -> String {
    let mut command = kafka(skein, "kafka-consumer-groups");
    command.args(["--reset-offsets", "--group", "auditors", "--topic", "ledger", "--execute"]).args(how);
    run_ok(&mut command, TIMEOUT)
}

#[test]
fn java_console_consumer_group_and_the_consumer_groups_tool() {
    let mut skein = Skein::start();
    run_ok(kafka(&skein, "kafka-topics").args(["--create", "--topic", "ledger", "--partitions", "1"]), TIMEOUT);
    produce_lines(&skein, "ledger", 0..30);
    let first = consume_in_group(&skein, "ledger", "auditors", 20);
    assert_eq!(first, (0..20).map(|i| format!("line-{i}")).collect::<Vec<_>>());

    let listed = run_ok(kafka(&skein, "kafka-consumer-groups").arg("--list"), TIMEOUT);
    assert_eq!(listed.lines().collect::<Vec<_>>(), vec!["auditors"], "{listed}");
    // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
    let row = describe_row(&skein, "auditors", "ledger", 0);
    assert_eq!(&row[3..6], ["20", "30", "10"], "{row:?}");

    // A restart (kill -9) keeps the group and its committed offset.
    skein.restart();
    let row = describe_row(&skein, "auditors", "ledger", 0);
    assert_eq!(&row[3..6], ["20", "30", "10"], "after restart: {row:?}");
    let rest = consume_in_group(&skein, "ledger", "auditors", 10);
    assert_eq!(rest, (20..30).map(|i| format!("line-{i}")).collect::<Vec<_>>(), "resumes at the commit");

    let reset = reset_offsets(&skein, &["--to-earliest"]);
    assert!(reset.contains("auditors") && reset.contains("ledger"), "{reset}");
    assert_eq!(&describe_row(&skein, "auditors", "ledger", 0)[3..6], ["0", "30", "30"]);
    reset_offsets(&skein, &["--shift-by", "5"]);
    assert_eq!(&describe_row(&skein, "auditors", "ledger", 0)[3..6], ["5", "30", "25"]);
    reset_offsets(&skein, &["--to-datetime", "2100-01-01T00:00:00.000"]);
    // No record is that young: the offset goes to the log end.
    assert_eq!(&describe_row(&skein, "auditors", "ledger", 0)[3..6], ["30", "30", "0"]);

    let deleted = run_ok(
        kafka(&skein, "kafka-consumer-groups").args(["--delete-offsets", "--group", "auditors", "--topic", "ledger"]),
        TIMEOUT,
    );
    assert!(deleted.contains("Successful"), "{deleted}");
    let deleted = run_ok(kafka(&skein, "kafka-consumer-groups").args(["--delete", "--group", "auditors"]), TIMEOUT);
    assert!(deleted.contains("successful"), "{deleted}");
    let listed = run_ok(kafka(&skein, "kafka-consumer-groups").arg("--list"), TIMEOUT);
    assert!(listed.trim().is_empty(), "{listed}");
}

fn join_request(group: &str, member_id: &str) -> RequestKind {
    let mut protocol = kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol::default();
    protocol.name = StrBytes::from_static_str("range");
    let mut request = JoinGroupRequest::default();
    request.group_id = StrBytes::from_string(group.to_owned()).into();
    request.session_timeout_ms = 10_000;
    request.rebalance_timeout_ms = 10_000;
    request.member_id = StrBytes::from_string(member_id.to_owned());
    request.protocol_type = StrBytes::from_static_str("consumer");
    request.protocols = vec![protocol];
    RequestKind::JoinGroup(request)
}

fn heartbeat(client: &mut WireClient, group: &str, member: &str, generation: i32) -> i16 {
    let mut request = HeartbeatRequest::default();
    request.group_id = StrBytes::from_string(group.to_owned()).into();
    request.member_id = StrBytes::from_string(member.to_owned());
    request.generation_id = generation;
    match client.call(ApiKey::Heartbeat, 4, &RequestKind::Heartbeat(request)).expect("heartbeat") {
        ResponseKind::Heartbeat(response) => response.error_code,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn bad_group_requests_get_kafkas_error_codes() {
    let skein = Skein::start_with(&["--group.initial.rebalance.delay.ms=0"]);
    let mut client = WireClient::connect(skein.port).expect("connect");
    let join = |client: &mut WireClient, group: &str, member: &str| match client
        .call(ApiKey::JoinGroup, 9, &join_request(group, member))
        .expect("join")
    {
        ResponseKind::JoinGroup(response) => response,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(join(&mut client, "", "").error_code, ResponseError::InvalidGroupId.code());
    assert_eq!(join(&mut client, &"g".repeat(2000), "").error_code, ResponseError::InvalidGroupId.code());
    let first = join(&mut client, "probe", "");
    assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
    let member = first.member_id.to_string();
    assert!(!member.is_empty());
    let joined = join(&mut client, "probe", &member);
    assert_eq!((joined.error_code, joined.generation_id), (0, 1));
    assert_eq!(heartbeat(&mut client, "probe", "nobody", 1), ResponseError::UnknownMemberId.code());
    assert_eq!(heartbeat(&mut client, "probe", &member, 99), ResponseError::IllegalGeneration.code());
    assert_eq!(heartbeat(&mut client, "no-such-group", &member, 1), ResponseError::UnknownMemberId.code());
    assert_eq!(join(&mut client, "probe", "made-up").error_code, ResponseError::UnknownMemberId.code());

    // Commits: unknown topics per partition, a stale generation for the whole group.
    client.create_topic("known", 1);
    let commit = |client: &mut WireClient, generation: i32, topic: &str| {
        let mut partition = kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition::default();
        partition.committed_offset = 1;
        let mut wire_topic = kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic::default();
        wire_topic.name = StrBytes::from_string(topic.to_owned()).into();
        wire_topic.partitions = vec![partition];
        let mut request = OffsetCommitRequest::default();
        request.group_id = StrBytes::from_static_str("probe").into();
        request.generation_id_or_member_epoch = generation;
        request.member_id = StrBytes::from_string(member.clone());
        request.topics = vec![wire_topic];
        match client.call(ApiKey::OffsetCommit, 8, &RequestKind::OffsetCommit(request)).expect("commit") {
            ResponseKind::OffsetCommit(response) => response.topics[0].partitions[0].error_code,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(commit(&mut client, 1, "no-such-topic"), ResponseError::UnknownTopicOrPartition.code());
    assert_eq!(commit(&mut client, 7, "known"), ResponseError::IllegalGeneration.code());
    assert_eq!(commit(&mut client, 1, "known"), ResponseError::RebalanceInProgress.code(), "not synced yet");
    let mut sync = SyncGroupRequest::default();
    sync.group_id = StrBytes::from_static_str("probe").into();
    sync.generation_id = 1;
    sync.member_id = StrBytes::from_string(member.clone());
    match client.call(ApiKey::SyncGroup, 5, &RequestKind::SyncGroup(sync)).expect("sync") {
        ResponseKind::SyncGroup(response) => assert_eq!(response.error_code, 0),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(commit(&mut client, 1, "known"), 0);
    assert!(skein.log().contains("skein is ready"), "the broker stayed up");
}

#[test]
fn java_consumers_share_partitions_with_the_kip_848_protocol() {
    // The broker owns session timeout and heartbeat interval in KIP-848.
    let skein =
        Skein::start_with(&["--group.consumer.session.timeout.ms=10000", "--group.consumer.heartbeat.interval.ms=500"]);
    java_group_scenario(skein, &["group.protocol=consumer"], "uniform");
}

#[test]
fn java_consumers_share_partitions_with_the_classic_protocol() {
    let skein = Skein::start();
    let properties = ["group.protocol=classic", "session.timeout.ms=10000", "heartbeat.interval.ms=500"];
    java_group_scenario(skein, &properties, "range");
}

/// Three Java console consumers in one group over 6 partitions: each
/// partition owned by exactly one member; one member `kill -9`ed (its
/// partitions move after its session); the broker `kill -9`ed and
/// restarted (the group carries on); one member stopped gracefully (its
/// partitions move at once). Every produced line is consumed.
fn java_group_scenario(skein: Skein, properties: &[&str], strategy: &str) {
    let protocol = properties[0];
    run_ok(kafka(&skein, "kafka-topics").args(["--create", "--topic", "flows", "--partitions", "6"]), TIMEOUT);
    let started = std::time::Instant::now();
    let mut members = ConsoleMembers::start(&skein, "flows", "flow-readers", 3, properties);
    produce_lines(&skein, "flows", 0..300);
    members.wait_for(300, "three members consume everything");
    let joined_s = started.elapsed().as_secs_f64();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let spread = loop {
        let rows = member_assignments(&skein, "flow-readers", "flows");
        let mut all: Vec<i32> = rows.iter().flatten().copied().collect();
        all.sort_unstable();
        if rows.len() == 3 && rows.iter().all(|r| !r.is_empty()) && all == (0..6).collect::<Vec<_>>() {
            break rows;
        }
        assert!(std::time::Instant::now() < deadline, "members never all got partitions: {rows:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("{protocol} assignment: {spread:?}");
    let listed = run_ok(kafka(&skein, "kafka-consumer-groups").arg("--list"), TIMEOUT);
    assert!(listed.lines().any(|l| l.trim() == "flow-readers"), "{listed}");

    // kill -9 one member: its session expires and the others take over.
    let killed = std::time::Instant::now();
    let _ = members.children[0].kill();
    let _ = members.children[0].wait();
    produce_lines(&skein, "flows", 300..600);
    members.wait_for(600, "the survivors consume after a member was killed");
    let takeover_s = killed.elapsed().as_secs_f64();

    // The broker restarts (kill -9): the group, its epochs and its offsets
    // are persisted, so the members carry on.
    let mut skein = skein;
    skein.restart();
    produce_lines(&skein, "flows", 600..900);
    members.wait_for(900, "the members carry on after a broker restart");
    let state = run_ok(
        kafka(&skein, "kafka-consumer-groups").args(["--describe", "--group", "flow-readers", "--state"]),
        TIMEOUT,
    );
    assert!(state.contains(strategy) && state.lines().any(|l| l.trim_end().ends_with(" 2")), "{state}");

    // A graceful stop (SIGTERM) leaves the group at once (epoch -1): the
    // last member takes every partition without waiting for a session.
    let left = std::time::Instant::now();
    let pid = members.children[1].id().to_string();
    run_ok(Command::new("kill").args(["-TERM", &pid]), TIMEOUT);
    let _ = members.children[1].wait();
    produce_lines(&skein, "flows", 900..1200);
    members.wait_for(1200, "the last member consumes everything after the other left");
    let leave_s = left.elapsed().as_secs_f64();
    // Well under the 10 s session, with room for a loaded CI machine.
    assert!(leave_s < 8.0, "a leave must not wait for the session timeout: {leave_s:.1}s");
    eprintln!("{protocol} latency: 3 members started to all 300 records consumed {joined_s:.1}s (JVM start included); kill -9 of a member to its partitions consumed {takeover_s:.1}s (10 s session timeout); graceful leave to its partitions consumed {leave_s:.1}s");
}

#[test]
fn offsets_of_an_empty_group_expire_after_the_retention() {
    // The shortest retention Kafka's setting allows is one minute.
    let mut skein = Skein::start_with(&["--offsets.retention.minutes=1", "--offsets.retention.check.interval.ms=500"]);
    run_ok(kafka(&skein, "kafka-topics").args(["--create", "--topic", "ledger", "--partitions", "1"]), TIMEOUT);
    produce_lines(&skein, "ledger", 0..5);
    reset_offsets(&skein, &["--to-earliest"]);
    let listed = run_ok(kafka(&skein, "kafka-consumer-groups").arg("--list"), TIMEOUT);
    assert_eq!(listed.trim(), "auditors", "an admin commit creates the group");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let listed = run_ok(kafka(&skein, "kafka-consumer-groups").arg("--list"), TIMEOUT);
        if listed.trim().is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the group never expired: {listed}");
        std::thread::sleep(Duration::from_secs(2));
    }
    skein.restart();
    let listed = run_ok(kafka(&skein, "kafka-consumer-groups").arg("--list"), TIMEOUT);
    assert!(listed.trim().is_empty(), "the expiry was persisted: {listed}");
}

/// Every committed offset of `group`, as (topic, partition, offset), via OffsetFetch v8.
fn committed(client: &mut WireClient, group: &str) -> Vec<(String, i32, i64)> {
    let mut wanted = kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup::default();
    wanted.group_id = StrBytes::from_string(group.to_owned()).into();
    wanted.topics = None;
    let mut request = kafka_protocol::messages::OffsetFetchRequest::default();
    request.groups = vec![wanted];
    match client.call(ApiKey::OffsetFetch, 8, &RequestKind::OffsetFetch(request)).expect("offset fetch") {
        ResponseKind::OffsetFetch(response) => response.groups[0]
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.name.to_string(), p.partition_index, p.committed_offset)))
            .collect(),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn deleting_a_topic_deletes_the_offsets_committed_for_it() {
    let skein = Skein::start();
    let mut client = WireClient::connect(skein.port).expect("connect");
    client.create_topic("gone", 1);
    client.create_topic("kept", 1);
    for topic in ["gone", "kept"] {
        let mut partition = kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition::default();
        partition.committed_offset = 7;
        let mut wire_topic = kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic::default();
        wire_topic.name = StrBytes::from_static_str(topic).into();
        wire_topic.partitions = vec![partition];
        let mut request = OffsetCommitRequest::default();
        request.group_id = StrBytes::from_static_str("keeper").into();
        request.generation_id_or_member_epoch = -1;
        request.topics = vec![wire_topic];
        match client.call(ApiKey::OffsetCommit, 9, &RequestKind::OffsetCommit(request)).expect("commit") {
            ResponseKind::OffsetCommit(response) => assert_eq!(response.topics[0].partitions[0].error_code, 0),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(committed(&mut client, "keeper").len(), 2);
    let mut delete = kafka_protocol::messages::DeleteTopicsRequest::default();
    delete.topic_names = vec![StrBytes::from_static_str("gone").into()];
    delete.timeout_ms = 30_000;
    match client.call(ApiKey::DeleteTopics, 5, &RequestKind::DeleteTopics(delete)).expect("delete") {
        ResponseKind::DeleteTopics(response) => assert_eq!(response.responses[0].error_code, 0),
        other => panic!("unexpected {other:?}"),
    }
    client.create_topic("gone", 1);
    assert_eq!(committed(&mut client, "keeper"), vec![("kept".to_owned(), 0, 7)], "a re-created topic starts afresh");
}
