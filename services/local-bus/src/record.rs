//! The on-disk record format.
//!
//! ```text
//! offset  size  field
//!      0     4  magic "RFB1"
//!      4     4  body length (u32 LE), at most MAX_MESSAGE_BYTES
//!      8     8  stream sequence (u64 LE)
//!     16     8  store time, ns since the Unix epoch (i64 LE)
//!     24     4  flags (u32 LE), 0 for now
//!     28     4  CRC-32 (IEEE) of bytes 4..28 followed by the body
//!     32     …  body:
//!               subject length (u32 LE), subject (UTF-8)
//!               header count (u32 LE), then per header:
//!                 name length (u32 LE), name (UTF-8), value length (u32 LE), value (UTF-8)
//!               payload (the rest of the body)
//! ```
//!
//! All integers little-endian. A record is valid when its magic, length, checksum and
//! body structure are; the first invalid record of a segment ends that segment.

use bytes::Bytes;

use crate::{MAX_MESSAGE_BYTES, Message};

pub(crate) const MAGIC: [u8; 4] = *b"RFB1";
pub(crate) const HEADER_LEN: usize = 32;

/// The fixed header of a record.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub body_len: u32,
    pub seq: u64,
    pub time_ns: i64,
    pub crc: u32,
}

/// Length of the body that [`encode`] writes for these parts.
pub(crate) fn body_len(subject: &str, headers: &[(String, String)], payload: &[u8]) -> usize {
    let headers: usize = headers
        .iter()
        .map(|(name, value)| 8 + name.len() + value.len())
        .sum();
    4 + subject.len() + 4 + headers + payload.len()
}

/// Writes a whole record (header and body) into `buf`, replacing its contents.
///
/// The caller has checked that `body_len(..) <= MAX_MESSAGE_BYTES`, so every length
/// fits in a u32.
pub(crate) fn encode(
    buf: &mut Vec<u8>,
    seq: u64,
    time_ns: i64,
    subject: &str,
    headers: &[(String, String)],
    payload: &[u8],
) {
    let body_len = body_len(subject, headers, payload);
    debug_assert!(body_len <= MAX_MESSAGE_BYTES);
    buf.clear();
    buf.reserve(HEADER_LEN + body_len);
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&len_u32(body_len).to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&time_ns.to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes()); // CRC, filled in below
    put_str(buf, subject);
    buf.extend_from_slice(&len_u32(headers.len()).to_le_bytes());
    for (name, value) in headers {
        put_str(buf, name);
        put_str(buf, value);
    }
    buf.extend_from_slice(payload);
    let crc = checksum(&buf[4..28], &buf[HEADER_LEN..]);
    buf[28..32].copy_from_slice(&crc.to_le_bytes());
}

fn len_u32(n: usize) -> u32 {
    // Every length is bounded by MAX_MESSAGE_BYTES (64 MiB), checked before encoding.
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&len_u32(s.len()).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

pub(crate) fn checksum(header_fields: &[u8], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header_fields);
    hasher.update(body);
    hasher.finalize()
}

/// Parses the fixed header; checks the magic and the length bound, not the checksum.
pub(crate) fn parse_header(b: &[u8; HEADER_LEN]) -> Result<Header, &'static str> {
    if b[0..4] != MAGIC {
        return Err("bad magic");
    }
    let body_len = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    if body_len as usize > MAX_MESSAGE_BYTES {
        return Err("record length over the limit");
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&b[8..16]);
    let mut time = [0u8; 8];
    time.copy_from_slice(&b[16..24]);
    Ok(Header {
        body_len,
        seq: u64::from_le_bytes(seq),
        time_ns: i64::from_le_bytes(time),
        crc: u32::from_le_bytes([b[28], b[29], b[30], b[31]]),
    })
}

/// Checks a record's checksum given its header bytes and body.
pub(crate) fn crc_ok(header: &[u8; HEADER_LEN], parsed: &Header, body: &[u8]) -> bool {
    checksum(&header[4..28], body) == parsed.crc
}

