//! MongoDB wire protocol messages: the 16-byte header, OP_MSG sections, the legacy
//! OP_QUERY / OP_REPLY (and the older write opcodes), and OP_COMPRESSED with the
//! noop, snappy and zlib compressors.

use std::io::Read;

use super::bson::Doc;

pub const OP_REPLY: i32 = 1;
pub const OP_UPDATE: i32 = 2001;
pub const OP_INSERT: i32 = 2002;
pub const OP_QUERY: i32 = 2004;
pub const OP_GET_MORE: i32 = 2005;
pub const OP_DELETE: i32 = 2006;
pub const OP_KILL_CURSORS: i32 = 2007;
pub const OP_COMPRESSED: i32 = 2012;
pub const OP_MSG: i32 = 2013;

/// Largest message taken for one (the server's limit is 48 MB).
pub const MAX_MESSAGE_BYTES: i32 = 48_000_000;
/// Largest inflated size of a compressed message read.
pub const MAX_INFLATED_BYTES: usize = 16 * 1024 * 1024;

/// OP_MSG flag bits.
pub const CHECKSUM_PRESENT: u32 = 1;
pub const MORE_TO_COME: u32 = 1 << 1;
pub const EXHAUST_ALLOWED: u32 = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub length: i32,
    pub request_id: i32,
    pub response_to: i32,
    pub op: i32,
}

pub fn header(b: &[u8]) -> Option<Header> {
    let h = b.get(..16)?;
    let i = |k: usize| i32::from_le_bytes([h[k], h[k + 1], h[k + 2], h[k + 3]]);
    Some(Header {
        length: i(0),
        request_id: i(4),
        response_to: i(8),
        op: i(12),
    })
}

pub fn op_name(op: i32) -> Option<&'static str> {
    Some(match op {
        OP_REPLY => "OP_REPLY",
        OP_UPDATE => "OP_UPDATE",
        OP_INSERT => "OP_INSERT",
        OP_QUERY => "OP_QUERY",
        OP_GET_MORE => "OP_GET_MORE",
        OP_DELETE => "OP_DELETE",
        OP_KILL_CURSORS => "OP_KILL_CURSORS",
        OP_COMPRESSED => "OP_COMPRESSED",
        OP_MSG => "OP_MSG",
        _ => return None,
    })
}

/// An OP_MSG: its flags, body and document sequences.
#[derive(Debug)]
pub struct OpMsg<'a> {
    pub flags: u32,
    pub body: Option<Doc<'a>>,
    pub sequences: Vec<(&'a [u8], Vec<Doc<'a>>)>,
    /// Sections could not all be read (cut or malformed).
    pub broken: bool,
}

/// Document sequences and documents per sequence read, at most.
const MAX_SEQUENCES: usize = 16;
const MAX_SEQUENCE_DOCS: usize = 1024;

/// An OP_MSG body (after the header).
pub fn op_msg(b: &[u8]) -> OpMsg<'_> {
    let mut m = OpMsg {
        flags: 0,
        body: None,
        sequences: Vec::new(),
        broken: false,
    };
    let Some(f) = b.get(..4) else {
        m.broken = true;
        return m;
    };
    m.flags = u32::from_le_bytes([f[0], f[1], f[2], f[3]]);
    // The sections stop before the trailing CRC-32C, when there is one: nothing of a
    // section (a sequence's size included) is read from it.
    let end = if m.flags & CHECKSUM_PRESENT != 0 {
        b.len().saturating_sub(4).max(4)
    } else {
        b.len()
    };
    let b = &b[..end];
    let mut at = 4;
    while at < end {
        match b[at] {
            0 => {
                let Some((d, len)) = Doc::parse(&b[at + 1..]) else {
                    m.broken = true;
                    break;
                };
                if m.body.is_none() {
                    m.body = Some(d);
                }
                if d.cut {
                    m.broken = true;
                    break;
                }
                at += 1 + len;
            }
            1 => {
                let Some(s) = b.get(at + 1..at + 5) else {
                    m.broken = true;
                    break;
                };
                let size = i32::from_le_bytes([s[0], s[1], s[2], s[3]]);
                let Some(size) = usize::try_from(size).ok().filter(|n| *n >= 5) else {
                    m.broken = true;
                    break;
                };
                let sec_end = (at + 1 + size).min(end);
                let rest = &b[at + 5..sec_end];
                let Some(nul) = memchr::memchr(0, rest) else {
                    m.broken = true;
                    break;
                };
                let id = &rest[..nul];
                let mut docs = Vec::new();
                let mut p = nul + 1;
                while p < rest.len() && docs.len() < MAX_SEQUENCE_DOCS {
                    let Some((d, len)) = Doc::parse(&rest[p..]) else {
                        break;
                    };
                    docs.push(d);
                    if d.cut {
                        break;
                    }
                    p += len;
                }
                if m.sequences.len() < MAX_SEQUENCES {
                    m.sequences.push((id, docs));
                }
                if at + 1 + size > end {
                    m.broken = true;
                    break;
                }
                at += 1 + size;
            }
            _ => {
                m.broken = true;
                break;
            }
        }
    }
    m
}

