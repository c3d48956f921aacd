//! A raw Kafka wire client for tests that must send exactly the bytes they
//! choose: malformed frames, unknown versions, hand-built record batches.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

pub struct WireClient {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl WireClient {
    pub fn connect(port: u16) -> std::io::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Self { stream, next_correlation_id: 1 })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one response frame; `Ok(None)` when the broker closed the connection.
    pub fn read_frame(&mut self) -> std::io::Result<Option<Bytes>> {
        let mut length = [0u8; 4];
        match self.stream.read_exact(&mut length) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut body = vec![0u8; i32::from_be_bytes(length) as usize];
        self.stream.read_exact(&mut body)?;
        Ok(Some(Bytes::from(body)))
    }

    /// True if the broker closed the connection (reads EOF).
    pub fn is_closed_by_peer(&mut self) -> bool {
        matches!(self.read_frame(), Ok(None))
    }

    /// Encodes a request frame (length prefix included).
    pub fn encode(&mut self, api_key: ApiKey, version: i16, body: &RequestKind) -> BytesMut {
        let mut header = RequestHeader::default();
        header.request_api_key = api_key as i16;
        header.request_api_version = version;
        header.correlation_id = self.next_correlation_id;
        header.client_id = Some(StrBytes::from_static_str("skein-wire-test"));
        self.next_correlation_id += 1;
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, api_key.request_header_version(version)).expect("header encodes");
        body.encode(&mut buf, version).expect("body encodes");
        let length = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&length.to_be_bytes());
        buf
    }

    /// Sends a request and decodes the response at the same version.
    pub fn call(&mut self, api_key: ApiKey, version: i16, body: &RequestKind) -> anyhow::Result<ResponseKind> {
        let frame = self.encode(api_key, version, body);
        self.send_raw(&frame)?;
        let mut response = self.read_frame()?.ok_or_else(|| anyhow::anyhow!("connection closed"))?;
        let header_version = api_key.response_header_version(version);
        let header = ResponseHeader::decode(&mut response, header_version)?;
        anyhow::ensure!(header.correlation_id == self.next_correlation_id - 1, "correlation id mismatch");
        ResponseKind::decode(api_key, &mut response, version)
    }
}

/// Reads the correlation id and error code of an ApiVersions v0 response body.
pub fn api_versions_v0_error(mut frame: Bytes) -> (i32, i16) {
    let correlation_id = frame.get_i32();
    (correlation_id, frame.get_i16())
}
