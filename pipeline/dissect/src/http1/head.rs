//! HTTP/1.x message heads: the start line and the header fields.
//!
//! httparse reads well-formed heads. Real traffic has heads it rejects (`GET / HTTP/1.`,
//! a missing version, bytes that are not UTF-8 in the target); those are read leniently,
//! the way Wireshark reads them, and flagged malformed rather than dropped.

use std::mem::MaybeUninit;

use reef_schema::Headers;

/// Header fields parsed per head; more are counted as a too-large head.
pub const MAX_HEADERS: usize = 256;

/// Methods accepted without a version on the request line, and the signatures that
/// tell HTTP from other protocols at the start of a connection.
pub const KNOWN_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "SEARCH",
    "REPORT",
    "MKACTIVITY",
    "CHECKOUT",
    "CHECKIN",
    "UNCHECKOUT",
    "MERGE",
    "M-SEARCH",
    "NOTIFY",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "PURGE",
    "LINK",
    "UNLINK",
    "CCM_POST",
    "BIND",
    "REBIND",
    "UNBIND",
    "ACL",
    "MKCALENDAR",
    "VERSION-CONTROL",
    "UPDATE",
    "LABEL",
    "MKWORKSPACE",
    "BASELINE-CONTROL",
    "ORDERPATCH",
    "QUERY",
    "MKREDIRECTREF",
    "UPDATEREDIRECTREF",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: String, target: String },
    Response { status: u16, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub start: StartLine,
    /// "1.0", "1.1", or what was sent when it was something else ("" when absent).
    pub version: String,
    pub headers: Headers,
    /// Did not follow the grammar; read leniently.
    pub malformed: bool,
    /// More than [`MAX_HEADERS`] fields; the rest were not kept.
    pub too_many_headers: bool,
}

impl Head {
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { status, .. } => Some(status),
            StartLine::Request { .. } => None,
        }
    }
}

/// Where a head ends: the index just past the blank line, searching from `from`
/// (so that a growing buffer is not searched again). Accepts bare LF line ends.
pub fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let from = from.min(buf.len());
    for i in memchr::memchr_iter(b'\n', &buf[from..]) {
        let i = from + i;
        match buf.get(i + 1) {
            Some(b'\n') => return Some(i + 2),
            Some(b'\r') if buf.get(i + 2) == Some(&b'\n') => return Some(i + 3),
            _ => {}
        }
    }
    None
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn version_text(minor: Option<u8>) -> String {
    match minor {
        Some(0) => "1.0".to_string(),
        Some(1) => "1.1".to_string(),
        _ => String::new(),
    }
}

fn headers_from(parsed: &[httparse::Header<'_>]) -> Headers {
    Headers(
        parsed
            .iter()
            .map(|h| (h.name.to_string(), lossy(h.value)))
            .collect(),
    )
}

fn config() -> httparse::ParserConfig {
    let mut c = httparse::ParserConfig::default();
    c.allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_request_line_delimiters(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .ignore_invalid_headers_in_requests(true)
        .ignore_invalid_headers_in_responses(true);
    c
}

/// Parses a complete request head (`buf` ends with the blank line).
pub fn parse_request(buf: &[u8]) -> Option<Head> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match config().parse_request_with_uninit_headers(&mut req, buf, &mut slots) {
        Ok(httparse::Status::Complete(_)) => Some(Head {
            start: StartLine::Request {
                method: req.method.unwrap_or_default().to_string(),
                target: req.path.unwrap_or_default().to_string(),
            },
            version: version_text(req.version),
            headers: headers_from(req.headers),
            malformed: false,
            too_many_headers: false,
        }),
        Err(httparse::Error::TooManyHeaders) => lenient_request(buf, true),
        _ => lenient_request(buf, false),
    }
}

/// Parses a complete response head.
pub fn parse_response(buf: &[u8]) -> Option<Head> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    match config().parse_response_with_uninit_headers(&mut resp, buf, &mut slots) {
        Ok(httparse::Status::Complete(_)) => Some(Head {
            start: StartLine::Response {
                status: resp.code.unwrap_or_default(),
                reason: resp.reason.unwrap_or_default().to_string(),
            },
            version: version_text(resp.version),
            headers: headers_from(resp.headers),
            malformed: false,
            too_many_headers: false,
        }),
        Err(httparse::Error::TooManyHeaders) => lenient_response(buf, true),
        _ => lenient_response(buf, false),
    }
}

fn first_line(buf: &[u8]) -> (&[u8], &[u8]) {
    let end = memchr::memchr(b'\n', buf).unwrap_or(buf.len());
    let line = &buf[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    (line, buf.get(end + 1..).unwrap_or(&[]))
}

/// Header lines parsed one by one, skipping lines that are not `name: value`.
fn lenient_headers(mut rest: &[u8]) -> (Headers, bool) {
    let mut h = Headers::new();
    let mut too_many = false;
    while !rest.is_empty() {
        let (line, next) = first_line(rest);
        rest = next;
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // Obsolete line folding continues the previous value.
            if let Some(last) = h.0.last_mut() {
                last.1.push(' ');
                last.1.push_str(lossy(line).trim());
            }
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b) || b == b' ') {
            continue;
        }
        if h.len() == MAX_HEADERS {
            too_many = true;
            break;
        }
        h.push(
            lossy(name).trim_end().to_string(),
            lossy(&line[colon + 1..]).trim().to_string(),
        );
    }
    (h, too_many)
}

