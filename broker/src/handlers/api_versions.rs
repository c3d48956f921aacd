//! ApiVersions (key 18): the supported-version table, generated from
//! `skein_protocol::versions`. An unsupported ApiVersions version gets a v0
//! answer with UNSUPPORTED_VERSION and the full table (KIP-511), so the
//! client can retry with a version both sides know.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use skein_protocol::versions::advertised_api_versions;

pub(super) fn handle(_request: &ApiVersionsRequest, _version: i16) -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.api_keys = advertised_api_versions();
    response.finalized_features_epoch = -1;
    response
}

/// The answer to an ApiVersions request whose version we do not support.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.error_code = ResponseError::UnsupportedVersion.code();
    response.api_keys = advertised_api_versions();
    response
}
