//! SPDY/3.1 framing, as much as a port-forward client needs: it opens
//! streams, sends data and pings, and reads replies, data, resets, pings and
//! go-aways. Flow control is not spoken: the kubelet's SPDY server
//! (spdystream) neither sends nor honours WINDOW_UPDATE, so none is sent and
//! any that arrives is skipped.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, FlushCompress};
use tokio_util::codec::Decoder;

use crate::forward::stream::FrameError;

pub(super) const VERSION: u16 = 3;
/// Every frame starts with 8 bytes: a control bit, version and type, or a
/// stream id; then flags and a 24-bit length.
pub(super) const HEADER_LEN: usize = 8;
/// The 24-bit length field's limit.
pub(super) const MAX_PAYLOAD: usize = (1 << 24) - 1;
pub(super) const FLAG_FIN: u8 = 0x01;
/// RST_STREAM status: the stream is no longer needed.
pub(super) const CANCEL: u32 = 5;

const CONTROL_BIT: u32 = 0x8000_0000;
const STREAM_ID_MASK: u32 = 0x7fff_ffff;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
/// Control frames carry little: a larger one is a broken peer, not data.
const MAX_CONTROL_PAYLOAD: usize = 64 * 1024;

/// A frame from the server, reduced to what the client acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Frame {
    Data {
        stream: u32,
        fin: bool,
        payload: Bytes,
    },
    /// The server accepted a stream. Its headers are not needed and are not
    /// decompressed.
    SynReply {
        stream: u32,
        fin: bool,
    },
    Reset {
        stream: u32,
        status: u32,
    },
    Ping {
        id: u32,
    },
    GoAway {
        status: u32,
    },
    /// SETTINGS, WINDOW_UPDATE, HEADERS and the like: nothing to act on.
    Ignored {
        kind: u16,
    },
}

/// Reads frames off the upgraded connection (with `FramedRead`).
#[derive(Debug, Default)]
pub(super) struct FrameDecoder;

