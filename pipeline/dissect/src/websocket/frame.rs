//! WebSocket frame headers (RFC 6455 §5.2) and masking.

pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xa;

/// Longest header: 2 bytes, a 64-bit length and a masking key.
pub const MAX_HEADER_LEN: usize = 14;
/// Longest payload of a control frame.
pub const MAX_CONTROL_PAYLOAD: u64 = 125;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub fin: bool,
    /// RSV1: the message is compressed (permessage-deflate, on its first frame).
    pub rsv1: bool,
    /// RSV2 or RSV3, which no extension Reef reads defines.
    pub rsv23: bool,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
    /// Bytes of the header itself.
    pub len: usize,
}

impl Header {
    pub fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    Header(Header),
    NeedMore,
    /// Not a frame: a reserved opcode or a length with its top bit set.
    Invalid,
}

/// Reads the frame header at the start of `b`.
pub fn header(b: &[u8]) -> Parsed {
    let [b0, b1, ..] = *b else {
        return Parsed::NeedMore;
    };
    let opcode = b0 & 0x0f;
    if !matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG) {
        return Parsed::Invalid;
    }
    let masked = b1 & 0x80 != 0;
    let (payload_len, mut len) = match b1 & 0x7f {
        126 => match b.get(2..4) {
            Some(x) => (u64::from(u16::from_be_bytes([x[0], x[1]])), 4),
            None => return Parsed::NeedMore,
        },
        127 => match b.get(2..10) {
            Some(x) => {
                let n = u64::from_be_bytes(x.try_into().unwrap_or_default());
                if n >> 63 != 0 {
                    return Parsed::Invalid;
                }
                (n, 10)
            }
            None => return Parsed::NeedMore,
        },
        n => (u64::from(n), 2),
    };
    let mask = if masked {
        let Some(k) = b.get(len..len + 4) else {
            return Parsed::NeedMore;
        };
        len += 4;
        Some([k[0], k[1], k[2], k[3]])
    } else {
        None
    };
    Parsed::Header(Header {
        fin: b0 & 0x80 != 0,
        rsv1: b0 & 0x40 != 0,
        rsv23: b0 & 0x30 != 0,
        opcode,
        mask,
        payload_len,
        len,
    })
}

/// Unmasks `data`, the payload bytes from position `pos` of the frame.
pub fn unmask(data: &mut [u8], key: [u8; 4], pos: u64) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[((pos + i as u64) & 3) as usize];
    }
}

/// The opcode's name, as `method` and `ws_opcode` show it.
pub fn opcode_name(op: u8) -> &'static str {
    match op {
        CONTINUATION => "continuation",
        TEXT => "text",
        BINARY => "binary",
        CLOSE => "close",
        PING => "ping",
        PONG => "pong",
        _ => "reserved",
    }
}
