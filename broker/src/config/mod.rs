//! Broker configuration: defaults, then a Kafka-style properties file
//! (`--config FILE`), then `SKEIN_*` environment variables, then command-line
//! flags, each overriding the previous. Names are Kafka's (`log.dirs`,
//! `num.partitions`, ...); `SKEIN_LOG_DIRS` and `--log.dirs` name the same
//! setting. Unknown names and invalid values stop the start with a message
//! that names the setting and its source.

pub mod definitions;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use definitions::{broker_def, BROKER_CONFIGS, NOT_APPLICABLE};

use crate::groups::mixed::MigrationPolicy;

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Environment,
    Flag,
}

/// Environment variables with the `SKEIN_` prefix that belong to the
/// project's tooling, not to the broker (the benchmarks' are `SKEIN_BENCH_*`).
const TOOLING_ENV: &[&str] = &["SKEIN_TOOLS_DIR", "SKEIN_WITH_KAFKA_BROKER", "SKEIN_BIN"];
const TOOLING_ENV_PREFIX: &str = "SKEIN_BENCH_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown setting `{name}` (from {origin}); run `skein --help` for the list")]
    Unknown { name: String, origin: String },
    #[error("invalid value `{value}` for `{name}` (from {origin}): {reason}")]
    Invalid { name: String, value: String, origin: String, reason: String },
    #[error("cannot read config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("{0}")]
    Usage(String),
}

/// A `host:port` the broker listens on or advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

/// The validated configuration, with typed views of what the broker uses.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    values: BTreeMap<&'static str, (String, Source)>,
    pub node_id: i32,
    pub listener: Endpoint,
    pub advertised: Endpoint,
    pub data_dir: PathBuf,
    pub num_partitions: i32,
    pub default_replication_factor: i32,
    pub auto_create_topics: bool,
    pub max_frame_bytes: usize,
    pub max_connections: usize,
    pub listen_backlog: u32,
    pub max_inflight_per_connection: usize,
    /// `queued.max.request.bytes`; `None` when unlimited (zero or negative).
    pub max_inflight_request_bytes: Option<usize>,
    pub fsync_interval: Option<Duration>,
    pub http_listener: Option<String>,
    pub shutdown_grace: Duration,
    pub json_logs: bool,
    pub groups: GroupConfig,
}

/// The consumer-group settings (Kafka's `group.*` and `offsets.*` names).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub shard_count: u32,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay_ms: i32,
    pub max_size: usize,
    pub offset_metadata_max_bytes: usize,
    pub consumer_session_timeout_ms: i32,
    pub consumer_heartbeat_interval_ms: i32,
    pub consumer_max_size: usize,
    pub consumer_migration_policy: MigrationPolicy,
    pub offsets_retention_ms: i64,
    pub offsets_retention_check_interval_ms: u64,
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    Run(Box<BrokerConfig>),
    Help(String),
    Version,
}

impl BrokerConfig {
    /// Builds the configuration from arguments (without the program name) and
    /// the process environment.
    pub fn from_sources(args: &[String], env: &[(String, String)]) -> Result<Command, ConfigError> {
        let mut values: BTreeMap<&'static str, (String, Source)> =
            BROKER_CONFIGS.iter().map(|d| (d.name, (d.default.to_owned(), Source::Default))).collect();
        let flags = parse_flags(args)?;
        if flags.iter().any(|(k, _)| k == "help") {
            return Ok(Command::Help(usage()));
        }
        if flags.iter().any(|(k, _)| k == "version") {
            return Ok(Command::Version);
        }
        if let Some((_, path)) = flags.iter().find(|(k, _)| k == "config") {
            for (name, value) in read_properties(path)? {
                set(&mut values, &name, value, Source::File, &format!("config file {path}"))?;
            }
        }
        for (key, value) in env {
            let Some(suffix) = key.strip_prefix("SKEIN_") else { continue };
            if TOOLING_ENV.contains(&key.as_str()) || key.starts_with(TOOLING_ENV_PREFIX) {
                continue;
            }
            let name = suffix.to_ascii_lowercase().replace('_', ".");
            set(&mut values, &name, value.clone(), Source::Environment, &format!("environment variable {key}"))?;
        }
        for (name, value) in flags.into_iter().filter(|(k, _)| k != "config") {
            let name = match name.as_str() {
                "data-dir" => "log.dirs".to_owned(),
                "fsync" => "skein.fsync".to_owned(),
                _ => name,
            };
            set(&mut values, &name, value, Source::Flag, &format!("flag --{name}"))?;
        }
        Ok(Command::Run(Box::new(Self::typed(values)?)))
    }