impl Decoder for FrameDecoder {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, buffer: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if buffer.len() < HEADER_LEN {
            return Ok(None);
        }
        let first = u32::from_be_bytes(buffer[0..4].try_into().expect("4 bytes"));
        let flags = buffer[4];
        let length = u32::from_be_bytes([0, buffer[5], buffer[6], buffer[7]]) as usize;
        let control = first & CONTROL_BIT != 0;
        let kind = (first & 0xffff) as u16;
        if control && length > MAX_CONTROL_PAYLOAD {
            return Err(FrameError::Malformed { kind, length });
        }
        if buffer.len() < HEADER_LEN + length {
            buffer.reserve(HEADER_LEN + length - buffer.len());
            return Ok(None);
        }
        buffer.advance(HEADER_LEN);
        let mut payload = buffer.split_to(length).freeze();
        let fin = flags & FLAG_FIN != 0;
        if !control {
            return Ok(Some(Frame::Data {
                stream: first & STREAM_ID_MASK,
                fin,
                payload,
            }));
        }
        let version = ((first >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        let malformed = FrameError::Malformed { kind, length };
        let frame = match kind {
            SYN_REPLY if length >= 4 => Frame::SynReply {
                stream: payload.get_u32() & STREAM_ID_MASK,
                fin,
            },
            RST_STREAM if length == 8 => Frame::Reset {
                stream: payload.get_u32() & STREAM_ID_MASK,
                status: payload.get_u32(),
            },
            PING if length == 4 => Frame::Ping {
                id: payload.get_u32(),
            },
            GOAWAY if length == 8 => {
                payload.advance(4);
                Frame::GoAway {
                    status: payload.get_u32(),
                }
            }
            SYN_REPLY | RST_STREAM | PING | GOAWAY => return Err(malformed),
            other => Frame::Ignored { kind: other },
        };
        Ok(Some(frame))
    }
}

/// Writes the 8-byte header of a data frame carrying `length` bytes.
pub(super) fn put_data_header(out: &mut [u8], stream: u32, flags: u8, length: usize) {
    debug_assert!(length <= MAX_PAYLOAD);
    out[0..4].copy_from_slice(&(stream & STREAM_ID_MASK).to_be_bytes());
    out[4..8].copy_from_slice(&(((flags as u32) << 24) | length as u32).to_be_bytes());
}

/// An empty data frame: with `FLAG_FIN`, our half of the stream is done.
pub(super) fn data(stream: u32, flags: u8) -> [u8; HEADER_LEN] {
    let mut frame = [0; HEADER_LEN];
    put_data_header(&mut frame, stream, flags, 0);
    frame
}

/// Abandons `stream`: the kubelet closes its side and forgets it.
pub(super) fn reset(stream: u32, status: u32) -> Bytes {
    let mut frame = BytesMut::with_capacity(HEADER_LEN + 8);
    put_control_header(&mut frame, RST_STREAM, 0, 8);
    frame.put_u32(stream & STREAM_ID_MASK);
    frame.put_u32(status);
    frame.freeze()
}

pub(super) fn ping(id: u32) -> Bytes {
    let mut frame = BytesMut::with_capacity(HEADER_LEN + 4);
    put_control_header(&mut frame, PING, 0, 4);
    frame.put_u32(id);
    frame.freeze()
}

/// The frame that opens `stream` with `headers` (names in lower case).
pub(super) fn syn_stream(
    stream: u32,
    headers: &[(&str, &str)],
    compressor: &mut HeaderCompressor,
) -> Bytes {
    let block = compressor.compress(headers);
    let mut frame = BytesMut::with_capacity(HEADER_LEN + 10 + block.len());
    put_control_header(&mut frame, SYN_STREAM, 0, 10 + block.len());
    frame.put_u32(stream & STREAM_ID_MASK);
    // Associated-to stream, then priority and slot: none of them used.
    frame.put_u32(0);
    frame.put_u16(0);
    frame.put_slice(&block);
    frame.freeze()
}

fn put_control_header(frame: &mut BytesMut, kind: u16, flags: u8, length: usize) {
    frame.put_u32(CONTROL_BIT | ((VERSION as u32) << 16) | kind as u32);
    frame.put_u32(((flags as u32) << 24) | length as u32);
}

/// One zlib stream per connection and direction, as SPDY requires (so one
/// per session, shared by all its streams, used in the order the frames
/// go out): each
/// header block is a sync-flushed piece of it. Blocks are compressed without
/// SPDY's preset dictionary, which zlib readers accept (the stream header
/// says no dictionary is needed); it costs a few bytes per stream.
pub(super) struct HeaderCompressor {
    zlib: Compress,
}

impl Default for HeaderCompressor {
    fn default() -> Self {
        HeaderCompressor {
            zlib: Compress::new(Compression::fast(), true),
        }
    }
}

impl HeaderCompressor {
    fn compress(&mut self, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut block = Vec::new();
        block.put_u32(headers.len() as u32);
        for (name, value) in headers {
            block.put_u32(name.len() as u32);
            block.put_slice(name.as_bytes());
            block.put_u32(value.len() as u32);
            block.put_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(block.len() + 64);
        let mut consumed = 0;
        // A sync flush ends only once the output has room to spare.
        loop {
            let before_in = self.zlib.total_in();
            out.reserve(64);
            self.zlib
                .compress_vec(&block[consumed..], &mut out, FlushCompress::Sync)
                .expect("zlib compression of an in-memory block");
            consumed += (self.zlib.total_in() - before_in) as usize;
            if consumed == block.len() && out.len() < out.capacity() {
                return out;
            }
        }
    }
}

/// Frames a kubelet sends, for tests that play its part.
#[cfg(test)]
pub(super) mod server {
    use super::*;

    pub(crate) fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = BytesMut::new();
        put_control_header(&mut frame, kind, flags, payload.len());
        frame.put_slice(payload);
        frame.to_vec()
    }

    /// A reply with an empty (never read) header block.
    pub(crate) fn syn_reply(stream: u32) -> Vec<u8> {
        control(SYN_REPLY, 0, &stream.to_be_bytes())
    }

