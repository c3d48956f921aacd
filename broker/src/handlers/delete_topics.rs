//! DeleteTopics (key 20): by name (v0-5) or by name or topic id (v6+).
//! Deleting removes the topic's data in the same atomic metadata change.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use uuid::Uuid;

use super::{str_bytes, Context};

pub(super) async fn handle(ctx: &Context, request: DeleteTopicsRequest, version: i16) -> DeleteTopicsResponse {
    let wanted: Vec<(Option<TopicName>, Uuid)> = if version >= 6 {
        request.topics.into_iter().map(|t| (t.name, t.topic_id)).collect()
    } else {
        request.topic_names.into_iter().map(|name| (Some(name), Uuid::nil())).collect()
    };
    let mut response = DeleteTopicsResponse::default();
    for (name, id) in wanted {
        let mut result = DeletableTopicResult::default();
        let topic = match &name {
            Some(name) => ctx.cluster.topic(name),
            None => ctx.cluster.topic_by_id(id),
        };
        result.name = name.clone();
        if version >= 6 {
            result.topic_id = id;
        }
        match topic {
            None => {
                let code =
                    if name.is_some() { ResponseError::UnknownTopicOrPartition } else { ResponseError::UnknownTopicId };
                result.error_code = code.code();
                if version >= 5 {
                    result.error_message = Some(str_bytes("This server does not host this topic."));
                }
            }
            Some(topic) => {
                if version >= 6 {
                    result.name = Some(TopicName(str_bytes(topic.name.to_string())));
                    result.topic_id = topic.id;
                }
                match ctx.cluster.delete_topic(&topic).await {
                    Ok(()) => {
                        ctx.metrics.forget_topic(&topic.name, topic.partitions.len());
                        ctx.groups.forget_topic(&topic.name);
                    }
                    Err(error) => {
                        result.error_code = error.code.code();
                        if version >= 5 {
                            result.error_message = Some(str_bytes(error.message));
                        }
                    }
                }
            }
        }
        response.responses.push(result);
    }
    response
}