/// An OP_QUERY: the namespace, and the query document.
pub struct OpQuery<'a> {
    pub namespace: &'a [u8],
    pub query: Option<Doc<'a>>,
}

pub fn op_query(b: &[u8]) -> Option<OpQuery<'_>> {
    let rest = b.get(4..)?;
    let nul = memchr::memchr(0, rest)?;
    let namespace = &rest[..nul];
    let q = rest.get(nul + 1 + 8..)?;
    Some(OpQuery {
        namespace,
        query: Doc::parse(q).map(|(d, _)| d),
    })
}

/// An OP_REPLY: flags, the number of documents, and the first document.
pub struct OpReply<'a> {
    pub flags: i32,
    pub returned: i32,
    pub first: Option<Doc<'a>>,
}

pub fn op_reply(b: &[u8]) -> Option<OpReply<'_>> {
    let h = b.get(..20)?;
    Some(OpReply {
        flags: i32::from_le_bytes([h[0], h[1], h[2], h[3]]),
        returned: i32::from_le_bytes([h[16], h[17], h[18], h[19]]),
        first: b.get(20..).and_then(Doc::parse).map(|(d, _)| d),
    })
}

/// The namespace a legacy write or getMore names (after a 4-byte zero or flags).
pub fn legacy_namespace(b: &[u8]) -> Option<&[u8]> {
    let rest = b.get(4..)?;
    let nul = memchr::memchr(0, rest)?;
    Some(&rest[..nul])
}

