//! HTTP/2 frames (RFC 9113 §4, §6): the 9-byte header, payload layouts, and how
//! plausible some bytes are as a frame (for detection and re-synchronisation).

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE until a peer raises it.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;
/// The largest SETTINGS_MAX_FRAME_SIZE allowed.
pub const MAX_FRAME_LIMIT: u32 = (1 << 24) - 1;

pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const PRIORITY: u8 = 2;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const PUSH_PROMISE: u8 = 5;
pub const PING: u8 = 6;
pub const GOAWAY: u8 = 7;
pub const WINDOW_UPDATE: u8 = 8;
pub const CONTINUATION: u8 = 9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl FrameHeader {
    pub fn parse(b: &[u8]) -> Option<FrameHeader> {
        let b: &[u8; HEADER_LEN] = b.get(..HEADER_LEN)?.try_into().ok()?;
        Some(FrameHeader {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        })
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Whether a peer may send this at all: the stream-0 rules and fixed payload
    /// sizes of the known types (RFC 9113 §6). Unknown flags and types are allowed, as
    /// receivers must ignore them.
    pub fn sane(&self) -> bool {
        let s0 = self.stream == 0;
        match self.kind {
            DATA | HEADERS | CONTINUATION => !s0,
            PRIORITY => !s0 && self.len == 5,
            RST_STREAM => !s0 && self.len == 4,
            SETTINGS => s0 && self.len.is_multiple_of(6) && (!self.has(ACK) || self.len == 0),
            PUSH_PROMISE => !s0 && self.len >= 4,
            PING => s0 && self.len == 8,
            GOAWAY => s0 && self.len >= 8,
            WINDOW_UPDATE => self.len == 4,
            _ => true,
        }
    }

    /// Whether this looks like a frame a real peer sends, strictly: a known type with
    /// only its defined flags, a length within `max_len`, and not a CONTINUATION (no
    /// place to start reading: its header block began before). Used where the framing
    /// is not known.
    pub fn plausible(&self, raw_reserved_bit: bool, max_len: u32) -> bool {
        if raw_reserved_bit || self.len > max_len || !self.sane() {
            return false;
        }
        let f = self.flags;
        match self.kind {
            DATA => f & !(END_STREAM | PADDED) == 0,
            HEADERS => {
                f & !(END_STREAM | END_HEADERS | PADDED | PRIORITY_FLAG) == 0 && self.len > 0
            }
            PRIORITY | RST_STREAM | GOAWAY | WINDOW_UPDATE => f == 0,
            SETTINGS | PING => f & !ACK == 0,
            PUSH_PROMISE => f & !(END_HEADERS | PADDED) == 0,
            _ => false,
        }
    }
}

/// The reserved bit of the stream id, set only by broken or non-HTTP/2 bytes.
pub fn reserved_bit(b: &[u8]) -> bool {
    b.get(5).is_some_and(|x| x & 0x80 != 0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Padding or fixed fields longer than the payload.
    BadLength,
}

/// The header block fragment of a HEADERS frame, without padding and priority.
pub fn headers_fragment<'a>(h: &FrameHeader, p: &'a [u8]) -> Result<&'a [u8], FrameError> {
    let p = unpad(h, p)?;
    if h.has(PRIORITY_FLAG) {
        p.get(5..).ok_or(FrameError::BadLength)
    } else {
        Ok(p)
    }
}

/// The promised stream and header block fragment of a PUSH_PROMISE frame.
pub fn push_promise<'a>(h: &FrameHeader, p: &'a [u8]) -> Result<(u32, &'a [u8]), FrameError> {
    let p = unpad(h, p)?;
    let id = p.get(..4).ok_or(FrameError::BadLength)?;
    let id = u32::from_be_bytes([id[0], id[1], id[2], id[3]]) & 0x7fff_ffff;
    Ok((id, &p[4..]))
}

fn unpad<'a>(h: &FrameHeader, p: &'a [u8]) -> Result<&'a [u8], FrameError> {
    if !h.has(PADDED) {
        return Ok(p);
    }
    let (&pad, rest) = p.split_first().ok_or(FrameError::BadLength)?;
    let keep = rest
        .len()
        .checked_sub(usize::from(pad))
        .ok_or(FrameError::BadLength)?;
    Ok(&rest[..keep])
}

/// The (identifier, value) pairs of a SETTINGS payload.
pub fn settings(p: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    p.chunks_exact(6).map(|c| {
        (
            u16::from_be_bytes([c[0], c[1]]),
            u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
        )
    })
}

