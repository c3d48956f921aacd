//! Splitting a byte stream into Kafka frames: a 4-byte big-endian length
//! followed by that many bytes. The cap is checked before any byte of the body
//! is buffered, so a bogus length prefix can never make us allocate.

use bytes::{Buf, BytesMut};

/// Why a frame was refused. Either way the connection must be closed: after a
/// bad length prefix the stream has no trustworthy frame boundary left.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame length {length} is negative")]
    NegativeLength { length: i32 },
    #[error("frame length {length} exceeds the limit of {limit} bytes")]
    TooLarge { length: usize, limit: usize },
}

/// Reads the announced length of the next frame, if 4 bytes are buffered,
/// and checks it against `max_frame_bytes`.
pub fn peek_frame_length(buf: &[u8], max_frame_bytes: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let length = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let length = usize::try_from(length).map_err(|_| FrameError::NegativeLength { length })?;
    if length > max_frame_bytes {
        return Err(FrameError::TooLarge { length, limit: max_frame_bytes });
    }
    Ok(Some(length))
}

/// Splits one complete frame body off the front of `buf`, or returns `None`
/// when more bytes are needed.
pub fn split_frame(buf: &mut BytesMut, max_frame_bytes: usize) -> Result<Option<BytesMut>, FrameError> {
    let Some(length) = peek_frame_length(buf, max_frame_bytes)? else {
        return Ok(None);
    };
    if buf.len() < 4 + length {
        // Reserve only what the (capped) frame needs, so reads land in one buffer.
        buf.reserve(4 + length - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(length)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_complete_frames_and_waits_for_partial_ones() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 2, b'x']);
        let first = split_frame(&mut buf, 100).expect("valid").expect("complete");
        assert_eq!(&first[..], b"abc");
        assert_eq!(split_frame(&mut buf, 100), Ok(None));
        buf.extend_from_slice(b"y");
        let second = split_frame(&mut buf, 100).expect("valid").expect("complete");
        assert_eq!(&second[..], b"xy");
        assert!(buf.is_empty());
    }

    #[test]
    fn refuses_oversized_and_negative_lengths_before_buffering() {
        let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff][..]);
        assert_eq!(split_frame(&mut buf, 1024), Err(FrameError::TooLarge { length: i32::MAX as usize, limit: 1024 }));
        assert!(buf.capacity() < 1024, "no allocation for a refused frame");
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xfe][..]);
        assert_eq!(split_frame(&mut buf, 1024), Err(FrameError::NegativeLength { length: -2 }));
    }

    #[test]
    fn zero_length_frame_is_a_frame() {
        let mut buf = BytesMut::from(&[0, 0, 0, 0][..]);
        let frame = split_frame(&mut buf, 10).expect("valid").expect("complete");
        assert!(frame.is_empty());
    }
}
