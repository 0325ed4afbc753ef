//! PostgreSQL wire protocol 3.x messages: a pure reader over one message's bytes.
//!
//! Frontend messages start with a type byte and a 32-bit length (which counts itself,
//! not the type byte), except the first ones of a connection (startup, SSL and GSS
//! encryption requests, cancel requests): those have no type byte.

/// Longest startup packet a server accepts (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_BYTES: u32 = 10_000;
/// Longest message accepted as such (the server's own limit is 1 GiB).
pub const MAX_MESSAGE_BYTES: u32 = 1 << 30;
/// Bytes of query text kept (`path`, `postgresql_query`).
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

/// Protocol version 3.0 and 3.2 (PostgreSQL 18) in a startup message.
pub const PROTOCOL_3_0: u32 = 0x0003_0000;
pub const PROTOCOL_3_2: u32 = 0x0003_0002;
pub const SSL_REQUEST: u32 = 80_877_103;
pub const GSSENC_REQUEST: u32 = 80_877_104;
pub const CANCEL_REQUEST: u32 = 80_877_102;

/// Frontend message types after startup.
pub const FRONTEND_TYPES: &[u8] = b"QPBEDCHSXpFdcf";
/// Backend message types.
pub const BACKEND_TYPES: &[u8] = b"RKSZTDCEINVA123ntsGHWdcv";

/// What the first (untyped) message of a connection asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untyped {
    Startup {
        version: u32,
        params: Vec<(String, String)>,
    },
    SslRequest,
    GssEncRequest,
    Cancel {
        pid: u32,
    },
    Unknown(u32),
}

/// Length of an untyped message from its first bytes, if plausible.
pub fn untyped_len(b: &[u8]) -> Option<Option<u32>> {
    if b.len() < 8 {
        return if b.len() >= 4 && !(8..=MAX_STARTUP_BYTES).contains(&be32(b, 0).unwrap_or(0)) {
            Some(None)
        } else {
            None
        };
    }
    let len = be32(b, 0)?;
    let code = be32(b, 4)?;
    let known = matches!(
        code,
        PROTOCOL_3_0 | PROTOCOL_3_2 | SSL_REQUEST | GSSENC_REQUEST
    ) || (code == CANCEL_REQUEST && len >= 16)
        || (code >> 16 == 3 && code & 0xFFFF <= 9);
    let fixed = matches!(code, SSL_REQUEST | GSSENC_REQUEST);
    if !known || !(8..=MAX_STARTUP_BYTES).contains(&len) || (fixed && len != 8) {
        return Some(None);
    }
    Some(Some(len))
}

pub fn parse_untyped(b: &[u8]) -> Untyped {
    let code = be32(b, 4).unwrap_or(0);
    match code {
        SSL_REQUEST => Untyped::SslRequest,
        GSSENC_REQUEST => Untyped::GssEncRequest,
        CANCEL_REQUEST => Untyped::Cancel {
            pid: be32(b, 8).unwrap_or(0),
        },
        v if v >> 16 == 3 => {
            let mut params = Vec::new();
            let mut r = Reader::new(b.get(8..).unwrap_or_default());
            while params.len() < 64 {
                let Some(k) = r.cstr() else { break };
                if k.is_empty() {
                    break;
                }
                let Some(v) = r.cstr() else { break };
                params.push((lossy(k, 256), lossy(v, 256)));
            }
            Untyped::Startup { version: v, params }
        }
        other => Untyped::Unknown(other),
    }
}

/// Length (type byte included) of a typed message from its first bytes: `None` when
/// more bytes are needed, `Some(None)` when they are no message of `types`.
pub fn typed_len(b: &[u8], types: &[u8]) -> Option<Option<u64>> {
    let &t = b.first()?;
    if !types.contains(&t) {
        return Some(None);
    }
    let len = be32(b, 1)?;
    if !(4..=MAX_MESSAGE_BYTES).contains(&len) {
        return Some(None);
    }
    Some(Some(u64::from(len) + 1))
}

/// A reader over a message body.
pub struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b, at: 0 }
    }

    /// A NUL-terminated string.
    pub fn cstr(&mut self) -> Option<&'a [u8]> {
        let rest = self.b.get(self.at..)?;
        let end = memchr::memchr(0, rest)?;
        self.at += end + 1;
        Some(&rest[..end])
    }

    /// A NUL-terminated string, or what is left when the message was cut.
    pub fn cstr_or_rest(&mut self) -> &'a [u8] {
        match self.cstr() {
            Some(s) => s,
            None => {
                let rest = self.b.get(self.at..).unwrap_or_default();
                self.at = self.b.len();
                rest
            }
        }
    }

    pub fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.at)?;
        self.at += 1;
        Some(v)
    }

    pub fn i16(&mut self) -> Option<i16> {
        let s = self.b.get(self.at..self.at + 2)?;
        self.at += 2;
        Some(i16::from_be_bytes([s[0], s[1]]))
    }

    pub fn i32(&mut self) -> Option<i32> {
        let v = be32(self.b, self.at)? as i32;
        self.at += 4;
        Some(v)
    }
}

