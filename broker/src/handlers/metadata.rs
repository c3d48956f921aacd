//! Metadata (key 3): brokers, controller, cluster id and topics with their
//! partitions, leaders and topic ids. Unknown topics are auto-created when
//! `auto.create.topics.enable` and the request (v4+) both allow it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use uuid::Uuid;

use super::{str_bytes, Context};
use crate::cluster::{validate_topic_name, Topic, TopicSpec};

/// Bits of the ACL operations a topic allows (no authorizer: all of them):
/// READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8,
/// DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11.
const ALL_TOPIC_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

pub(super) async fn handle(ctx: &Context, request: MetadataRequest, version: i16) -> MetadataResponse {
    let operations =
        if request.include_topic_authorized_operations { ALL_TOPIC_OPERATIONS } else { OPERATIONS_NOT_REQUESTED };
    let topics = match request.topics {
        // v0 asks for all topics with an empty list; v1+ with null.
        None => all_topics(ctx, operations),
        Some(list) if list.is_empty() && version == 0 => all_topics(ctx, operations),
        Some(list) => {
            let allow_create = ctx.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
            let mut topics = Vec::with_capacity(list.len());
            for wanted in list {
                let response = match wanted.name {
                    Some(name) => topic_by_name(ctx, name, allow_create, operations).await,
                    None => topic_by_id(ctx, wanted.topic_id, operations),
                };
                topics.push(response);
            }
            topics
        }
    };
    let mut response = MetadataResponse::default();
    let mut broker = MetadataResponseBroker::default();
    broker.node_id = ctx.config.node_id.into();
    broker.host = str_bytes(ctx.config.advertised.host.clone());
    broker.port = i32::from(ctx.config.advertised.port);
    response.brokers = vec![broker];
    if version >= 2 {
        response.cluster_id = Some(str_bytes(ctx.cluster.cluster_id.clone()));
    }
    response.controller_id = ctx.config.node_id.into();
    response.topics = topics;
    if (8..=10).contains(&version) {
        response.cluster_authorized_operations = OPERATIONS_NOT_REQUESTED;
    }
    response
}

fn all_topics(ctx: &Context, operations: i32) -> Vec<MetadataResponseTopic> {
    ctx.cluster.topics().iter().map(|topic| describe(ctx, topic, operations)).collect()
}

async fn topic_by_name(ctx: &Context, name: TopicName, allow_create: bool, operations: i32) -> MetadataResponseTopic {
    if let Some(topic) = ctx.cluster.topic(&name) {
        return describe(ctx, &topic, operations);
    }
    let failed = |code: ResponseError| {
        let mut topic = MetadataResponseTopic::default();
        topic.error_code = code.code();
        topic.name = Some(name.clone());
        topic.topic_authorized_operations = operations;
        topic
    };
    if let Err(error) = validate_topic_name(&name) {
        return failed(error.code);
    }
    if !allow_create {
        return failed(ResponseError::UnknownTopicOrPartition);
    }
    let spec =
        TopicSpec { name: name.to_string(), num_partitions: -1, replication_factor: -1, configs: Default::default() };
    match ctx.cluster.create_topic(spec).await {
        Ok(topic) => describe(ctx, &topic, operations),
        // Another request created it first: describe what exists.
        Err(error) if error.code == ResponseError::TopicAlreadyExists => match ctx.cluster.topic(&name) {
            Some(topic) => describe(ctx, &topic, operations),
            None => failed(ResponseError::LeaderNotAvailable),
        },
        Err(error) => {
            tracing::warn!(topic = %name.0, message = %error.message, "auto-create failed");
            failed(error.code)
        }
    }
}

fn topic_by_id(ctx: &Context, id: Uuid, operations: i32) -> MetadataResponseTopic {
    match ctx.cluster.topic_by_id(id) {
        Some(topic) => describe(ctx, &topic, operations),
        None => {
            let mut topic = MetadataResponseTopic::default();
            topic.error_code = ResponseError::UnknownTopicId.code();
            topic.topic_id = id;
            topic.topic_authorized_operations = operations;
            topic
        }
    }
}

fn describe(ctx: &Context, topic: &Topic, operations: i32) -> MetadataResponseTopic {
    let node = ctx.config.node_id;
    let mut response = MetadataResponseTopic::default();
    response.name = Some(TopicName(str_bytes(topic.name.to_string())));
    response.topic_id = topic.id;
    response.topic_authorized_operations = operations;
    response.partitions = topic
        .partitions
        .iter()
        .map(|partition| {
            let mut p = MetadataResponsePartition::default();
            p.partition_index = partition.index;
            p.leader_id = node.into();
            p.leader_epoch = ctx.cluster.replicator.leader_epoch(partition.log);
            p.replica_nodes = vec![node.into()];
            p.isr_nodes = vec![node.into()];
            p
        })
        .collect();
    response
}