/// `METHOD SP target [SP version]`, as Wireshark accepts it. A method alone on its
/// line is taken only when it is a known one.
pub fn lenient_request_line(line: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mlen = line.iter().take_while(|&&b| is_tchar(b)).count();
    if mlen == 0 {
        return None;
    }
    let method = &line[..mlen];
    let rest = &line[mlen..];
    if rest.is_empty() {
        let known = std::str::from_utf8(method).is_ok_and(|m| KNOWN_METHODS.contains(&m));
        return known.then_some((method, &[][..], &[][..]));
    }
    if rest[0] != b' ' {
        return None;
    }
    let rest = &rest[1..];
    let tlen = rest.iter().take_while(|&&b| b != b' ').count();
    let target = &rest[..tlen];
    let version = rest.get(tlen + 1..).unwrap_or(&[]);
    Some((method, target, version.trim_ascii()))
}

fn lenient_request(buf: &[u8], too_many: bool) -> Option<Head> {
    let (line, rest) = first_line(buf);
    let (method, target, version) = lenient_request_line(line)?;
    let (headers, more) = lenient_headers(rest);
    let version = match version {
        b"HTTP/1.1" => "1.1".to_string(),
        b"HTTP/1.0" => "1.0".to_string(),
        other => lossy(other.strip_prefix(b"HTTP/").unwrap_or(other)),
    };
    Some(Head {
        start: StartLine::Request {
            method: lossy(method),
            target: lossy(target),
        },
        version,
        headers,
        malformed: !too_many,
        too_many_headers: too_many || more,
    })
}

/// `HTTP/x.y SP 3DIGIT [SP reason]`.
pub fn lenient_status_line(line: &[u8]) -> Option<(&[u8], u16, &[u8])> {
    let rest = line.strip_prefix(b"HTTP/")?;
    let sp = memchr::memchr(b' ', rest)?;
    let version = &rest[..sp];
    let rest = rest[sp..].trim_ascii_start();
    let digits = rest.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    let status = digits
        .iter()
        .fold(0u16, |a, d| a * 10 + u16::from(d - b'0'));
    Some((version, status, rest[3..].trim_ascii()))
}

fn lenient_response(buf: &[u8], too_many: bool) -> Option<Head> {
    let (line, rest) = first_line(buf);
    let (version, status, reason) = lenient_status_line(line)?;
    let (headers, more) = lenient_headers(rest);
    Some(Head {
        start: StartLine::Response {
            status,
            reason: lossy(reason),
        },
        version: lossy(version),
        headers,
        malformed: !too_many,
        too_many_headers: too_many || more,
    })
}

/// How a request line looks at the start of a stream or after lost data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Looks {
    Yes,
    No,
    /// Not enough bytes to tell.
    Maybe,
}

/// Longest start line prefix examined to recognise HTTP.
pub const MAX_SIGNATURE_LINE: usize = 8192;

/// Does `buf` start with an HTTP/1 request line? A known method followed by a space,
/// or any token method with a target and an `HTTP/1.x` version.
pub fn looks_like_request(buf: &[u8]) -> Looks {
    let mlen = buf.iter().take_while(|&&b| is_tchar(b)).count();
    if mlen == buf.len() {
        // Only token bytes so far: a method still arriving?
        let prefix_of_known = KNOWN_METHODS
            .iter()
            .any(|m| m.len() > mlen && m.as_bytes().starts_with(buf));
        return if mlen < 24
            && (prefix_of_known || mlen > 0 && buf.iter().all(u8::is_ascii_uppercase))
        {
            Looks::Maybe
        } else {
            Looks::No
        };
    }
    let method = &buf[..mlen];
    if matches!(buf[mlen], b'\r' | b'\n')
        && std::str::from_utf8(method).is_ok_and(|m| KNOWN_METHODS.contains(&m))
    {
        return Looks::Yes; // a bare method, e.g. `OPTIONS\n`
    }
    if mlen == 0 || mlen > 24 || buf[mlen] != b' ' {
        return Looks::No;
    }
    if std::str::from_utf8(method).is_ok_and(|m| KNOWN_METHODS.contains(&m)) {
        return Looks::Yes;
    }
    if method == b"PRI" {
        return Looks::No; // the HTTP/2 connection preface
    }
    if !method
        .iter()
        .all(|b| b.is_ascii_uppercase() || *b == b'-' || *b == b'_')
    {
        return Looks::No;
    }
    let end = memchr::memchr(b'\n', buf);
    let line = &buf[..end.unwrap_or(buf.len().min(MAX_SIGNATURE_LINE))];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if memchr::memmem::find(line, b" HTTP/1.").is_some() {
        Looks::Yes
    } else if end.is_none() && buf.len() < MAX_SIGNATURE_LINE {
        Looks::Maybe
    } else {
        Looks::No
    }
}