pub fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Text for display and filters: lossy UTF-8, cut at `max` bytes on a character
/// boundary.
pub fn lossy(b: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(max)]);
    let mut s = s.into_owned();
    if b.len() > max {
        // A character cut in two became U+FFFD: drop it.
        while s.ends_with('\u{FFFD}') {
            s.pop();
        }
    }
    s
}

/// The body of a typed message (after type byte and length), cut to what was kept.
pub fn body(msg: &[u8]) -> &[u8] {
    msg.get(5..).unwrap_or_default()
}

/// Parse: statement name, query text.
pub fn parse_parse(body: &[u8]) -> (String, Vec<u8>) {
    let mut r = Reader::new(body);
    let name = lossy(r.cstr_or_rest(), 256);
    let text = r.cstr_or_rest();
    (name, text[..text.len().min(MAX_QUERY_BYTES)].to_vec())
}

/// Bind: portal name, statement name.
pub fn parse_bind(body: &[u8]) -> (String, String) {
    let mut r = Reader::new(body);
    let portal = lossy(r.cstr_or_rest(), 256);
    let stmt = lossy(r.cstr_or_rest(), 256);
    (portal, stmt)
}

/// Describe and Close: what ('S' statement or 'P' portal) and its name.
pub fn parse_target(body: &[u8]) -> (u8, String) {
    let mut r = Reader::new(body);
    let what = r.u8().unwrap_or(b'S');
    (what, lossy(r.cstr_or_rest(), 256))
}

/// Execute: portal name, row limit (0 = all).
pub fn parse_execute(body: &[u8]) -> (String, i32) {
    let mut r = Reader::new(body);
    let portal = lossy(r.cstr_or_rest(), 256);
    (portal, r.i32().unwrap_or(0))
}

/// Query text of a simple Query, cut at [`MAX_QUERY_BYTES`].
pub fn query_text(body: &[u8]) -> Vec<u8> {
    let t = match memchr::memchr(0, body) {
        Some(end) => &body[..end],
        None => body,
    };
    t[..t.len().min(MAX_QUERY_BYTES)].to_vec()
}

/// The fields of an ErrorResponse or NoticeResponse that matter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgError {
    pub severity: String,
    pub code: String,
    pub message: String,
}

impl PgError {
    /// `SQLSTATE: message` for `db_error`.
    pub fn text(&self) -> String {
        format!("{}: {}", self.code, self.message)
    }

    /// FATAL and PANIC end the session.
    pub fn fatal(&self) -> bool {
        matches!(self.severity.as_str(), "FATAL" | "PANIC")
    }
}

pub fn parse_error(body: &[u8]) -> PgError {
    let mut e = PgError::default();
    let mut r = Reader::new(body);
    while let Some(field) = r.u8() {
        if field == 0 {
            break;
        }
        let v = r.cstr_or_rest();
        match field {
            // 'V' is the untranslated severity (9.6+); 'S' may be localised.
            b'V' => e.severity = lossy(v, 32),
            b'S' if e.severity.is_empty() => e.severity = lossy(v, 32),
            b'C' => e.code = lossy(v, 16),
            b'M' => e.message = lossy(v, 1024),
            _ => {}
        }
    }
    e
}

/// A CommandComplete tag (`SELECT 5`, `INSERT 0 1`, `CREATE TABLE`) and the rows it
/// reports, if it reports any.
pub fn parse_tag(body: &[u8]) -> (String, Option<i64>) {
    let tag = lossy(Reader::new(body).cstr_or_rest(), 128);
    let mut words = tag.split_ascii_whitespace();
    let rows = match words.next() {
        Some("SELECT" | "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "MOVE" | "FETCH" | "COPY") => {
            tag.rsplit(' ').next().and_then(|n| n.parse().ok())
        }
        _ => None,
    };
    (tag, rows)
}

/// Authentication request codes, by name.
pub fn auth_name(code: i32) -> &'static str {
    match code {
        0 => "ok",
        2 => "Kerberos V5",
        3 => "cleartext password",
        5 => "MD5 password",
        7 => "GSSAPI",
        8 => "GSS continue",
        9 => "SSPI",
        10 => "SASL",
        11 => "SASL continue",
        12 => "SASL final",
        _ => "unknown",
    }
}

