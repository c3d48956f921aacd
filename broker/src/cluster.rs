//! The cluster as this node sees it: the topics, their partitions, the
//! cluster id and producer-id allocation. Changes go through the replication
//! layer (the metadata group) before they become visible here.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use kafka_protocol::error::ResponseError;
use skein_replication::{Replicator, METADATA_GROUP};
use skein_storage::{LogId, StorageError, TopicRecord, WriteOp};
use uuid::Uuid;

use crate::groups::consumer::TopicImage;

use crate::config::definitions::{topic_def, ConfigDef, TOPIC_CONFIGS};
use crate::config::{BrokerConfig, Source};
use crate::partition::Partition;

const MAX_TOPIC_NAME_CHARS: usize = 249;
/// Producer ids are reserved in blocks so that a restart never reissues one.
const PRODUCER_ID_BLOCK: i64 = 1000;
const META_CLUSTER_ID: &str = "cluster.id";
const META_NEXT_LOG: &str = "next.log.id";
const META_PRODUCER_ID_LIMIT: &str = "producer.id.limit";
/// Partitions one CreateTopics may create, so one request cannot exhaust memory.
const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;

#[derive(Debug)]
pub struct Topic {
    pub name: Arc<str>,
    pub id: Uuid,
    pub partitions: Vec<Arc<Partition>>,
    /// Explicitly set topic configs; the rest default to broker settings.
    pub configs: BTreeMap<String, String>,
}

/// A topic config's effective value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfigValue {
    pub value: String,
    pub source: TopicConfigSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicConfigSource {
    Topic,
    Broker(Source),
}

impl TopicConfigSource {
    /// The DescribeConfigs/CreateTopics `config_source` code.
    pub fn wire_code(self) -> i8 {
        match self {
            TopicConfigSource::Topic => 1,
            TopicConfigSource::Broker(source) => broker_source_code(source),
        }
    }
}

/// STATIC_BROKER_CONFIG (4) when set at start, DEFAULT_CONFIG (5) otherwise.
pub fn broker_source_code(source: Source) -> i8 {
    if source == Source::Default {
        5
    } else {
        4
    }
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index).ok().and_then(|i| self.partitions.get(i))
    }

    pub fn config(&self, name: &str, broker: &BrokerConfig) -> Option<TopicConfigValue> {
        if let Some(value) = self.configs.get(name) {
            return Some(TopicConfigValue { value: value.clone(), source: TopicConfigSource::Topic });
        }
        let (_, broker_name) = topic_def(name)?;
        let (value, source) = broker.value(broker_name)?;
        Some(TopicConfigValue { value: value.to_owned(), source: TopicConfigSource::Broker(source) })
    }

    /// Every topic config with its effective value, in table order.
    pub fn effective_configs(&self, broker: &BrokerConfig) -> Vec<(&'static ConfigDef, TopicConfigValue)> {
        TOPIC_CONFIGS.iter().filter_map(|(def, _)| self.config(def.name, broker).map(|value| (def, value))).collect()
    }

    pub fn max_message_bytes(&self, broker: &BrokerConfig) -> usize {
        self.config("max.message.bytes", broker).and_then(|c| c.value.parse().ok()).unwrap_or(1_048_588)
    }

    pub fn uses_log_append_time(&self, broker: &BrokerConfig) -> bool {
        self.config("message.timestamp.type", broker).is_some_and(|c| c.value == "LogAppendTime")
    }
}

/// A topic to create, as CreateTopics or auto-creation asks for it.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    /// -1 means the broker default.
    pub num_partitions: i32,
    /// -1 means the broker default.
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

/// A refusal of an admin operation, with the Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError {
    pub code: ResponseError,
    pub message: String,
}

