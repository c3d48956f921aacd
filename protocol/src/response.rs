//! Response framing: length prefix, the response header in the version the
//! API and request version call for (ApiVersions is always header v0), then
//! the body encoded at the negotiated version.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

#[derive(Debug, thiserror::Error)]
#[error("cannot encode {api_key:?} v{version} response: {reason}")]
pub struct EncodeError {
    pub api_key: ApiKey,
    pub version: i16,
    pub reason: String,
}

/// Encodes a complete response frame, length prefix included.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<BytesMut, EncodeError> {
    let fail = |reason: String| EncodeError { api_key, version, reason };
    // A Fetch response (megabytes) is sized up front rather than grown,
    // and copied, a dozen times; the small ones are not worth measuring.
    let body_size = match body {
        ResponseKind::Fetch(fetch) => fetch.compute_size(version).map_err(|e| fail(e.to_string()))?,
        _ => 0,
    };
    let mut buf = BytesMut::with_capacity(body_size + 64);
    buf.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header.encode(&mut buf, api_key.response_header_version(version)).map_err(|e| fail(e.to_string()))?;
    body.encode(&mut buf, version).map_err(|e| fail(e.to_string()))?;
    let length = i32::try_from(buf.len() - 4).map_err(|_| fail("response larger than 2 GiB".to_owned()))?;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    Ok(buf)
}