/// What an OP_COMPRESSED holds.
pub enum Inflated {
    /// The original opcode and its body.
    Ok(i32, Vec<u8>),
    /// A compressor Reef does not read (zstd), or bytes that would not inflate.
    Unreadable(i32, &'static str),
}

pub fn op_compressed(b: &[u8]) -> Option<Inflated> {
    let h = b.get(..9)?;
    let op = i32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let size = i32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    let size = usize::try_from(size).ok()?.min(MAX_INFLATED_BYTES);
    let data = &b[9..];
    Some(match h[8] {
        0 => Inflated::Ok(op, data[..data.len().min(size)].to_vec()),
        1 => match snappy(data, size) {
            Some(v) => Inflated::Ok(op, v),
            None => Inflated::Unreadable(op, "snappy data that would not inflate"),
        },
        2 => {
            let mut v = Vec::new();
            let r = flate2::read::ZlibDecoder::new(data)
                .take(size as u64)
                .read_to_end(&mut v);
            match r {
                Ok(_) => Inflated::Ok(op, v),
                // What inflated before the cut is still worth reading.
                Err(_) if !v.is_empty() => Inflated::Ok(op, v),
                Err(_) => Inflated::Unreadable(op, "zlib data that would not inflate"),
            }
        }
        3 => Inflated::Unreadable(op, "zstd"),
        _ => Inflated::Unreadable(op, "an unknown compressor"),
    })
}

/// Raw snappy (no framing), inflated up to `max` bytes; what inflated before a cut
/// is returned.
pub fn snappy(b: &[u8], max: usize) -> Option<Vec<u8>> {
    let mut at = 0;
    let mut len = 0usize;
    for shift in (0..35).step_by(7) {
        let x = *b.get(at)?;
        at += 1;
        len |= usize::from(x & 0x7F) << shift;
        if x & 0x80 == 0 {
            break;
        }
    }
    let cap = len.min(max);
    let mut out: Vec<u8> = Vec::with_capacity(cap.min(1 << 20));
    while at < b.len() && out.len() < cap {
        let tag = b[at];
        at += 1;
        match tag & 3 {
            0 => {
                let mut n = usize::from(tag >> 2);
                if n >= 60 {
                    let extra = n - 59;
                    let s = b.get(at..at + extra)?;
                    n = s
                        .iter()
                        .rev()
                        .fold(0usize, |acc, &x| acc << 8 | usize::from(x));
                    at += extra;
                }
                let n = n + 1;
                let end = (at + n).min(b.len());
                let take = (end - at).min(cap - out.len());
                out.extend_from_slice(&b[at..at + take]);
                at = end;
            }
            kind => {
                let (n, off) = match kind {
                    1 => {
                        let x = *b.get(at)?;
                        at += 1;
                        (
                            4 + usize::from((tag >> 2) & 7),
                            usize::from(tag >> 5) << 8 | usize::from(x),
                        )
                    }
                    2 => {
                        let s = b.get(at..at + 2)?;
                        at += 2;
                        (
                            1 + usize::from(tag >> 2),
                            usize::from(u16::from_le_bytes([s[0], s[1]])),
                        )
                    }
                    _ => {
                        let s = b.get(at..at + 4)?;
                        at += 4;
                        (
                            1 + usize::from(tag >> 2),
                            u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize,
                        )
                    }
                };
                if off == 0 || off > out.len() {
                    return if out.is_empty() { None } else { Some(out) };
                }
                for _ in 0..n.min(cap - out.len()) {
                    let x = out[out.len() - off];
                    out.push(x);
                }
            }
        }
    }
    Some(out)
}

/// Does `b` start with a message a client sends (or, `reply`, a server's)?
/// `None`: more bytes are needed.
pub fn looks_like_message(b: &[u8], reply: bool) -> Option<bool> {
    let h = header(b)?;
    if !(16..=MAX_MESSAGE_BYTES).contains(&h.length) {
        return Some(false);
    }
    let ok_op = if reply {
        matches!(h.op, OP_REPLY | OP_MSG | OP_COMPRESSED) && h.response_to != 0
    } else {
        matches!(
            h.op,
            OP_MSG
                | OP_QUERY
                | OP_COMPRESSED
                | OP_INSERT
                | OP_UPDATE
                | OP_DELETE
                | OP_GET_MORE
                | OP_KILL_CURSORS
        )
    };
    if !ok_op {
        return Some(false);
    }
    let body = &b[16..b.len().min(h.length as usize)];
    match h.op {
        OP_MSG => {
            let f = body.get(..5)?;
            let flags = u32::from_le_bytes([f[0], f[1], f[2], f[3]]);
            // Bits 0-15 not defined are required to be understood: never set.
            if flags & 0xFFFC != 0 || f[4] > 2 {
                return Some(false);
            }
            if f[4] == 0 {
                let d = body.get(5..9)?;
                let n = i32::from_le_bytes([d[0], d[1], d[2], d[3]]);
                let room = h.length - 16 - 5;
                return Some((5..=room).contains(&n));
            }
            Some(true)
        }
        OP_REPLY => Some(h.length >= 36),
        OP_QUERY => {
            let rest = body.get(4..)?;
            let nul = match memchr::memchr(0, &rest[..rest.len().min(256)]) {
                Some(n) => n,
                None => return if rest.len() < 256 { None } else { Some(false) },
            };
            Some(
                nul > 0
                    && rest[..nul].contains(&b'.')
                    && rest[..nul].iter().all(|c| c.is_ascii_graphic()),
            )
        }
        OP_COMPRESSED => {
            let c = body.get(..9)?;
            let op = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            Some(matches!(op, OP_MSG | OP_QUERY | OP_REPLY) && c[8] <= 3)
        }
        _ => Some(h.response_to == 0 && h.length >= 24),
    }
}