/// Does `buf` start with an HTTP/1 status line?
pub fn looks_like_response(buf: &[u8]) -> Looks {
    const SIG: &[u8] = b"HTTP/1.";
    let n = buf.len().min(SIG.len());
    if buf[..n] != SIG[..n] {
        return Looks::No;
    }
    if buf.len() < 13 {
        return Looks::Maybe;
    }
    if buf[8] == b' ' && buf[9..12].iter().all(u8::is_ascii_digit) {
        Looks::Yes
    } else {
        Looks::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &str) -> Head {
        parse_request(s.as_bytes()).expect("parses")
    }

    #[test]
    fn well_formed_request() {
        let h = req("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
        assert_eq!(
            h.start,
            StartLine::Request {
                method: "GET".into(),
                target: "/a?b=1".into()
            }
        );
        assert_eq!(h.version, "1.1");
        assert_eq!(h.headers.get("host"), Some("x"));
        assert!(!h.malformed);
    }

    #[test]
    fn malformed_request_lines_read_like_wireshark() {
        type Want = Option<(&'static str, &'static str, &'static str)>;
        let cases: &[(&str, Want)] = &[
            ("GET / HTTP/1.\n\n", Some(("GET", "/", "1."))),
            ("OPTIONS HTTP/1.1\n\n", Some(("OPTIONS", "HTTP/1.1", ""))),
            ("GET /HTTP/1.1\n\n", Some(("GET", "/HTTP/1.1", ""))),
            ("OPTIONS\n\n", Some(("OPTIONS", "", ""))),
            ("GET/ HTTP/1.1\n\n", None),
            ("GET/HTTP/1.1\n\n", None),
            ("\u{c3}\u{83}\u{c3}\u{82} / HTTP/1.1\n\n", None),
        ];
        for (text, want) in cases {
            let got = parse_request(text.as_bytes()).map(|h| match h.start {
                StartLine::Request { method, target } => (method, target, h.version),
                StartLine::Response { .. } => unreachable!(),
            });
            let want = want.map(|(m, t, v)| (m.to_string(), t.to_string(), v.to_string()));
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn non_utf8_target_is_kept_lossily() {
        let h = parse_request(b"GET /caf\xe9 HTTP/1.1\r\n\r\n").unwrap();
        assert!(h.malformed);
        assert_eq!(
            h.start,
            StartLine::Request {
                method: "GET".into(),
                target: "/caf\u{fffd}".into()
            }
        );
    }

    #[test]
    fn responses_strict_and_lenient() {
        let h = parse_response(b"HTTP/1.0 404 Not Found\r\nServer: s\r\n\r\n").unwrap();
        assert_eq!(h.status(), Some(404));
        assert_eq!(h.version, "1.0");
        let h = parse_response(b"HTTP/1.1 200\r\n\r\n").unwrap();
        assert_eq!(h.status(), Some(200));
        let h = parse_response(b"HTTP/1.2 503 Busy\r\nbad header line\r\nA: b\r\n\r\n").unwrap();
        assert_eq!(h.status(), Some(503));
        assert_eq!(h.headers.get("a"), Some("b"));
        assert!(parse_response(b"HTTP/1.1 20 OK\r\n\r\n").is_none());
    }

    #[test]
    fn too_many_headers_are_flagged_not_fatal() {
        let mut s = String::from("GET / HTTP/1.1\r\n");
        for i in 0..MAX_HEADERS + 10 {
            s.push_str(&format!("X-{i}: v\r\n"));
        }
        s.push_str("\r\n");
        let h = req(&s);
        assert!(h.too_many_headers);
        assert_eq!(h.headers.len(), MAX_HEADERS);
    }

    #[test]
    fn head_end_with_crlf_and_bare_lf() {
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nBODY", 0),
            Some(24)
        );
        assert_eq!(find_head_end(b"GET /\n\nBODY", 0), Some(7));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
    }

    #[test]
    fn signatures() {
        assert_eq!(looks_like_request(b"GET / HTTP/1.1\r\n"), Looks::Yes);
        assert_eq!(looks_like_request(b"GE"), Looks::Maybe);
        assert_eq!(looks_like_request(b"FOO /x HTTP/1.1\r\n"), Looks::Yes);
        assert_eq!(looks_like_request(b"FOO /x\r\n"), Looks::No);
        assert_eq!(looks_like_request(b"PRI * HTTP/2.0\r\n"), Looks::No);
        assert_eq!(looks_like_request(b"\x16\x03\x01\x02\x00"), Looks::No);
        assert_eq!(looks_like_request(b"*3\r\n$3\r\nSET\r\n"), Looks::No);
        assert_eq!(looks_like_response(b"HTTP/1.1 200 OK\r\n"), Looks::Yes);
        assert_eq!(looks_like_response(b"HTTP/1."), Looks::Maybe);
        assert_eq!(looks_like_response(b"HTTP/2 200"), Looks::No);
    }
}
