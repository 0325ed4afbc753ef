//! gRPC over HTTP/2, from any language: a stream whose content-type is
//! `application/grpc*` is a call. Its DATA carries length-prefixed messages (a
//! compressed flag and a 4-byte length each); its status comes from the trailers, or
//! from the headers of a trailers-only response.
//!
//! The HTTP/2 dissector reads the stream; this module counts messages as the bytes go
//! by ([`Framer`]) and, when the call ends, turns the kept bytes into readable
//! messages and fills the entry's gRPC columns ([`finish`]).

pub mod protobuf;
pub mod schema;

use reef_schema::{Body, Entry, Flags, Headers, Protocol};

use crate::{Limits, body};

pub use schema::ProtoSchema;

/// Length of the prefix before each message: flags (1) and length (4).
pub const PREFIX_LEN: usize = 5;
/// Flag bit of a compressed message.
pub const COMPRESSED: u8 = 0x01;
/// Flag bit gRPC-Web uses for its trailers frame.
pub const WEB_TRAILERS: u8 = 0x80;

/// Whether a content-type names gRPC (`application/grpc`, `+proto`, `+json`, `-web`...).
pub fn is_grpc(content_type: &str) -> bool {
    content_type
        .get(..16)
        .is_some_and(|p| p.eq_ignore_ascii_case("application/grpc"))
}

/// Counts the messages of one direction of a call as its bytes pass, without keeping
/// them.
#[derive(Debug, Default, Clone)]
pub struct Framer {
    prefix: [u8; PREFIX_LEN],
    have: usize,
    /// Bytes of the current message still to come.
    left: u64,
    /// Messages whose prefix was read.
    pub messages: u32,
    /// Bytes were lost where a prefix was due: counting stopped, `messages` is a
    /// lower bound.
    pub broken: bool,
}

impl Framer {
    pub fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.broken {
            if self.left > 0 {
                let take = data
                    .len()
                    .min(usize::try_from(self.left).unwrap_or(usize::MAX));
                self.left -= take as u64;
                data = &data[take..];
                continue;
            }
            let take = (PREFIX_LEN - self.have).min(data.len());
            self.prefix[self.have..self.have + take].copy_from_slice(&data[..take]);
            self.have += take;
            data = &data[take..];
            if self.have == PREFIX_LEN {
                self.have = 0;
                self.messages += 1;
                let p = self.prefix;
                self.left = u64::from(u32::from_be_bytes([p[1], p[2], p[3], p[4]]));
            }
        }
    }

    /// `len` bytes were not captured. Inside a message the count goes on.
    pub fn gap(&mut self, len: u64) {
        if self.have == 0 && len <= self.left {
            self.left -= len;
        } else {
            self.broken = true;
        }
    }

    /// The last message did not end.
    pub fn partial(&self) -> bool {
        self.have > 0 || self.left > 0
    }
}

/// One direction of a finished call, as the HTTP/2 dissector kept it.
pub struct Side<'a> {
    /// The start of the DATA bytes, as kept (cut at the body limit or by a loss).
    pub kept: Vec<u8>,
    /// DATA bytes transferred.
    pub size: u64,
    pub framer: &'a Framer,
}

/// Fills the gRPC columns, bodies and summary of `e`, an HTTP/2 entry whose request
/// and response headers are already set (trailers appended to the response headers).
pub fn finish(e: &mut Entry, req: Side<'_>, resp: Side<'_>, limits: &Limits) {
    e.protocol = Protocol::Grpc;
    if e.method.is_none() && e.request_headers.is_some() {
        e.method = Some("POST".to_string());
    }
    e.grpc_method.clone_from(&e.path);
    let types = match (limits.proto_schema, e.path.as_deref()) {
        (Some(s), Some(p)) => s.method(p),
        _ => None,
    };
    let (req_type, resp_type) = match types {
        Some((i, o)) => (Some(i), Some(o)),
        None => (None, None),
    };
    let mut web_trailers = Headers::new();
    let enc = |h: &Option<Headers>| {
        h.as_ref()
            .and_then(|h| h.get("grpc-encoding"))
            .map(str::to_string)
    };
    let (req_enc, resp_enc) = (enc(&e.request_headers), enc(&e.response_headers));
    let (req_body, f1) = render(&req, req_enc.as_deref(), req_type.as_ref(), limits, None);
    let (resp_body, f2) = render(
        &resp,
        resp_enc.as_deref(),
        resp_type.as_ref(),
        limits,
        Some(&mut web_trailers),
    );
    e.flags |= f1 | f2;
    if req.size > 0 {
        e.request_body = Some(Body(req_body.into_bytes()));
    }
    if resp.size > 0 {
        e.response_body = Some(Body(resp_body.into_bytes()));
    }
    if req.size > 0 || req.framer.messages > 0 {
        e.grpc_request_messages = Some(req.framer.messages);
    }
    if resp.size > 0 || resp.framer.messages > 0 {
        e.grpc_response_messages = Some(resp.framer.messages);
    }
    if !web_trailers.is_empty() {
        let h = e.response_headers.get_or_insert_with(Headers::new);
        h.0.extend(web_trailers.0);
    }
    let headers = e.response_headers.as_ref();
    // The last grpc-status wins: trailers come after the headers.
    let status = headers.and_then(|h| h.get_all("grpc-status").last().map(str::trim));
    let status = match status {
        Some(s) => s.parse::<i32>().ok(),
        None => headers
            .and_then(|h| h.get(":status"))
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|&s| s != 200)
            .map(status_from_http),
    };
    e.grpc_status = status;
    e.status_code = status;
    e.grpc_message = headers
        .and_then(|h| h.get_all("grpc-message").last())
        .map(percent_decode);
}