    fn typed(values: BTreeMap<&'static str, (String, Source)>) -> Result<Self, ConfigError> {
        let get = |name: &str| values.get(name).map(|(v, _)| v.as_str()).unwrap_or_default();
        let int = |name: &str| get(name).parse::<i64>().unwrap_or_default();
        let listener = parse_listener("listeners", get("listeners"))?;
        let advertised = match get("advertised.listeners") {
            "" => listener.clone(),
            other => parse_listener("advertised.listeners", other)?,
        };
        let fsync_interval =
            (get("skein.fsync") == "interval").then(|| Duration::from_millis(int("skein.fsync.interval.ms") as u64));
        let http_listener = Some(get("skein.http.listener").to_owned()).filter(|s| !s.is_empty());
        Ok(Self {
            node_id: int("node.id") as i32,
            data_dir: PathBuf::from(get("log.dirs")),
            num_partitions: int("num.partitions") as i32,
            default_replication_factor: int("default.replication.factor") as i32,
            auto_create_topics: get("auto.create.topics.enable") == "true",
            max_frame_bytes: int("socket.request.max.bytes") as usize,
            max_connections: int("max.connections") as usize,
            listen_backlog: u32::try_from(int("socket.listen.backlog.size")).unwrap_or(u32::MAX),
            max_inflight_per_connection: int("queued.max.requests") as usize,
            max_inflight_request_bytes: usize::try_from(int("queued.max.request.bytes")).ok().filter(|b| *b > 0),
            shutdown_grace: Duration::from_millis(int("skein.shutdown.grace.ms") as u64),
            json_logs: get("skein.log.format") == "json",
            groups: GroupConfig {
                shard_count: int("offsets.topic.num.partitions") as u32,
                min_session_timeout_ms: int("group.min.session.timeout.ms") as i32,
                max_session_timeout_ms: int("group.max.session.timeout.ms") as i32,
                initial_rebalance_delay_ms: int("group.initial.rebalance.delay.ms") as i32,
                max_size: int("group.max.size") as usize,
                offset_metadata_max_bytes: int("offset.metadata.max.bytes") as usize,
                consumer_session_timeout_ms: int("group.consumer.session.timeout.ms") as i32,
                consumer_heartbeat_interval_ms: int("group.consumer.heartbeat.interval.ms") as i32,
                consumer_max_size: int("group.consumer.max.size") as usize,
                // Validated against the same names by the definition's Choice.
                consumer_migration_policy: MigrationPolicy::parse(get("group.consumer.migration.policy"))
                    .unwrap_or(MigrationPolicy::Bidirectional),
                offsets_retention_ms: int("offsets.retention.minutes").saturating_mul(60_000),
                offsets_retention_check_interval_ms: int("offsets.retention.check.interval.ms") as u64,
            },
            fsync_interval,
            http_listener,
            listener,
            advertised,
            values,
        })
    }

    /// The value of a broker config and where it came from.
    pub fn value(&self, name: &str) -> Option<(&str, Source)> {
        self.values.get(name).map(|(v, s)| (v.as_str(), *s))
    }

    /// A configuration for tests: defaults with the given overrides.
    pub fn for_tests(overrides: &[(&str, &str)]) -> Self {
        let args: Vec<String> = overrides.iter().map(|(k, v)| format!("--{k}={v}")).collect();
        match Self::from_sources(&args, &[]) {
            Ok(Command::Run(config)) => *config,
            other => panic!("test config invalid: {other:?}"),
        }
    }
}

fn set(
    values: &mut BTreeMap<&'static str, (String, Source)>,
    name: &str,
    value: String,
    source: Source,
    origin: &str,
) -> Result<(), ConfigError> {
    if let Some((_, reason)) = NOT_APPLICABLE.iter().find(|(n, _)| *n == name) {
        tracing::info!(setting = name, origin, "ignoring a Kafka setting that does not apply to Skein: {reason}");
        return Ok(());
    }
    let (name, value) = match name {
        "log.retention.hours" => ("log.retention.ms", scale(&value, 3_600_000)),
        "log.retention.minutes" => ("log.retention.ms", scale(&value, 60_000)),
        other => (other, value),
    };
    let def =
        broker_def(name).ok_or_else(|| ConfigError::Unknown { name: name.to_owned(), origin: origin.to_owned() })?;
    def.validate(&value).map_err(|reason| ConfigError::Invalid {
        name: name.to_owned(),
        value: value.clone(),
        origin: origin.to_owned(),
        reason,
    })?;
    values.insert(def.name, (value, source));
    Ok(())
}

fn scale(value: &str, factor: i64) -> String {
    value.parse::<i64>().map(|v| v.saturating_mul(factor).to_string()).unwrap_or_else(|_| value.to_owned())
}

