//! Every configuration Skein understands, under Kafka's names. These tables
//! drive parsing, validation, defaults and the DescribeConfigs answers.

/// The type of a config value, as DescribeConfigs v3+ reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    Text,
    Int,
    Long,
    List,
    /// One of a fixed set of strings.
    Choice(&'static [&'static str]),
}

impl ConfigType {
    /// The DescribeConfigs `config_type` code.
    pub fn wire_code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::Text | ConfigType::Choice(_) => 2,
            ConfigType::Int => 3,
            ConfigType::Long => 5,
            ConfigType::List => 7,
        }
    }

    /// Checks a value; the error says what was expected.
    pub fn validate(self, value: &str) -> Result<(), String> {
        match self {
            ConfigType::Boolean => match value {
                "true" | "false" => Ok(()),
                _ => Err("expected true or false".to_owned()),
            },
            ConfigType::Int => value.parse::<i32>().map(|_| ()).map_err(|_| "expected a 32-bit integer".to_owned()),
            ConfigType::Long => value.parse::<i64>().map(|_| ()).map_err(|_| "expected a 64-bit integer".to_owned()),
            ConfigType::Text | ConfigType::List => Ok(()),
            ConfigType::Choice(options) => {
                if options.contains(&value) {
                    Ok(())
                } else {
                    Err(format!("expected one of {}", options.join(", ")))
                }
            }
        }
    }
}

/// One config: name, default, type, an optional lower bound and its doc.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: ConfigType,
    pub min: Option<i64>,
    pub doc: &'static str,
}

impl ConfigDef {
    pub fn validate(&self, value: &str) -> Result<(), String> {
        self.kind.validate(value)?;
        if let (Some(min), Ok(number)) = (self.min, value.parse::<i64>()) {
            if number < min {
                return Err(format!("must be at least {min}"));
            }
        }
        Ok(())
    }
}

const fn def(
    name: &'static str,
    default: &'static str,
    kind: ConfigType,
    min: Option<i64>,
    doc: &'static str,
) -> ConfigDef {
    ConfigDef { name, default, kind, min, doc }
}

use ConfigType::*;

