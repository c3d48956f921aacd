//! Request decoding: the fixed prefix (API key, version, correlation id), the
//! version check against [`crate::versions`], then header and body through
//! `kafka-protocol`. Decoding works on `Bytes`, so record sets inside a
//! Produce request come out as zero-copy slices of the frame.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

use crate::versions::{Api, VersionSupport};

/// The first eight bytes of every request, readable even when the rest is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

impl RequestPrefix {
    pub fn parse(frame: &[u8]) -> Option<Self> {
        let bytes = frame.get(..8)?;
        Some(Self {
            api_key: i16::from_be_bytes([bytes[0], bytes[1]]),
            api_version: i16::from_be_bytes([bytes[2], bytes[3]]),
            correlation_id: i32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        })
    }
}

/// A fully decoded request.
#[derive(Debug)]
pub struct Request {
    pub api: Api,
    pub version: i16,
    pub header: RequestHeader,
    pub body: RequestKind,
}

/// Why a request could not be decoded. Only `UnsupportedVersion` for
/// ApiVersions gets an answer (KIP-511); Kafka closes the connection for the
/// others, and so do we.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("request of {length} bytes is shorter than the 8-byte request prefix")]
    TooShort { length: usize },
    #[error("unknown or unsupported API key {}", prefix.api_key)]
    UnknownApiKey { prefix: RequestPrefix },
    #[error("{} v{} is not supported (accepted {}..={})", support.api.name(), prefix.api_version, support.accepted_min, support.max)]
    UnsupportedVersion { prefix: RequestPrefix, support: &'static VersionSupport },
    #[error("malformed {} v{} request: {reason}", api.name(), prefix.api_version)]
    Malformed { prefix: RequestPrefix, api: Api, reason: String },
}

impl DecodeError {
    pub fn prefix(&self) -> Option<RequestPrefix> {
        match self {
            DecodeError::TooShort { .. } => None,
            DecodeError::UnknownApiKey { prefix }
            | DecodeError::UnsupportedVersion { prefix, .. }
            | DecodeError::Malformed { prefix, .. } => Some(*prefix),
        }
    }
}

/// Decodes one request frame (without its length prefix).
pub fn decode_request(mut frame: Bytes) -> Result<Request, DecodeError> {
    let prefix = RequestPrefix::parse(&frame).ok_or(DecodeError::TooShort { length: frame.len() })?;
    let support = Api::support_for_key(prefix.api_key).ok_or(DecodeError::UnknownApiKey { prefix })?;
    if !support.accepts(prefix.api_version) {
        return Err(DecodeError::UnsupportedVersion { prefix, support });
    }
    let malformed = |reason: String| DecodeError::Malformed { prefix, api: support.api, reason };
    let api_key: ApiKey = support.key;
    let header_version = api_key.request_header_version(prefix.api_version);
    let header = RequestHeader::decode(&mut frame, header_version).map_err(|e| malformed(e.to_string()))?;
    let body = RequestKind::decode(api_key, &mut frame, prefix.api_version).map_err(|e| malformed(e.to_string()))?;
    Ok(Request { api: support.api, version: prefix.api_version, header, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::ApiVersionsRequest;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn encode_request(api_key: ApiKey, version: i16, body: &RequestKind) -> Bytes {
        let mut header = RequestHeader::default();
        header.request_api_key = api_key as i16;
        header.request_api_version = version;
        header.correlation_id = 42;
        header.client_id = Some(StrBytes::from_static_str("test"));
        let mut buf = BytesMut::new();
        header.encode(&mut buf, api_key.request_header_version(version)).expect("header");
        body.encode(&mut buf, version).expect("body");
        buf.freeze()
    }

    #[test]
    fn decodes_api_versions_at_every_supported_version() {
        for version in 0..=4 {
            let mut request = ApiVersionsRequest::default();
            if version >= 3 {
                request.client_software_name = StrBytes::from_static_str("skein-test");
                request.client_software_version = StrBytes::from_static_str("1");
            }
            let frame = encode_request(ApiKey::ApiVersions, version, &RequestKind::ApiVersions(request));
            let decoded = decode_request(frame).expect("decodes");
            assert_eq!(decoded.api, Api::ApiVersions);
            assert_eq!(decoded.header.correlation_id, 42);
            assert_eq!(decoded.version, version);
        }
    }

    #[test]
    fn refuses_short_unknown_and_unsupported_requests() {
        assert!(matches!(decode_request(Bytes::from_static(&[0, 18])), Err(DecodeError::TooShort { length: 2 })));
        let mut unknown = BytesMut::new();
        unknown.put_i16(999);
        unknown.put_i16(0);
        unknown.put_i32(7);
        assert!(matches!(decode_request(unknown.freeze()), Err(DecodeError::UnknownApiKey { .. })));
        let mut produce_v2 = BytesMut::new();
        produce_v2.put_i16(0);
        produce_v2.put_i16(2);
        produce_v2.put_i32(7);
        let err = decode_request(produce_v2.freeze()).expect_err("v2 refused");
        assert!(matches!(err, DecodeError::UnsupportedVersion { .. }), "{err}");
        assert_eq!(err.prefix().map(|p| p.correlation_id), Some(7));
    }

    #[test]
    fn truncated_body_is_malformed_not_a_panic() {
        let frame = encode_request(ApiKey::ApiVersions, 3, &RequestKind::ApiVersions(ApiVersionsRequest::default()));
        for cut in 8..frame.len() {
            let _ = decode_request(frame.slice(..cut));
        }
    }
}
