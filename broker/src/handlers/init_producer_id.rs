//! InitProducerId (key 22) for idempotent producers: a fresh producer id
//! (never reused, even across restarts), or an epoch bump when a producer
//! presents its current id and epoch (KIP-360). Transactional ids are not
//! supported yet and are refused with a clear error.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};

use super::Context;

pub(super) async fn handle(ctx: &Context, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    response.producer_id = (-1).into();
    response.producer_epoch = -1;
    if request.transactional_id.is_some() {
        // No transaction coordinator yet: Kafka's answer when none is available.
        response.error_code = ResponseError::CoordinatorNotAvailable.code();
        return response;
    }
    let current_id = request.producer_id.0;
    let current_epoch = request.producer_epoch;
    if current_id >= 0 && (0..i16::MAX - 1).contains(&current_epoch) {
        response.producer_id = current_id.into();
        response.producer_epoch = current_epoch + 1;
        return response;
    }
    match ctx.cluster.allocate_producer_id().await {
        Ok(id) => {
            response.producer_id = id.into();
            response.producer_epoch = 0;
        }
        Err(error) => {
            tracing::warn!(message = %error.message, "cannot allocate a producer id");
            response.error_code = error.code.code();
        }
    }
    response
}