    pub(crate) fn reset(stream: u32, status: u32) -> Vec<u8> {
        super::reset(stream, status).to_vec()
    }

    pub(crate) fn data(stream: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0; HEADER_LEN];
        put_data_header(&mut frame, stream, flags, payload.len());
        frame.extend_from_slice(payload);
        frame
    }

    /// A frame from the client, as the kubelet reads it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) enum ClientFrame {
        Syn {
            stream: u32,
            headers: Vec<(String, String)>,
        },
        Data {
            stream: u32,
            fin: bool,
            payload: Vec<u8>,
        },
        Reset {
            stream: u32,
            status: u32,
        },
        Ping {
            id: u32,
        },
        Other {
            kind: u16,
        },
    }

    /// Reads the client's frames; header blocks are one zlib stream per
    /// session and direction, so one decoder inflates them all.
    pub(crate) struct ClientDecoder {
        inflate: flate2::Decompress,
    }

    impl Default for ClientDecoder {
        fn default() -> Self {
            ClientDecoder {
                inflate: flate2::Decompress::new(true),
            }
        }
    }

    impl Decoder for ClientDecoder {
        type Item = ClientFrame;
        type Error = FrameError;

        fn decode(&mut self, buffer: &mut BytesMut) -> Result<Option<ClientFrame>, FrameError> {
            if buffer.len() < HEADER_LEN {
                return Ok(None);
            }
            let first = u32::from_be_bytes(buffer[0..4].try_into().expect("4 bytes"));
            let fin = buffer[4] & FLAG_FIN != 0;
            let length = u32::from_be_bytes([0, buffer[5], buffer[6], buffer[7]]) as usize;
            if buffer.len() < HEADER_LEN + length {
                return Ok(None);
            }
            buffer.advance(HEADER_LEN);
            let mut payload = buffer.split_to(length);
            if first & CONTROL_BIT == 0 {
                return Ok(Some(ClientFrame::Data {
                    stream: first & STREAM_ID_MASK,
                    fin,
                    payload: payload.to_vec(),
                }));
            }
            Ok(Some(match (first & 0xffff) as u16 {
                SYN_STREAM => {
                    let stream = payload.get_u32() & STREAM_ID_MASK;
                    payload.advance(6);
                    let mut block = Vec::with_capacity(4096);
                    self.inflate
                        .decompress_vec(&payload, &mut block, flate2::FlushDecompress::Sync)
                        .expect("a header block that inflates");
                    let mut block = Bytes::from(block);
                    fn text(block: &mut Bytes) -> String {
                        let len = block.get_u32() as usize;
                        String::from_utf8(block.split_to(len).to_vec()).expect("UTF-8")
                    }
                    let headers = (0..block.get_u32())
                        .map(|_| (text(&mut block), text(&mut block)))
                        .collect();
                    ClientFrame::Syn { stream, headers }
                }
                RST_STREAM => ClientFrame::Reset {
                    stream: payload.get_u32() & STREAM_ID_MASK,
                    status: payload.get_u32(),
                },
                PING => ClientFrame::Ping {
                    id: payload.get_u32(),
                },
                kind => ClientFrame::Other { kind },
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::server::control;
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    fn decode_all(bytes: &[u8]) -> Vec<Frame> {
        let mut buffer = BytesMut::from(bytes);
        let mut frames = Vec::new();
        while let Some(frame) = FrameDecoder.decode(&mut buffer).unwrap() {
            frames.push(frame);
        }
        assert!(buffer.is_empty(), "{} bytes left over", buffer.len());
        frames
    }

    #[test]
    fn data_frames_round_trip() {
        let mut frame = vec![0; HEADER_LEN];
        put_data_header(&mut frame, 3, FLAG_FIN, 5);
        frame.extend_from_slice(b"hello");
        assert_eq!(
            decode_all(&frame),
            [Frame::Data {
                stream: 3,
                fin: true,
                payload: Bytes::from_static(b"hello")
            }]
        );
        assert_eq!(
            decode_all(&data(1, 0)),
            [Frame::Data {
                stream: 1,
                fin: false,
                payload: Bytes::new()
            }]
        );
    }

    #[test]
    fn a_frame_split_across_reads_waits_for_the_rest() {
        let mut frame = vec![0; HEADER_LEN];
        put_data_header(&mut frame, 3, 0, 4);
        frame.extend_from_slice(b"abcd");
        let mut buffer = BytesMut::from(&frame[..6]);
        assert!(FrameDecoder.decode(&mut buffer).unwrap().is_none());
        buffer.extend_from_slice(&frame[6..10]);
        assert!(FrameDecoder.decode(&mut buffer).unwrap().is_none());
        buffer.extend_from_slice(&frame[10..]);
        assert!(matches!(
            FrameDecoder.decode(&mut buffer).unwrap(),
            Some(Frame::Data { stream: 3, .. })
        ));
    }

    #[test]
    fn control_frames_are_read() {
        let mut bytes = control(SYN_REPLY, FLAG_FIN, &[0, 0, 0, 3, 0x78, 0x01]);
        bytes.extend(control(RST_STREAM, 0, &[0, 0, 0, 1, 0, 0, 0, 5]));
        bytes.extend(ping(7));
        bytes.extend(control(GOAWAY, 0, &[0, 0, 0, 3, 0, 0, 0, 2]));
        bytes.extend(control(9, 0, &[0, 0, 0, 3, 0, 1, 0, 0]));
        assert_eq!(
            decode_all(&bytes),
            [
                Frame::SynReply {
                    stream: 3,
                    fin: true
                },
                Frame::Reset {
                    stream: 1,
                    status: 5
                },
                Frame::Ping { id: 7 },
                Frame::GoAway { status: 2 },
                Frame::Ignored { kind: 9 },
            ]
        );
    }

    #[test]
    fn broken_frames_are_errors() {
        let mut other_version = control(PING, 0, &[0, 0, 0, 1]);
        other_version[1] = 2;
        let err = FrameDecoder
            .decode(&mut BytesMut::from(&other_version[..]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the server speaks SPDY version 2, expected 3"
        );
        let short_reset = control(RST_STREAM, 0, &[0, 0, 0, 1]);
        assert!(
            FrameDecoder
                .decode(&mut BytesMut::from(&short_reset[..]))
                .is_err()
        );
        let mut huge = BytesMut::new();
        put_control_header(&mut huge, 4, 0, MAX_CONTROL_PAYLOAD + 1);
        assert!(FrameDecoder.decode(&mut huge).is_err());
    }

    /// What a zlib reader makes of our SYN_STREAM frames: the fields, and one
    /// zlib stream across them, as the server decompresses it.
    #[test]
    fn syn_stream_headers_decompress_as_one_zlib_stream() {
        let mut compressor = HeaderCompressor::default();
        let first = syn_stream(
            1,
            &[("streamtype", "error"), ("port", "6379")],
            &mut compressor,
        );
        let second = syn_stream(
            3,
            &[("streamtype", "data"), ("port", "6379")],
            &mut compressor,
        );
        let mut inflate = Decompress::new(true);
        for (frame, stream, streamtype) in [(&first, 1, "error"), (&second, 3, "data")] {
            assert_eq!(&frame[0..4], &[0x80, 0x03, 0x00, 0x01]);
            let length = u32::from_be_bytes([0, frame[5], frame[6], frame[7]]) as usize;
            assert_eq!(length, frame.len() - HEADER_LEN);
            assert_eq!(&frame[8..12], &(stream as u32).to_be_bytes());
            let mut block = Vec::with_capacity(4096);
            inflate
                .decompress_vec(&frame[18..], &mut block, FlushDecompress::Sync)
                .unwrap();
            let mut expected = Vec::new();
            expected.put_u32(2);
            for (name, value) in [("streamtype", streamtype), ("port", "6379")] {
                expected.put_u32(name.len() as u32);
                expected.put_slice(name.as_bytes());
                expected.put_u32(value.len() as u32);
                expected.put_slice(value.as_bytes());
            }
            assert_eq!(block, expected);
        }
    }
}