/// A SASL mechanism offered in AuthenticationSASL (the first one).
pub fn sasl_mechanism(body: &[u8]) -> Option<String> {
    let mut r = Reader::new(body.get(4..)?);
    r.cstr().filter(|m| !m.is_empty()).map(|m| lossy(m, 64))
}

/// Name of a frontend message type (for summaries).
pub fn frontend_name(t: u8) -> &'static str {
    match t {
        b'Q' => "Query",
        b'P' => "Parse",
        b'B' => "Bind",
        b'E' => "Execute",
        b'D' => "Describe",
        b'C' => "Close",
        b'H' => "Flush",
        b'S' => "Sync",
        b'X' => "Terminate",
        b'p' => "PasswordMessage",
        b'F' => "FunctionCall",
        b'd' => "CopyData",
        b'c' => "CopyDone",
        b'f' => "CopyFail",
        _ => "Unknown",
    }
}

/// Does `b` look like a run of complete frontend messages (a connection joined
/// mid-way)? `Some(true)` when every byte is accounted for and the first message
/// is a request with plausible content, `None` when more bytes are needed.
pub fn looks_like_frontend(b: &[u8]) -> Option<bool> {
    let len = match typed_len(b, b"QPBEDCFS")? {
        Some(l) => l as usize,
        None => return Some(false),
    };
    let t = b[0];
    let body_len = len - 5;
    // Content checks on what is there of the first message.
    let body = &b[5..b.len().min(len)];
    let ok = match t {
        b'Q' => {
            body_len >= 2
                && (body.len() < body_len || body[body_len - 1] == 0)
                && plausible_text(&body[..body.len().min(body_len.saturating_sub(1))])
        }
        b'P' => {
            let mut r = Reader::new(body);
            let name_ok = r.cstr().is_some_and(|n| n.len() < 256 && plausible_text(n));
            name_ok
                && match r.cstr() {
                    Some(text) => plausible_text(text) && !text.is_empty(),
                    None => body.len() < body_len && body_len > 2,
                }
        }
        b'B' | b'E' => {
            let mut r = Reader::new(body);
            r.cstr().is_some_and(|n| n.len() < 256 && plausible_text(n)) || body.len() < 8
        }
        b'D' | b'C' => body_len >= 2 && matches!(body.first(), Some(b'S' | b'P') | None),
        b'S' => body_len == 0,
        b'F' => body_len >= 8,
        _ => false,
    };
    if !ok {
        return Some(false);
    }
    if b.len() < len {
        // Only a long message's start: the checks above are all there is.
        return if b.len() >= 64 { Some(true) } else { None };
    }
    chain(&b[len..], FRONTEND_TYPES, 8)
}

/// Does `b` look like a run of complete backend messages (a connection joined
/// mid-way)?
pub fn looks_like_backend(b: &[u8]) -> Option<bool> {
    let len = match typed_len(b, BACKEND_TYPES)? {
        Some(l) => l as usize,
        None => return Some(false),
    };
    let body_len = len - 5;
    let body = &b[5..b.len().min(len)];
    let ok = match b[0] {
        b'Z' => body_len == 1 && body.first().is_none_or(|s| b"ITE".contains(s)),
        b'C' => {
            body_len >= 2
                && body
                    .iter()
                    .take(body_len.saturating_sub(1))
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b' ')
        }
        b'1' | b'2' | b'3' | b'n' | b'I' | b'c' => body_len == 0,
        b'D' | b'T' => body_len >= 2,
        b'E' | b'N' => body.first().is_none_or(|f| b"SVCM".contains(f)),
        b'R' => body_len >= 4,
        b'K' => body_len >= 8,
        _ => body_len < 65_536,
    };
    if !ok {
        return Some(false);
    }
    if b.len() < len {
        return if b.len() >= 64 { Some(true) } else { None };
    }
    chain(&b[len..], BACKEND_TYPES, 8)
}

/// Up to `n` further messages of `types` that frame the bytes exactly; the end of the
/// bytes is fine anywhere inside the last one's body.
fn chain(mut b: &[u8], types: &[u8], n: usize) -> Option<bool> {
    for _ in 0..n {
        if b.is_empty() {
            return Some(true);
        }
        match typed_len(b, types) {
            None => return Some(true),
            Some(None) => return Some(false),
            Some(Some(l)) if l as usize >= b.len() => return Some(true),
            Some(Some(l)) => b = &b[l as usize..],
        }
    }
    Some(true)
}

/// Text a query or a name is made of: no control bytes other than white space (any
/// encoding: queries in GBK or Latin-1 happen).
fn plausible_text(b: &[u8]) -> bool {
    b.iter()
        .all(|&c| c >= 0x20 && c != 0x7f || matches!(c, b'\n' | b'\r' | b'\t'))
}
