//! DescribeConfigs (key 32): every topic config (explicit or inherited from
//! the broker) and every broker config, under Kafka's names, with value,
//! source, default flag (v0 `is_default` is replaced by the source since v1),
//! synonyms (when asked) and, from v3, type and documentation.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{str_bytes, Context};
use crate::cluster::{broker_source_code, TopicConfigSource};
use crate::config::definitions::{ConfigDef, BROKER_CONFIGS};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const TOPIC_CONFIG_SOURCE: i8 = 1;

struct Options {
    synonyms: bool,
    documentation: bool,
    version: i16,
}

pub(super) fn handle(ctx: &Context, request: DescribeConfigsRequest, version: i16) -> DescribeConfigsResponse {
    let options = Options { synonyms: request.include_synonyms, documentation: request.include_documentation, version };
    let mut response = DescribeConfigsResponse::default();
    for resource in request.resources {
        let mut result = DescribeConfigsResult::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        let wanted = |name: &str| {
            resource.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
        };
        let configs = match resource.resource_type {
            TOPIC => topic_configs(ctx, resource.resource_name.as_str(), &options, &wanted),
            BROKER => broker_configs(ctx, resource.resource_name.as_str(), &options, &wanted),
            other => Err((ResponseError::InvalidRequest, format!("resource type {other} is not supported"))),
        };
        match configs {
            Ok(configs) => result.configs = configs,
            Err((code, message)) => {
                result.error_code = code.code();
                result.error_message = Some(str_bytes(message));
            }
        }
        response.results.push(result);
    }
    response
}

type Outcome = Result<Vec<DescribeConfigsResourceResult>, (ResponseError, String)>;

fn topic_configs(ctx: &Context, name: &str, options: &Options, wanted: &dyn Fn(&str) -> bool) -> Outcome {
    let topic = ctx
        .cluster
        .topic(name)
        .ok_or_else(|| (ResponseError::UnknownTopicOrPartition, format!("Topic '{name}' does not exist.")))?;
    let mut configs = Vec::new();
    for (def, value) in topic.effective_configs(&ctx.config) {
        if !wanted(def.name) {
            continue;
        }
        let mut entry = entry(def, &value.value, value.source.wire_code(), false, options);
        if options.synonyms {
            if value.source == TopicConfigSource::Topic {
                entry.synonyms.push(synonym(def.name, &value.value, TOPIC_CONFIG_SOURCE));
            }
            if let Some((_, broker_name)) = crate::config::definitions::topic_def(def.name) {
                if let Some((broker_value, source)) = ctx.config.value(broker_name) {
                    entry.synonyms.push(synonym(broker_name, broker_value, broker_source_code(source)));
                }
            }
        }
        configs.push(entry);
    }
    Ok(configs)
}

fn broker_configs(ctx: &Context, name: &str, options: &Options, wanted: &dyn Fn(&str) -> bool) -> Outcome {
    // An empty name describes the cluster-wide defaults, which are ours too.
    if !name.is_empty() && name.parse::<i32>().ok() != Some(ctx.config.node_id) {
        return Err((ResponseError::InvalidRequest, format!("Unknown broker id {name}.")));
    }
    let mut configs = Vec::new();
    for def in BROKER_CONFIGS {
        if !wanted(def.name) {
            continue;
        }
        let (value, source) = ctx.config.value(def.name).unwrap_or((def.default, crate::config::Source::Default));
        let mut entry = entry(def, value, broker_source_code(source), true, options);
        if options.synonyms {
            // As Kafka does: the effective value first, then the default beneath it.
            entry.synonyms.push(synonym(def.name, value, broker_source_code(source)));
            if source != crate::config::Source::Default {
                entry.synonyms.push(synonym(def.name, def.default, broker_source_code(crate::config::Source::Default)));
            }
        }
        configs.push(entry);
    }
    Ok(configs)
}

fn entry(
    def: &ConfigDef,
    value: &str,
    source: i8,
    read_only: bool,
    options: &Options,
) -> DescribeConfigsResourceResult {
    let mut entry = DescribeConfigsResourceResult::default();
    entry.name = str_bytes(def.name);
    entry.value = Some(str_bytes(value));
    entry.read_only = read_only;
    entry.config_source = source;
    if options.version >= 3 {
        entry.config_type = def.kind.wire_code();
        if options.documentation {
            entry.documentation = Some(StrBytes::from_static_str(def.doc));
        }
    }
    entry
}

fn synonym(name: &str, value: &str, source: i8) -> DescribeConfigsSynonym {
    let mut synonym = DescribeConfigsSynonym::default();
    synonym.name = str_bytes(name);
    synonym.value = Some(str_bytes(value));
    synonym.source = source;
    synonym
}