/// The error code of a RST_STREAM payload.
pub fn rst_stream(p: &[u8]) -> Option<u32> {
    let b = p.get(..4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Last stream id and error code of a GOAWAY payload.
pub fn goaway(p: &[u8]) -> Option<(u32, u32)> {
    let b = p.get(..8)?;
    Some((
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff,
        u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    ))
}

/// The name of an error code (RFC 9113 §7).
pub fn error_name(code: u32) -> String {
    let name = match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => return format!("error 0x{code:x}"),
    };
    name.to_string()
}

/// Longest chain of frames looked at to decide whether an offset is a frame boundary.
pub const MAX_CHAIN_BYTES: usize = 64 * 1024;

/// Whether a frame boundary is at `b[0]`, where the framing is not known: two plausible
/// frames in a row, or one that ends exactly where the bytes end (segments usually end
/// with a frame). `None` when more bytes are needed to tell.
pub fn chain(b: &[u8], max_len: u32) -> Option<bool> {
    let mut p = 0usize;
    for n in 0..2 {
        if n > 0 && p == b.len() {
            return Some(true);
        }
        let h = FrameHeader::parse(&b[p..])?;
        if !h.plausible(reserved_bit(&b[p..]), max_len) {
            return Some(false);
        }
        p += HEADER_LEN + h.len as usize;
        if p > b.len() {
            // A candidate that cannot be confirmed within the window is not taken.
            return if p > MAX_CHAIN_BYTES {
                Some(false)
            } else {
                None
            };
        }
    }
    Some(true)
}

/// The first frame boundary in `b` (see [`chain`]); `Err(i)` when none is known yet
/// and offsets from `i` on may still be one.
pub fn find_frame_start(b: &[u8], from: usize, max_len: u32) -> Result<usize, usize> {
    let mut i = from;
    while i + HEADER_LEN <= b.len() {
        match chain(&b[i..], max_len) {
            Some(true) => return Ok(i),
            Some(false) => i += 1,
            None => return Err(i),
        }
    }
    Err(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut v = len.to_be_bytes()[1..].to_vec();
        v.push(kind);
        v.push(flags);
        v.extend(stream.to_be_bytes());
        v.extend(payload);
        v
    }

    #[test]
    fn header_and_payload_layouts() {
        let f = frame(
            HEADERS,
            PADDED | PRIORITY_FLAG | END_HEADERS,
            3,
            &[2, 0, 0, 0, 1, 16, 0x82, 0x84, 0, 0],
        );
        let h = FrameHeader::parse(&f).unwrap();
        assert_eq!((h.len, h.kind, h.stream), (10, HEADERS, 3));
        assert_eq!(headers_fragment(&h, &f[9..]).unwrap(), &[0x82, 0x84]);
        let bad = FrameHeader { len: 1, ..h };
        assert_eq!(headers_fragment(&bad, &[5]), Err(FrameError::BadLength));

        let pp = frame(PUSH_PROMISE, END_HEADERS, 1, &[0, 0, 0, 2, 0x82]);
        let h = FrameHeader::parse(&pp).unwrap();
        assert_eq!(push_promise(&h, &pp[9..]).unwrap(), (2, &[0x82][..]));

        let s: Vec<_> = settings(&[0, 1, 0, 0, 0x10, 0, 0, 5, 0, 0, 0x40, 0]).collect();
        assert_eq!(s, [(1, 4096), (5, 16384)]);
        assert_eq!(rst_stream(&[0, 0, 0, 8]), Some(8));
        assert_eq!(goaway(&[0, 0, 0, 7, 0, 0, 0, 2]), Some((7, 2)));
        assert_eq!(error_name(8), "CANCEL");
        assert_eq!(error_name(0x99), "error 0x99");
    }

    #[test]
    fn frame_boundaries_are_found_after_garbage() {
        let mut b = b"garbage bytes here".to_vec();
        let start = b.len();
        b.extend(frame(SETTINGS, 0, 0, &[0, 1, 0, 0, 0x10, 0]));
        b.extend(frame(HEADERS, END_HEADERS, 1, &[0x82, 0x84]));
        assert_eq!(find_frame_start(&b, 0, DEFAULT_MAX_FRAME), Ok(start));
        // A lone frame that ends the data counts; one running past it must wait.
        let one = frame(PING, 0, 0, &[0; 8]);
        assert_eq!(find_frame_start(&one, 0, DEFAULT_MAX_FRAME), Ok(0));
        assert_eq!(find_frame_start(&one[..12], 0, DEFAULT_MAX_FRAME), Err(0));
        // Wrong sizes, streams or flags are not frames.
        let no = |b: &[u8]| chain(b, DEFAULT_MAX_FRAME) == Some(false);
        assert!(no(&frame(PING, 0, 1, &[0; 8])));
        assert!(no(&frame(RST_STREAM, 0, 1, &[0; 5])));
        assert!(no(&frame(DATA, 0x40, 1, &[0; 5])));
        assert!(no(&frame(CONTINUATION, 4, 1, &[0; 5])));
        assert!(no(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        // Too long for the receiver's frame size.
        assert_eq!(
            chain(&frame(DATA, 0, 1, &[0; 100])[..20], DEFAULT_MAX_FRAME),
            None
        );
        assert_eq!(chain(&frame(DATA, 0, 1, &[0; 100]), 50), Some(false));
    }
}
