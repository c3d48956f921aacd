//! Mixed consumer groups with real Java consumers (Kafka 4's online
//! migration): classic members and KIP-848 members in one group. A
//! `group.protocol=consumer` member joining a classic group converts it to
//! a consumer group (upgrade) in which the classic members stay; when that
//! member leaves, the group goes back to classic (downgrade). Every
//! produced line is consumed throughout, and no partition has two owners.

use std::process::Command;
use std::time::{Duration, Instant};

use skein_integration_tests::console::{kafka, member_assignments, produce_lines, ConsoleMembers};
use skein_integration_tests::{run_ok, Skein};

const TIMEOUT: Duration = Duration::from_secs(180);
const GROUP: &str = "mixers";
const TOPIC: &str = "mixed";

/// The group's type as `kafka-consumer-groups --list --type` shows it.
fn group_type(skein: &Skein) -> String {
    let out = run_ok(kafka(skein, "kafka-consumer-groups").args(["--list", "--type"]), TIMEOUT);
    let row = out.lines().find(|line| line.split_whitespace().next() == Some(GROUP)).unwrap_or_default();
    row.split_whitespace().nth(1).unwrap_or_default().to_lowercase()
}

/// Waits until the group has this type and `members` members that own all
/// six partitions, each partition exactly once.
fn wait_for_group(skein: &Skein, want_type: &str, members: usize) -> Vec<Vec<i32>> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let kind = group_type(skein);
        let rows = member_assignments(skein, GROUP, TOPIC);
        let mut all: Vec<i32> = rows.iter().flatten().copied().collect();
        all.sort_unstable();
        if kind == want_type && rows.len() == members && all == (0..6).collect::<Vec<_>>() {
            return rows;
        }
        assert!(Instant::now() < deadline, "group never became {want_type} with {members} members: {kind} {rows:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn classic_and_kip_848_java_consumers_share_a_group_through_upgrade_and_downgrade() {
    let skein = Skein::start_with(&[
        "--group.consumer.session.timeout.ms=10000",
        "--group.consumer.heartbeat.interval.ms=500",
        "--group.initial.rebalance.delay.ms=0",
    ]);
    run_ok(kafka(&skein, "kafka-topics").args(["--create", "--topic", TOPIC, "--partitions", "6"]), TIMEOUT);
    let classic = ["group.protocol=classic", "session.timeout.ms=10000", "heartbeat.interval.ms=500"];
    let mut members = ConsoleMembers::start(&skein, TOPIC, GROUP, 2, &classic);
    produce_lines(&skein, TOPIC, 0..300);
    members.wait_for(300, "two classic members consume everything");
    let rows = wait_for_group(&skein, "classic", 2);
    eprintln!("classic group: {rows:?}");

    // A KIP-848 member joins: the group is upgraded and the classic members stay in it.
    let joined = Instant::now();
    members.add(&skein, TOPIC, GROUP, &["group.protocol=consumer"]);
    let rows = wait_for_group(&skein, "consumer", 3);
    let upgrade_s = joined.elapsed().as_secs_f64();
    eprintln!("mixed group after the upgrade: {rows:?}");
    assert!(rows.iter().all(|r| !r.is_empty()), "every member got partitions: {rows:?}");
    produce_lines(&skein, TOPIC, 300..600);
    members.wait_for(600, "the mixed group consumes everything");

    // The KIP-848 member leaves: only classic members remain, so the group goes back to classic.
    let left = Instant::now();
    let pid = members.children[2].id().to_string();
    run_ok(Command::new("kill").args(["-TERM", &pid]), TIMEOUT);
    let _ = members.children[2].wait();
    let rows = wait_for_group(&skein, "classic", 2);
    let downgrade_s = left.elapsed().as_secs_f64();
    eprintln!("classic group after the downgrade: {rows:?}");
    produce_lines(&skein, TOPIC, 600..900);
    members.wait_for(900, "the classic members consume everything after the downgrade");
    eprintln!(
        "mixed-group latency: KIP-848 member start to a 3-member assignment {upgrade_s:.1}s (JVM start included); \
         its leave to a 2-member classic assignment {downgrade_s:.1}s"
    );
}