/// The gRPC status a client reports for a non-200 HTTP status without grpc-status
/// (gRPC's "HTTP to gRPC status code mapping").
pub fn status_from_http(http: u16) -> i32 {
    match http {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502 | 503 | 504 => 14,
        _ => 2,
    }
}

pub fn status_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "",
    }
}

/// grpc-message is percent-encoded (gRPC over HTTP/2, "Responses").
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The kept messages of one side as text, one per line; flags for what could not be
/// shown.
fn render(
    side: &Side<'_>,
    encoding: Option<&str>,
    desc: Option<&prost_reflect::MessageDescriptor>,
    limits: &Limits,
    mut web_trailers: Option<&mut Headers>,
) -> (String, Flags) {
    let mut out = String::new();
    let mut flags = Flags::empty();
    let mut b = &side.kept[..];
    while !b.is_empty() {
        if out.len() >= limits.max_body_bytes {
            break;
        }
        if b.len() < PREFIX_LEN {
            break;
        }
        let flag = b[0];
        let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        let avail = b.len() - PREFIX_LEN;
        let whole = avail >= len;
        let payload = &b[PREFIX_LEN..PREFIX_LEN + len.min(avail)];
        b = &b[PREFIX_LEN + payload.len()..];
        if !out.is_empty() {
            out.push('\n');
        }
        if flag & WEB_TRAILERS != 0 {
            if let Some(t) = web_trailers.as_deref_mut() {
                for line in String::from_utf8_lossy(payload).split("\r\n") {
                    if let Some((k, v)) = line.split_once(':') {
                        t.push(k.trim().to_ascii_lowercase(), v.trim());
                    }
                }
            }
            out.push_str("(trailers)");
            continue;
        }
        let decoded;
        let payload = if flag & COMPRESSED != 0 {
            match encoding.map(str::trim) {
                Some(enc) if !enc.eq_ignore_ascii_case("identity") => {
                    let d = body::decode(payload.to_vec(), enc, limits.max_body_bytes, whole);
                    if d.failed {
                        flags |= Flags::BODY_DECODE_ERROR;
                        out.push_str("(compressed, not decoded) ");
                        protobuf::json_string(&protobuf::base64(payload), &mut out);
                        continue;
                    }
                    decoded = d.bytes;
                    &decoded[..]
                }
                _ => {
                    flags |= Flags::BODY_DECODE_ERROR;
                    out.push_str("(compressed, encoding unknown) ");
                    protobuf::json_string(&protobuf::base64(payload), &mut out);
                    continue;
                }
            }
        } else {
            payload
        };
        if !whole {
            // Cut at the body limit or by a loss: its start, as bytes.
            out.push_str("(cut) ");
            protobuf::json_string(&protobuf::base64(payload), &mut out);
            break;
        }
        match desc.and_then(|d| ProtoSchema::render(d, payload)) {
            Some(text) => out.push_str(&text),
            None => protobuf::render(payload, &mut out),
        }
    }
    if out.len() > limits.max_body_bytes {
        let mut cut = limits.max_body_bytes;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    (out, flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framer_counts_messages_across_pieces_and_gaps() {
        let mut f = Framer::default();
        let mut data = vec![0, 0, 0, 0, 3, 1, 2, 3];
        data.extend([0, 0, 0, 0, 0]);
        data.extend([1, 0, 0, 0, 4, 9]);
        for piece in data.chunks(3) {
            f.push(piece);
        }
        assert_eq!(f.messages, 3);
        assert!(f.partial());
        f.gap(3);
        assert!(
            !f.partial() && !f.broken,
            "a gap inside a message keeps the count"
        );
        f.push(&[0, 0]);
        f.gap(10);
        assert!(f.broken);
        f.push(&[0, 0, 0, 0, 0]);
        assert_eq!(f.messages, 3);
    }

    #[test]
    fn helpers() {
        assert!(is_grpc("application/grpc"));
        assert!(is_grpc("Application/gRPC+proto"));
        assert!(!is_grpc("application/json"));
        assert_eq!(percent_decode("bad%20thing%3A%E2%9C%93"), "bad thing:✓");
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(status_from_http(503), 14);
        assert_eq!(status_name(5), "NOT_FOUND");
    }
}
