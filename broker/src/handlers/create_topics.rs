//! CreateTopics (key 19): validates name, partition count, replication
//! factor (at most the number of brokers), manual assignments and configs
//! (unknown or invalid ones get INVALID_CONFIG), then creates the topic, or
//! only validates with `validate_only`. v5+ answers describe the configs.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::{str_bytes, Context};
use crate::cluster::{AdminError, Topic, TopicSpec};

pub(super) async fn handle(ctx: &Context, request: CreateTopicsRequest, version: i16) -> CreateTopicsResponse {
    let mut response = CreateTopicsResponse::default();
    let mut seen = std::collections::HashSet::new();
    for creatable in request.topics {
        let mut result = CreatableTopicResult::default();
        result.name = creatable.name.clone();
        result.num_partitions = -1;
        result.replication_factor = -1;
        let outcome = if seen.insert(creatable.name.to_string()) {
            create(ctx, creatable, request.validate_only).await
        } else {
            Err(AdminError {
                code: ResponseError::InvalidRequest,
                message: "Duplicate topic name in the request.".to_owned(),
            })
        };
        match outcome {
            Ok((partitions, replication, topic)) => {
                result.num_partitions = partitions;
                result.replication_factor = replication;
                if let Some(topic) = topic {
                    if version >= 7 {
                        result.topic_id = topic.id;
                    }
                    if version >= 5 {
                        result.configs = Some(describe_configs(ctx, &topic));
                    }
                }
            }
            Err(error) => {
                result.error_code = error.code.code();
                result.error_message = Some(str_bytes(error.message));
            }
        }
        response.topics.push(result);
    }
    response
}

async fn create(
    ctx: &Context,
    creatable: CreatableTopic,
    validate_only: bool,
) -> Result<(i32, i16, Option<std::sync::Arc<Topic>>), AdminError> {
    let invalid = |message: String| AdminError { code: ResponseError::InvalidReplicaAssignment, message };
    let mut num_partitions = creatable.num_partitions;
    let mut replication_factor = creatable.replication_factor;
    if !creatable.assignments.is_empty() {
        if num_partitions != -1 || replication_factor != -1 {
            return Err(AdminError {
                code: ResponseError::InvalidRequest,
                message: "Both numPartitions or replicationFactor and replicasAssignments were set.".to_owned(),
            });
        }
        for (expected, assignment) in creatable.assignments.iter().enumerate() {
            if assignment.partition_index != expected as i32 {
                return Err(invalid("Partitions must be assigned in order from 0.".to_owned()));
            }
            if let Some(bad) = assignment.broker_ids.iter().find(|b| b.0 != ctx.config.node_id) {
                return Err(invalid(format!("Unknown broker {} in the replica assignment.", bad.0)));
            }
        }
        num_partitions = creatable.assignments.len() as i32;
        replication_factor = creatable.assignments[0].broker_ids.len() as i16;
    }
    let mut configs = BTreeMap::new();
    for config in creatable.configs {
        let Some(value) = config.value else {
            return Err(AdminError {
                code: ResponseError::InvalidConfig,
                message: format!("Null value for configuration {}", config.name.as_str()),
            });
        };
        configs.insert(config.name.to_string(), value.to_string());
    }
    let spec = TopicSpec { name: creatable.name.to_string(), num_partitions, replication_factor, configs };
    let (partitions, replication) = ctx.cluster.validate_topic(&spec)?;
    if validate_only {
        return Ok((partitions, replication, None));
    }
    let topic = ctx.cluster.create_topic(spec).await?;
    Ok((partitions, replication, Some(topic)))
}

fn describe_configs(ctx: &Context, topic: &Topic) -> Vec<CreatableTopicConfigs> {
    topic
        .effective_configs(&ctx.config)
        .into_iter()
        .map(|(def, value)| {
            let mut config = CreatableTopicConfigs::default();
            config.name = str_bytes(def.name);
            config.value = Some(str_bytes(value.value));
            config.config_source = value.source.wire_code();
            config
        })
        .collect()
}