/// Broker configs.
pub const BROKER_CONFIGS: &[ConfigDef] = &[
    def("node.id", "1", Int, Some(0), "The id of this node in the cluster."),
    def(
        "listeners",
        "PLAINTEXT://127.0.0.1:9092",
        List,
        None,
        "Where the Kafka protocol listens (PLAINTEXT only for now).",
    ),
    def("advertised.listeners", "", List, None, "What Metadata tells clients to connect to; empty means `listeners`."),
    def("log.dirs", "./skein-data", Text, None, "The directory holding all data (one directory)."),
    def(
        "num.partitions",
        "1",
        Int,
        Some(1),
        "Partitions of an auto-created topic or of a CreateTopics request with -1.",
    ),
    def("default.replication.factor", "1", Int, Some(1), "Replication factor of auto-created topics."),
    def("auto.create.topics.enable", "true", Boolean, None, "Create a topic when Metadata asks for an unknown one."),
    def(
        "message.max.bytes",
        "1048588",
        Int,
        Some(0),
        "Largest record batch a topic accepts unless max.message.bytes says otherwise.",
    ),
    def(
        "log.retention.ms",
        "604800000",
        Long,
        Some(-1),
        "Default topic retention.ms (stored and reported; not enforced yet).",
    ),
    def(
        "log.retention.bytes",
        "-1",
        Long,
        Some(-1),
        "Default topic retention.bytes (stored and reported; not enforced yet).",
    ),
    def(
        "log.cleanup.policy",
        "delete",
        Choice(&["delete"]),
        None,
        "Default cleanup.policy (compaction is not implemented yet).",
    ),
    def(
        "log.message.timestamp.type",
        "CreateTime",
        Choice(&["CreateTime", "LogAppendTime"]),
        None,
        "Default message.timestamp.type.",
    ),
    def("min.insync.replicas", "1", Int, Some(1), "Default min.insync.replicas."),
    def(
        "compression.type",
        "producer",
        Choice(&["producer"]),
        None,
        "Batches are stored as the producer compressed them.",
    ),
    def(
        "socket.request.max.bytes",
        "104857600",
        Int,
        Some(1024),
        "Largest request frame accepted; larger ones close the connection.",
    ),
    def("max.connections", "10000", Int, Some(1), "Connections accepted at once; more are closed on accept."),
    def(
        "socket.listen.backlog.size",
        "1024",
        Int,
        Some(1),
        "Connections the kernel queues before the broker accepts them (capped by net.core.somaxconn). Kafka's \
         default is 50; past the queue, a connecting client waits a SYN retry (1 s).",
    ),
    def("queued.max.requests", "500", Int, Some(1), "Requests one connection may have in flight (pipelined) at once."),
    def(
        "queued.max.request.bytes",
        "33554432",
        Int,
        Some(-1),
        "Bytes of requests all connections together may have in flight; a connection whose next request \
         does not fit waits before reading on (one request always fits). -1: no limit (Kafka's default).",
    ),
    def(
        "offsets.topic.num.partitions",
        "50",
        Int,
        Some(1),
        "Coordinator shards for consumer groups (Kafka's __consumer_offsets partitions); fixed when the data \
         directory is created.",
    ),
    def("group.min.session.timeout.ms", "6000", Int, Some(0), "Shortest session timeout a group member may ask for."),
    def("group.max.session.timeout.ms", "1800000", Int, Some(0), "Longest session timeout a group member may ask for."),
    def(
        "group.initial.rebalance.delay.ms",
        "3000",
        Int,
        Some(0),
        "How long the first rebalance of an empty group waits for more members to join.",
    ),
    def("group.max.size", "2147483647", Int, Some(1), "Most members one consumer group may have."),
    def(
        "group.consumer.session.timeout.ms",
        "45000",
        Int,
        Some(1),
        "Session timeout of KIP-848 consumer group members (the broker owns it).",
    ),
    def(
        "group.consumer.heartbeat.interval.ms",
        "5000",
        Int,
        Some(1),
        "Heartbeat interval the broker gives KIP-848 consumer group members.",
    ),
    def("group.consumer.max.size", "2147483647", Int, Some(1), "Most members one KIP-848 consumer group may have."),
    def(
        "group.consumer.migration.policy",
        "bidirectional",
        Choice(&["disabled", "upgrade", "downgrade", "bidirectional"]),
        None,
        "Online conversion between classic and consumer groups: upgrade (a classic group becomes a consumer \
         group when a consumer-protocol member joins), downgrade (back, once only classic members remain), both, \
         or neither.",
    ),
    def(
        "offsets.retention.minutes",
        "10080",
        Int,
        Some(1),
        "How long the offsets of a group without members are kept after it became empty and its last commit.",
    ),
    def(
        "offsets.retention.check.interval.ms",
        "600000",
        Long,
        Some(1),
        "How often expired offsets (and their empty groups) are deleted.",
    ),
    def("offset.metadata.max.bytes", "4096", Int, Some(0), "Largest metadata string of a committed offset."),
    def(
        "skein.fsync",
        "always",
        Choice(&["always", "interval"]),
        None,
        "always: fsync before acknowledging a write; interval: fsync every skein.fsync.interval.ms.",
    ),
    def("skein.fsync.interval.ms", "100", Long, Some(1), "Interval between fsyncs when skein.fsync=interval."),
    def(
        "skein.http.listener",
        "127.0.0.1:9644",
        Text,
        None,
        "Address of the HTTP listener for /metrics and /health; empty disables it.",
    ),
    def(
        "skein.log.format",
        "human",
        Choice(&["human", "json"]),
        None,
        "Log line format on stderr; RUST_LOG sets the level (default info).",
    ),
    def(
        "skein.shutdown.grace.ms",
        "5000",
        Long,
        Some(0),
        "How long SIGTERM waits for in-flight requests before flushing and exiting.",
    ),
];

