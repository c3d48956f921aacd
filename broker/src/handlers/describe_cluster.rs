//! DescribeCluster (key 60): this node as the whole cluster, and controller.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};

use super::{str_bytes, Context};

/// Endpoint type 1 asks for brokers; 2 (controllers) is answered with the
/// same node, since every Skein node is also a controller.
pub(super) fn handle(ctx: &Context, request: DescribeClusterRequest, version: i16) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default();
    if version >= 1 && !matches!(request.endpoint_type, 1 | 2) {
        response.error_code = ResponseError::UnsupportedEndpointType.code();
        response.error_message = Some(str_bytes(format!("endpoint type {} is not supported", request.endpoint_type)));
        return response;
    }
    if version >= 1 {
        response.endpoint_type = request.endpoint_type;
    }
    response.cluster_id = str_bytes(ctx.cluster.cluster_id.clone());
    response.controller_id = ctx.config.node_id.into();
    let mut broker = DescribeClusterBroker::default();
    broker.broker_id = ctx.config.node_id.into();
    broker.host = str_bytes(ctx.config.advertised.host.clone());
    broker.port = i32::from(ctx.config.advertised.port);
    response.brokers = vec![broker];
    response.cluster_authorized_operations = i32::MIN;
    response
}