fn parse_listener(name: &str, value: &str) -> Result<Endpoint, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name: name.to_owned(),
        value: value.to_owned(),
        origin: "configuration".to_owned(),
        reason: reason.to_owned(),
    };
    if value.contains(',') {
        return Err(invalid("only one listener is supported for now"));
    }
    let address = value.strip_prefix("PLAINTEXT://").ok_or_else(|| invalid("expected PLAINTEXT://host:port"))?;
    let (host, port) = address.rsplit_once(':').ok_or_else(|| invalid("expected PLAINTEXT://host:port"))?;
    let port = port.parse::<u16>().map_err(|_| invalid("port must be 0..65535"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok(Endpoint { host: host.to_owned(), port })
}

/// `--name=value`, `--name value`, and the bare flags `--help`/`--version`.
fn parse_flags(args: &[String]) -> Result<Vec<(String, String)>, ConfigError> {
    let mut flags = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(ConfigError::Usage(format!("unexpected argument `{arg}`; settings are --name=value")));
        };
        if flag == "help" || flag == "version" {
            flags.push((flag.to_owned(), String::new()));
        } else if let Some((name, value)) = flag.split_once('=') {
            flags.push((name.to_owned(), value.to_owned()));
        } else {
            let value = iter.next().ok_or_else(|| ConfigError::Usage(format!("flag --{flag} needs a value")))?;
            flags.push((flag.to_owned(), value.clone()));
        }
    }
    Ok(flags)
}

/// Java properties subset: `key=value` or `key: value`, `#`/`!` comments.
fn read_properties(path: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::File { path: path.to_owned(), reason: e.to_string() })?;
    let mut pairs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split = line.find(['=', ':']).ok_or_else(|| ConfigError::File {
            path: path.to_owned(),
            reason: format!("line {} is not key=value: `{line}`", number + 1),
        })?;
        pairs.push((line[..split].trim().to_owned(), line[split + 1..].trim().to_owned()));
    }
    Ok(pairs)
}

fn usage() -> String {
    let mut text = String::from(
        "skein: a Kafka-compatible streaming log server\n\n\
         usage: skein [--config server.properties] [--<setting>=<value> ...]\n\
         every setting may also be given as SKEIN_<SETTING> (dots become underscores).\n\
         shortcuts: --data-dir = --log.dirs, --fsync = --skein.fsync\n\nsettings:\n",
    );
    for def in BROKER_CONFIGS {
        text.push_str(&format!("  {:<32} default `{}`: {}\n", def.name, def.default, def.doc));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str], env: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        match BrokerConfig::from_sources(&args, &env)? {
            Command::Run(config) => Ok(*config),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn defaults_start_a_local_single_node() {
        let config = load(&[], &[]).expect("defaults");
        assert_eq!(config.listener, Endpoint { host: "127.0.0.1".to_owned(), port: 9092 });
        assert_eq!(config.advertised, config.listener);
        assert_eq!(config.data_dir, PathBuf::from("./skein-data"));
        assert_eq!(config.fsync_interval, None);
        assert_eq!(config.value("num.partitions"), Some(("1", Source::Default)));
    }

    #[test]
    fn flags_override_environment_which_overrides_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("server.properties");
        std::fs::write(&file, "# comment\nnum.partitions=3\nlog.retention.hours=2\nprocess.roles=broker,controller\n")
            .expect("write");
        let file = file.to_string_lossy().to_string();
        let config = load(
            &["--config", &file, "--fsync=interval"],
            &[("SKEIN_NUM_PARTITIONS", "5"), ("SKEIN_TOOLS_DIR", "/x"), ("SKEIN_BENCH_MACHINE", "vm")],
        )
        .expect("valid");
        assert_eq!(config.num_partitions, 5);
        assert_eq!(config.value("num.partitions"), Some(("5", Source::Environment)));
        assert_eq!(config.value("log.retention.ms"), Some(("7200000", Source::File)));
        assert_eq!(config.fsync_interval, Some(Duration::from_millis(100)));
        let config = load(&["--num.partitions", "7"], &[("SKEIN_NUM_PARTITIONS", "5")]).expect("valid");
        assert_eq!(config.num_partitions, 7);
    }

    #[test]
    fn unknown_and_invalid_settings_are_refused_with_their_source() {
        let err = load(&["--num.partitons=3"], &[]).expect_err("typo refused");
        assert!(err.to_string().contains("num.partitons") && err.to_string().contains("flag"), "{err}");
        let err = load(&[], &[("SKEIN_AUTO_CREATE_TOPICS_ENABLE", "yes")]).expect_err("invalid");
        assert!(err.to_string().contains("SKEIN_AUTO_CREATE_TOPICS_ENABLE"), "{err}");
        assert!(load(&["--listeners=SSL://0.0.0.0:9093"], &[]).is_err());
        assert!(load(&["--fsync=sometimes"], &[]).is_err());
        assert!(load(&["stray"], &[]).is_err());
    }
}