/// Decodes a body into a message. `body` is shared so that the payload is a zero-copy
/// slice of it.
pub(crate) fn decode_body(seq: u64, time_ns: i64, body: Bytes) -> Result<Message, &'static str> {
    let mut pos = 0usize;
    let subject = take_str(&body, &mut pos)?;
    let count = take_u32(&body, &mut pos)? as usize;
    // Each header takes at least 8 bytes: refuse counts the body cannot hold before
    // allocating for them.
    if count > (body.len() - pos) / 8 {
        return Err("header count larger than the record");
    }
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let name = take_str(&body, &mut pos)?;
        let value = take_str(&body, &mut pos)?;
        headers.push((name, value));
    }
    Ok(Message {
        seq,
        time_ns,
        subject,
        headers,
        payload: body.slice(pos..),
    })
}

/// Checks that a body decodes, without building the message (used by the scan at open).
pub(crate) fn validate_body(body: &[u8]) -> Result<(), &'static str> {
    let mut pos = 0usize;
    take_str_ref(body, &mut pos)?;
    let count = take_u32(body, &mut pos)? as usize;
    if count > (body.len() - pos) / 8 {
        return Err("header count larger than the record");
    }
    for _ in 0..count {
        take_str_ref(body, &mut pos)?;
        take_str_ref(body, &mut pos)?;
    }
    Ok(())
}

fn take_u32(body: &[u8], pos: &mut usize) -> Result<u32, &'static str> {
    let end = pos.checked_add(4).ok_or("length overflow")?;
    let b = body.get(*pos..end).ok_or("body too short")?;
    *pos = end;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn take_str_ref<'a>(body: &'a [u8], pos: &mut usize) -> Result<&'a str, &'static str> {
    let len = take_u32(body, pos)? as usize;
    let end = pos.checked_add(len).ok_or("length overflow")?;
    let b = body.get(*pos..end).ok_or("string runs past the record")?;
    *pos = end;
    std::str::from_utf8(b).map_err(|_| "string is not UTF-8")
}

fn take_str(body: &[u8], pos: &mut usize) -> Result<String, &'static str> {
    take_str_ref(body, pos).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let headers = vec![
            ("a".to_owned(), "1".to_owned()),
            (String::new(), "é".to_owned()),
        ];
        let mut buf = Vec::new();
        encode(&mut buf, 7, -3, "reef.v1.x", &headers, b"payload");
        assert_eq!(
            buf.len(),
            HEADER_LEN + body_len("reef.v1.x", &headers, b"payload")
        );
        let header: [u8; HEADER_LEN] = buf[..HEADER_LEN].try_into().unwrap();
        let parsed = parse_header(&header).unwrap();
        assert_eq!((parsed.seq, parsed.time_ns), (7, -3));
        assert_eq!(parsed.body_len as usize, buf.len() - HEADER_LEN);
        assert!(crc_ok(&header, &parsed, &buf[HEADER_LEN..]));
        validate_body(&buf[HEADER_LEN..]).unwrap();
        let m = decode_body(7, -3, Bytes::copy_from_slice(&buf[HEADER_LEN..])).unwrap();
        assert_eq!(m.subject, "reef.v1.x");
        assert_eq!(m.headers, headers);
        assert_eq!(&m.payload[..], b"payload");

        // Any flipped byte after the magic is caught by the checksum.
        for i in 4..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            let header: [u8; HEADER_LEN] = bad[..HEADER_LEN].try_into().unwrap();
            match parse_header(&header) {
                Err(_) => {}
                Ok(p) => assert!(!crc_ok(&header, &p, &bad[HEADER_LEN..]), "byte {i}"),
            }
        }
    }

    #[test]
    fn garbage_bodies_are_refused_not_panicking() {
        assert!(validate_body(&[]).is_err());
        assert!(validate_body(&[5, 0, 0, 0, b'a']).is_err());
        // Subject "", then a header count of 2^32-1.
        assert!(validate_body(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(validate_body(&[1, 0, 0, 0, 0xff, 0, 0, 0, 0]).is_err()); // not UTF-8
        validate_body(&[0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    }
}