/// Topic configs and the broker config each defaults to.
pub const TOPIC_CONFIGS: &[(ConfigDef, &str)] = &[
    (
        def(
            "cleanup.policy",
            "delete",
            Choice(&["delete"]),
            None,
            "Only delete is supported (compaction is not implemented yet).",
        ),
        "log.cleanup.policy",
    ),
    (
        def(
            "retention.ms",
            "604800000",
            Long,
            Some(-1),
            "How long data is kept (stored and reported; not enforced yet).",
        ),
        "log.retention.ms",
    ),
    (
        def(
            "retention.bytes",
            "-1",
            Long,
            Some(-1),
            "Size a partition may grow to (stored and reported; not enforced yet).",
        ),
        "log.retention.bytes",
    ),
    (
        def(
            "max.message.bytes",
            "1048588",
            Int,
            Some(0),
            "Largest record batch accepted; larger ones get MESSAGE_TOO_LARGE.",
        ),
        "message.max.bytes",
    ),
    (
        def(
            "message.timestamp.type",
            "CreateTime",
            Choice(&["CreateTime", "LogAppendTime"]),
            None,
            "CreateTime keeps producer timestamps; LogAppendTime stamps batches on append.",
        ),
        "log.message.timestamp.type",
    ),
    (
        def("min.insync.replicas", "1", Int, Some(1), "Replicas that must acknowledge an acks=all write."),
        "min.insync.replicas",
    ),
    (
        def(
            "compression.type",
            "producer",
            Choice(&["producer"]),
            None,
            "Batches are stored as the producer compressed them.",
        ),
        "compression.type",
    ),
];

/// Kafka broker settings that have no meaning in Skein's design. A Kafka
/// `server.properties` may carry them; they are accepted and logged as
/// ignored, with the reason, instead of refused.
pub const NOT_APPLICABLE: &[(&str, &str)] = &[
    ("process.roles", "every Skein node is both broker and controller"),
    ("controller.quorum.voters", "the controller quorum is Skein's own Raft group"),
    ("controller.quorum.bootstrap.servers", "the controller quorum is Skein's own Raft group"),
    ("controller.listener.names", "controllers share Skein's node-to-node transport"),
    ("listener.security.protocol.map", "only PLAINTEXT listeners exist for now"),
    ("inter.broker.listener.name", "replication uses Skein's own transport"),
    ("num.network.threads", "Skein runs on one async runtime"),
    ("num.io.threads", "Skein runs on one async runtime"),
    ("socket.send.buffer.bytes", "the OS default is used"),
    ("socket.receive.buffer.bytes", "the OS default is used"),
    ("num.recovery.threads.per.data.dir", "recovery is RocksDB's WAL replay"),
    ("log.segment.bytes", "logs are not stored as segment files"),
    ("log.retention.check.interval.ms", "retention is not enforced yet"),
    ("offsets.topic.replication.factor", "coordinator shards are replicated like every partition"),
    ("transaction.state.log.replication.factor", "transactions are not implemented yet"),
    ("transaction.state.log.min.isr", "transactions are not implemented yet"),
    ("log.flush.interval.messages", "see skein.fsync"),
    ("log.flush.interval.ms", "see skein.fsync"),
];

pub fn broker_def(name: &str) -> Option<&'static ConfigDef> {
    BROKER_CONFIGS.iter().find(|d| d.name == name)
}

pub fn topic_def(name: &str) -> Option<&'static (ConfigDef, &'static str)> {
    TOPIC_CONFIGS.iter().find(|(d, _)| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_valid_and_names_are_unique() {
        for def in BROKER_CONFIGS.iter().chain(TOPIC_CONFIGS.iter().map(|(d, _)| d)) {
            def.validate(def.default).unwrap_or_else(|e| panic!("{}: {e}", def.name));
        }
        for (topic, broker) in TOPIC_CONFIGS {
            let broker = broker_def(broker).expect("topic config has a broker synonym");
            assert_eq!(topic.default, broker.default, "{} and {} agree", topic.name, broker.name);
        }
        let mut names: Vec<_> = BROKER_CONFIGS.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BROKER_CONFIGS.len());
    }

    #[test]
    fn validation_explains_the_problem() {
        let def = broker_def("num.partitions").expect("exists");
        assert_eq!(def.validate("0"), Err("must be at least 1".to_owned()));
        assert_eq!(def.validate("x"), Err("expected a 32-bit integer".to_owned()));
        assert!(topic_def("cleanup.policy").expect("exists").0.validate("compact").is_err());
    }
}