impl AdminError {
    fn new(code: ResponseError, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<StorageError> for AdminError {
    fn from(error: StorageError) -> Self {
        AdminError::new(ResponseError::KafkaStorageError, error.to_string())
    }
}

#[derive(Debug, Default)]
struct Topics {
    by_name: HashMap<Arc<str>, Arc<Topic>>,
    by_id: HashMap<Uuid, Arc<Topic>>,
}

#[derive(Debug)]
struct IdAllocation {
    next_log: LogId,
    next_producer_id: i64,
    producer_id_limit: i64,
}

pub struct Cluster {
    pub config: Arc<BrokerConfig>,
    pub replicator: Arc<Replicator>,
    pub cluster_id: String,
    topics: RwLock<Topics>,
    /// Serialises metadata changes (create, delete, id blocks).
    admin: tokio::sync::Mutex<IdAllocation>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("cluster_id", &self.cluster_id).finish_non_exhaustive()
    }
}

fn meta_i64(replicator: &Replicator, key: &str) -> Result<Option<i64>, StorageError> {
    Ok(replicator.store().meta(key)?.and_then(|v| String::from_utf8(v).ok()).and_then(|s| s.parse().ok()))
}

fn put_meta(key: &str, value: impl ToString) -> WriteOp {
    WriteOp::PutMeta { key: key.to_owned(), value: value.to_string().into_bytes() }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Cluster {
    /// Loads the cluster state from storage (creating the cluster id on first start).
    pub async fn open(config: Arc<BrokerConfig>, replicator: Arc<Replicator>) -> Result<Arc<Self>, StorageError> {
        let store = Arc::clone(replicator.store());
        let cluster_id = match store.meta(META_CLUSTER_ID)? {
            Some(id) => String::from_utf8_lossy(&id).into_owned(),
            None => {
                let id = base64_uuid(Uuid::new_v4());
                replicator
                    .propose(METADATA_GROUP, vec![put_meta(META_CLUSTER_ID, &id)])
                    .await
                    .map_err(|e| StorageError::Io(e.to_string()))?;
                id
            }
        };
        let mut topics = Topics::default();
        let records = store.topics()?;
        // Opening a group applies whatever its log holds beyond the store,
        // so each partition then resumes from complete state.
        let logs: Vec<LogId> = records.iter().flat_map(|r| r.logs.iter().copied()).collect();
        replicator.open_groups(&logs).await.map_err(|e| StorageError::Io(e.to_string()))?;
        let max_log = logs.iter().map(|log| log + 1).max().unwrap_or(0);
        for record in records {
            let name: Arc<str> = Arc::from(record.name.as_str());
            let mut partitions = Vec::with_capacity(record.logs.len());
            for (index, log) in record.logs.iter().enumerate() {
                partitions.push(Arc::new(Partition::open(Arc::clone(&name), index as i32, *log, &*store)?));
            }
            let topic = Arc::new(Topic { name, id: Uuid::from_bytes(record.id), partitions, configs: record.configs });
            topics.by_id.insert(topic.id, Arc::clone(&topic));
            topics.by_name.insert(Arc::clone(&topic.name), topic);
        }
        let next_log = (meta_i64(&replicator, META_NEXT_LOG)?.unwrap_or(0) as LogId).max(max_log);
        // Ids below the persisted limit may have been handed out before a crash.
        let producer_id_limit = meta_i64(&replicator, META_PRODUCER_ID_LIMIT)?.unwrap_or(0);
        let ids = IdAllocation { next_log, next_producer_id: producer_id_limit, producer_id_limit };
        Ok(Arc::new(Self {
            config,
            replicator,
            cluster_id,
            topics: RwLock::new(topics),
            admin: tokio::sync::Mutex::new(ids),
        }))
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().unwrap_or_else(|p| p.into_inner()).by_name.get(name).cloned()
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics.read().unwrap_or_else(|p| p.into_inner()).by_id.get(&id).cloned()
    }

    /// All topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut topics: Vec<_> =
            self.topics.read().unwrap_or_else(|p| p.into_inner()).by_name.values().cloned().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    /// Topic names with their ids and partition counts, as consumer groups use them.
    pub fn topic_image(&self) -> TopicImage {
        let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
        let by_name =
            topics.by_name.values().map(|t| (t.name.to_string(), (t.id, t.partitions.len() as i32))).collect();
        TopicImage { by_name }
    }

    /// Checks a topic creation without performing it; returns the resolved
    /// partition count and replication factor.
    pub fn validate_topic(&self, spec: &TopicSpec) -> Result<(i32, i16), AdminError> {
        validate_topic_name(&spec.name)?;
        if self.topic(&spec.name).is_some() {
            return Err(AdminError::new(
                ResponseError::TopicAlreadyExists,
                format!("Topic '{}' already exists.", spec.name),
            ));
        }
        let partitions = if spec.num_partitions == -1 { self.config.num_partitions } else { spec.num_partitions };
        if !(1..=MAX_PARTITIONS_PER_TOPIC).contains(&partitions) {
            return Err(AdminError::new(
                ResponseError::InvalidPartitions,
                format!("Number of partitions must be between 1 and {MAX_PARTITIONS_PER_TOPIC}, got {partitions}."),
            ));
        }
        let replication = if spec.replication_factor == -1 {
            self.config.default_replication_factor as i16
        } else {
            spec.replication_factor
        };
        let brokers = 1;
        if replication < 1 || i32::from(replication) > brokers {
            return Err(AdminError::new(
                ResponseError::InvalidReplicationFactor,
                format!("Replication factor: {replication} larger than available brokers: {brokers}."),
            ));
        }
        for (name, value) in &spec.configs {
            let (def, _) = topic_def(name).ok_or_else(|| {
                AdminError::new(ResponseError::InvalidConfig, format!("Unknown topic config name: {name}"))
            })?;
            def.validate(value).map_err(|reason| {
                AdminError::new(
                    ResponseError::InvalidConfig,
                    format!("Invalid value {value} for configuration {name}: {reason}"),
                )
            })?;
        }
        Ok((partitions, replication))
    }

    /// Creates a topic once the metadata change has committed.
    pub async fn create_topic(&self, spec: TopicSpec) -> Result<Arc<Topic>, AdminError> {
        let mut ids = self.admin.lock().await;
        let (partitions, _) = self.validate_topic(&spec)?;
        let first_log = ids.next_log;
        let logs: Vec<LogId> = (0..partitions as u32).map(|i| first_log + i).collect();
        let next_log = first_log + partitions as u32;
        let record = TopicRecord {
            name: spec.name.clone(),
            id: Uuid::new_v4().into_bytes(),
            logs: logs.clone(),
            configs: spec.configs,
            created_ms: now_ms(),
        };
        let ops = vec![WriteOp::PutTopic(record.clone()), put_meta(META_NEXT_LOG, next_log)];
        self.replicator
            .propose(METADATA_GROUP, ops)
            .await
            .map_err(|e| AdminError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        ids.next_log = next_log;
        self.replicator
            .open_groups(&logs)
            .await
            .map_err(|e| AdminError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        let name: Arc<str> = Arc::from(spec.name.as_str());
        let store = self.replicator.store();
        let partitions = logs
            .iter()
            .enumerate()
            .map(|(index, log)| Partition::open(Arc::clone(&name), index as i32, *log, &**store).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let topic = Arc::new(Topic { name, id: Uuid::from_bytes(record.id), partitions, configs: record.configs });
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        topics.by_id.insert(topic.id, Arc::clone(&topic));
        topics.by_name.insert(Arc::clone(&topic.name), Arc::clone(&topic));
        tracing::info!(topic = %topic.name, partitions = topic.partitions.len(), "created topic");
        Ok(topic)
    }

    /// Deletes a topic and its data.
    pub async fn delete_topic(&self, topic: &Arc<Topic>) -> Result<(), AdminError> {
        let _guard = self.admin.lock().await;
        if self.topic(&topic.name).is_none_or(|current| current.id != topic.id) {
            return Err(AdminError::new(
                ResponseError::UnknownTopicOrPartition,
                "This server does not host this topic.",
            ));
        }
        for partition in &topic.partitions {
            partition.mark_deleted();
            self.replicator.close_group(partition.log).await;
        }
        let logs = topic.partitions.iter().map(|p| p.log).collect();
        let op = WriteOp::DeleteTopic { name: topic.name.to_string(), logs };
        self.replicator
            .propose(METADATA_GROUP, vec![op])
            .await
            .map_err(|e| AdminError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        topics.by_name.remove(&topic.name);
        topics.by_id.remove(&topic.id);
        tracing::info!(topic = %topic.name, "deleted topic");
        Ok(())
    }

    /// A producer id never issued before, even across restarts.
    pub async fn allocate_producer_id(&self) -> Result<i64, AdminError> {
        let mut ids = self.admin.lock().await;
        if ids.next_producer_id >= ids.producer_id_limit {
            let limit = ids.next_producer_id + PRODUCER_ID_BLOCK;
            self.replicator
                .propose(METADATA_GROUP, vec![put_meta(META_PRODUCER_ID_LIMIT, limit)])
                .await
                .map_err(|e| AdminError::new(ResponseError::KafkaStorageError, e.to_string()))?;
            ids.producer_id_limit = limit;
        }
        let id = ids.next_producer_id;
        ids.next_producer_id += 1;
        Ok(id)
    }
}

/// Kafka's topic name rules: 1..=249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), AdminError> {
    let invalid = |why: &str| {
        AdminError::new(ResponseError::InvalidTopicException, format!("Invalid topic name '{name}': {why}"))
    };
    if name.is_empty() {
        return Err(invalid("the name is empty"));
    }
    if name == "." || name == ".." {
        return Err(invalid("'.' and '..' are not allowed"));
    }
    if name.chars().count() > MAX_TOPIC_NAME_CHARS {
        return Err(invalid("longer than 249 characters"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(invalid("only ASCII alphanumerics, '.', '_' and '-' are allowed"));
    }
    Ok(())
}

/// Kafka cluster ids are 22-character URL-safe base64 UUIDs.
fn base64_uuid(id: Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.into_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-y").is_ok());
        for bad in ["", ".", "..", "a b", "ümlaut", &"x".repeat(250)] {
            assert_eq!(
                validate_topic_name(bad).map_err(|e| e.code),
                Err(ResponseError::InvalidTopicException),
                "{bad}"
            );
        }
    }

    #[test]
    fn cluster_ids_look_like_kafkas() {
        let id = base64_uuid(Uuid::from_bytes([0xff; 16]));
        assert_eq!(id.len(), 22);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
