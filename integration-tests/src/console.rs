//! Kafka's Java console tools as test drivers: a producer of keyed lines,
//! console consumers as group members, and `kafka-consumer-groups` views.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{run_ok, tool, Skein};

const TIMEOUT: Duration = Duration::from_secs(180);

/// A Kafka CLI tool pointed at `skein`.
pub fn kafka(skein: &Skein, name: &str) -> Command {
    let mut command = Command::new(tool(&format!("bin/{name}")));
    command.arg("--bootstrap-server").arg(skein.bootstrap());
    command
}

/// Produces `line-<i>` keyed by `k<i>`, so that lines spread over every
/// partition (keyless records would stick to one partition per batch).
pub fn produce_lines(skein: &Skein, topic: &str, lines: std::ops::Range<i32>) {
    let mut producer = kafka(skein, "kafka-console-producer")
        .args(["--topic", topic, "--property", "parse.key=true", "--property", "key.separator=:"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("console producer starts");
    {
        let mut stdin = producer.stdin.take().expect("stdin");
        for i in lines {
            writeln!(stdin, "k{i}:line-{i}").expect("write");
        }
    }
    assert!(producer.wait().expect("exits").success());
}

/// Console consumers of one group, each printing to its own file.
pub struct ConsoleMembers {
    pub children: Vec<std::process::Child>,
    outputs: Vec<std::path::PathBuf>,
    dir: tempfile::TempDir,
}

impl ConsoleMembers {
    /// `properties` are consumer properties (`group.protocol=...` and such).
    pub fn start(skein: &Skein, topic: &str, group: &str, count: usize, properties: &[&str]) -> Self {
        let mut members =
            Self { children: Vec::new(), outputs: Vec::new(), dir: tempfile::tempdir().expect("tempdir") };
        for _ in 0..count {
            members.add(skein, topic, group, properties);
        }
        members
    }

    /// Starts one more member, with its own properties.
    pub fn add(&mut self, skein: &Skein, topic: &str, group: &str, properties: &[&str]) {
        {
            let path = self.dir.path().join(format!("member-{}.out", self.children.len()));
            let file = std::fs::File::create(&path).expect("output file");
            let child = kafka(skein, "kafka-console-consumer")
                .args(["--topic", topic, "--group", group, "--from-beginning", "--timeout-ms", "120000"])
                .args(properties.iter().flat_map(|p| ["--consumer-property", p]))
                .stdout(file)
                .stderr(Stdio::null())
                .spawn()
                .expect("console consumer starts");
            self.children.push(child);
            self.outputs.push(path);
        }
    }

    /// Distinct lines printed by all members so far.
    pub fn consumed(&self) -> std::collections::BTreeSet<String> {
        self.outputs
            .iter()
            .flat_map(|p| std::fs::read_to_string(p).unwrap_or_default().lines().map(str::to_owned).collect::<Vec<_>>())
            .collect()
    }

    pub fn wait_for(&self, lines: usize, what: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while self.consumed().len() < lines {
            assert!(std::time::Instant::now() < deadline, "{what}: {} of {lines} lines", self.consumed().len());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for ConsoleMembers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The partitions each member owns, from `kafka-consumer-groups --describe
/// --members --verbose`: the assignment is written `topic:0,1,2` for
/// KIP-848 groups and `topic(0,1,2)` for classic ones.
pub fn member_assignments(skein: &Skein, group: &str, topic: &str) -> Vec<Vec<i32>> {
    let out = run_ok(
        kafka(skein, "kafka-consumer-groups").args(["--describe", "--group", group, "--members", "--verbose"]),
        TIMEOUT,
    );
    out.lines()
        .filter(|line| line.starts_with(group))
        .map(|line| {
            let assignment = line.split_whitespace().find(|c| c.starts_with(topic)).unwrap_or_default();
            let partitions = assignment.get(topic.len()..).unwrap_or_default();
            partitions.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse().ok()).collect()
        })
        .collect()
}
