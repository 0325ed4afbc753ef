//! One direction of an HTTP/1 connection: finds message boundaries (heads, bodies by
//! length, chunked or until close), survives lost bytes by re-synchronising on the
//! next message start, and hands finished messages on.

use reef_schema::{Flags, Headers};

use super::head::{self, Head, Looks};
use crate::Limits;
use crate::body::{BodyBudget, BodyCollector};

/// Longest chunk-size line (with extensions) accepted.
pub const MAX_CHUNK_LINE: usize = 1024;
/// Bytes kept between chunks while looking for a message start after lost data.
const RESYNC_CARRY: usize = 256;
/// Bytes skipped looking for the end of an over-long head before deciding it is not
/// a head.
pub const MAX_HEAD_SKIP: u64 = 1024 * 1024;

fn tail3(b: &[u8]) -> ([u8; 3], usize) {
    let t = &b[b.len().saturating_sub(3)..];
    let mut out = [0u8; 3];
    out[..t.len()].copy_from_slice(t);
    (out, t.len())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Request,
    Response,
}

/// How a message's body is delimited, decided when its head has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    NoBody,
    Length(u64),
    Chunked,
    UntilClose,
    /// The message is complete and the bytes after it are another protocol.
    Tunnel,
}

/// A message being read or just finished.
#[derive(Debug)]
pub struct Message {
    pub head: Head,
    pub start_ts: i64,
    pub end_ts: i64,
    /// Stream offsets of the first byte, the end of the head and the end.
    pub start_offset: u64,
    pub head_end_offset: u64,
    pub end_offset: u64,
    /// The acknowledgment carried by the segment with the first byte.
    pub peer_ack: Option<u64>,
    /// Bytes on the wire: head, body and chunk framing.
    pub wire_len: u64,
    pub body: BodyCollector,
    pub flags: Flags,
}

/// What the connection needs from a direction's parser.
pub trait Sink {
    /// A head was read: how is the body framed?
    fn on_head(&mut self, msg: &mut Message) -> Framing;
    /// A message is complete (or as complete as it will get).
    fn on_message(&mut self, msg: Message);
    /// Bytes were lost at or across a message boundary. `last_data_ts` is when this
    /// direction last carried data before the loss.
    fn on_lost(&mut self, last_data_ts: Option<i64>);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between messages.
    Idle,
    Head,
    Body {
        remaining: u64,
    },
    ChunkSize,
    ChunkData {
        remaining: u64,
    },
    ChunkDataEnd,
    Trailers,
    UntilClose,
    /// After Upgrade or CONNECT: not HTTP/1 any more.
    Tunnel,
    /// The direction ended.
    Done,
    /// Lost track of message boundaries: looking for the next message start.
    Resync,
    /// A head longer than the limit: its start is kept, the rest skipped up to the
    /// blank line. `tail` holds the last bytes seen, for a terminator split in two.
    HeadOverflow {
        tail: ([u8; 3], usize),
        skipped: u64,
    },
}

#[derive(Debug, Default, Clone, Copy)]
pub struct HalfStats {
    pub messages: u64,
    /// Bytes skipped while looking for a message start.
    pub skipped_bytes: u64,
    /// Heads lost to gaps, size limits or garbage.
    pub lost_heads: u64,
}

pub struct Half {
    role: Role,
    state: State,
    /// Head, chunk line or trailer bytes split across segments; resync carry.
    buf: Vec<u8>,
    msg: Option<Message>,
    /// Stream offset of the next byte.
    pos: u64,
    last_data_ts: Option<i64>,
    /// Resync began at a likely message boundary (stream start, right after a gap):
    /// a message start at its very first byte needs less evidence.
    at_boundary: bool,
    budget: BodyBudget,
    pub stats: HalfStats,
}

impl Half {
    pub fn new(role: Role, midstream: bool, budget: BodyBudget) -> Half {
        Half {
            role,
            state: if midstream {
                State::Resync
            } else {
                State::Idle
            },
            buf: Vec::new(),
            msg: None,
            pos: 0,
            last_data_ts: None,
            at_boundary: true,
            budget,
            stats: HalfStats::default(),
        }
    }

    /// Where the bytes of another protocol begin, once the connection switched.
    pub fn tunnel_start(&self) -> Option<u64> {
        (self.state == State::Tunnel).then_some(self.pos)
    }

    /// The connection switched protocols: nothing more to read as HTTP/1.
    pub fn into_tunnel(&mut self) {
        if self.msg.is_none() && self.state != State::Done {
            self.buf.clear();
            self.state = State::Tunnel;
        }
    }

    /// Whether the parser is in the middle of a message.
    pub fn in_message(&self) -> bool {
        self.msg.is_some()
    }

    pub fn feed<S: Sink>(
        &mut self,
        offset: u64,
        data: &[u8],
        ts: i64,
        peer_ack: Option<u64>,
        limits: &Limits,
        sink: &mut S,
    ) {
        if self.last_data_ts.is_none() && self.pos == 0 {
            // The first bytes may start anywhere (after a proxy handshake, say).
            self.pos = offset;
        } else if offset > self.pos {
            // The stream layer reports gaps; this is defensive for callers that don't.
            self.gap(offset - self.pos, ts, sink);
        }
        self.pos = offset;
        self.last_data_ts = Some(ts);
        if self.state == State::Resync {
            let carried = self.buf.len() as u64;
            self.buf.extend_from_slice(data);
            let buf = std::mem::take(&mut self.buf);
            let at_boundary = std::mem::replace(&mut self.at_boundary, false) && carried == 0;
            let found = find_message_start(self.role, &buf, at_boundary).or_else(|| {
                // Messages tend to start with a segment: where this one begins is a
                // candidate too, even without a line end before it.
                let c = carried as usize;
                (c > 0 && c < buf.len())
                    .then(|| find_message_start(self.role, &buf[c..], false).filter(|&i| i == 0))
                    .flatten()
                    .map(|_| c)
            });
            let Some(at) = found else {
                let keep = resync_keep_from(self.role, &buf, limits.max_head_bytes);
                self.stats.skipped_bytes += keep as u64;
                self.buf = buf[keep..].to_vec();
                self.pos = offset + data.len() as u64;
                return;
            };
            self.stats.skipped_bytes += at as u64;
            self.state = State::Idle;
            self.pos = offset - carried + at as u64;
            self.run(&buf[at..], ts, peer_ack, limits, sink);
            return;
        }
        self.run(data, ts, peer_ack, limits, sink);
    }

    fn start_message(&mut self, ts: i64, peer_ack: Option<u64>) -> Message {
        Message {
            head: Head {
                start: head::StartLine::Request {
                    method: String::new(),
                    target: String::new(),
                },
                version: String::new(),
                headers: Headers::new(),
                malformed: false,
                too_many_headers: false,
            },
            start_ts: ts,
            end_ts: ts,
            start_offset: self.pos,
            head_end_offset: self.pos,
            end_offset: self.pos,
            peer_ack,
            wire_len: 0,
            body: BodyCollector::with_budget(self.budget.clone()),
            flags: Flags::empty(),
        }
    }

    fn run<S: Sink>(
        &mut self,
        mut data: &[u8],
        ts: i64,
        peer_ack: Option<u64>,
        limits: &Limits,
        sink: &mut S,
    ) {
        while !data.is_empty() {
            match self.state {
                State::Idle => {
                    // Stray line ends between messages are allowed (RFC 9112 §2.2).
                    let skip = data
                        .iter()
                        .take_while(|b| **b == b'\r' || **b == b'\n')
                        .count();
                    self.consume(skip, &mut data);
                    if data.is_empty() {
                        break;
                    }
                    let looks = match self.role {
                        Role::Request => head::looks_like_request(data),
                        Role::Response => head::looks_like_response(data),
                    };
                    if looks == Looks::No {
                        self.stats.lost_heads += 1;
                        self.state = State::Resync;
                        continue;
                    }
                    self.msg = Some(self.start_message(ts, peer_ack));
                    self.state = State::Head;
                }
                State::Head => {
                    let max = limits.max_head_bytes;
                    let old = self.buf.len();
                    if old == 0
                        && let Some(end) = head::find_head_end(data, 0)
                    {
                        // The whole head is in this segment: parse it in place.
                        let parsed = if end <= max {
                            self.parse_head(&data[..end])
                        } else {
                            self.flag(Flags::HEAD_TOO_LARGE);
                            self.parse_cut_head(&data[..max])
                        };
                        self.consume(end, &mut data);
                        self.head_done(parsed, ts, sink);
                        continue;
                    }
                    let take = data.len().min(max.saturating_sub(old));
                    self.buf.extend_from_slice(&data[..take]);
                    // The old bytes held no terminator, so one ends in the new bytes.
                    match head::find_head_end(&self.buf, old.saturating_sub(3)) {
                        Some(end) => {
                            let mut bytes = std::mem::take(&mut self.buf);
                            bytes.truncate(end);
                            let parsed = self.parse_head(&bytes);
                            self.consume(end - old, &mut data);
                            self.head_done(parsed, ts, sink);
                        }
                        None if take < data.len() => {
                            // Full: keep the start of the head, skip the rest of it.
                            self.consume(take, &mut data);
                            let tail = tail3(&self.buf);
                            self.state = State::HeadOverflow { tail, skipped: 0 };
                        }
                        None => {
                            let n = data.len();
                            self.consume(n, &mut data);
                        }
                    }
                }
                State::HeadOverflow { tail, skipped } => {
                    let (tail_bytes, tail_len) = tail;
                    let mut probe = tail_bytes[..tail_len].to_vec();
                    probe.extend_from_slice(&data[..data.len().min(3)]);
                    let end = head::find_head_end(&probe, 0)
                        .map(|e| e - tail_len)
                        .or_else(|| head::find_head_end(data, 0));
                    match end {
                        Some(end) => {
                            self.flag(Flags::HEAD_TOO_LARGE);
                            let kept = std::mem::take(&mut self.buf);
                            let parsed = self.parse_cut_head(&kept);
                            self.consume(end, &mut data);
                            self.head_done(parsed, ts, sink);
                        }
                        None => {
                            let skipped = skipped + data.len() as u64;
                            let mut joined = probe;
                            joined.extend_from_slice(&data[data.len().saturating_sub(3)..]);
                            let n = data.len();
                            self.consume(n, &mut data);
                            if skipped > MAX_HEAD_SKIP {
                                // Not a head at all: give up on it.
                                self.buf.clear();
                                self.msg = None;
                                self.stats.lost_heads += 1;
                                self.state = State::Resync;
                            } else {
                                self.state = State::HeadOverflow {
                                    tail: tail3(&joined),
                                    skipped,
                                };
                            }
                        }
                    }
                }
                State::Body { remaining } => {
                    let n = (remaining.min(data.len() as u64)) as usize;
                    self.body_bytes(&data[..n], ts, limits);
                    self.consume(n, &mut data);
                    let left = remaining - n as u64;
                    if left == 0 {
                        self.finish(ts, sink);
                    } else {
                        self.state = State::Body { remaining: left };
                    }
                }
                State::UntilClose => {
                    let n = data.len();
                    self.body_bytes(data, ts, limits);
                    self.consume(n, &mut data);
                }
                State::ChunkSize => {
                    let Some(line) = self.take_line(&mut data, ts) else {
                        if self.buf.len() > MAX_CHUNK_LINE {
                            self.framing_lost(ts, sink);
                        }
                        continue;
                    };
                    match parse_chunk_size(&line) {
                        Some(0) => self.state = State::Trailers,
                        Some(size) => self.state = State::ChunkData { remaining: size },
                        None => self.framing_lost(ts, sink),
                    }
                }
                State::ChunkData { remaining } => {
                    let n = (remaining.min(data.len() as u64)) as usize;
                    self.body_bytes(&data[..n], ts, limits);
                    self.consume(n, &mut data);
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::ChunkDataEnd
                    } else {
                        State::ChunkData { remaining: left }
                    };
                }
                State::ChunkDataEnd => {
                    match data[0] {
                        b'\r' => self.consume(1, &mut data),
                        b'\n' => {
                            self.consume(1, &mut data);
                            self.state = State::ChunkSize;
                        }
                        _ => {
                            // The chunk was longer than declared: lenient, flag it.
                            if let Some(m) = self.msg.as_mut() {
                                m.flags |= Flags::MALFORMED;
                            }
                            self.state = State::ChunkSize;
                        }
                    }
                }
                State::Trailers => {
                    let Some(line) = self.take_line(&mut data, ts) else {
                        if self.buf.len() > limits.max_head_bytes {
                            self.framing_lost(ts, sink);
                        }
                        continue;
                    };
                    if line.is_empty() {
                        self.finish(ts, sink);
                    } else if let Some(m) = self.msg.as_mut()
                        && let Some(colon) = memchr::memchr(b':', &line)
                        && m.head.headers.len() < head::MAX_HEADERS
                    {
                        m.head.headers.push(
                            String::from_utf8_lossy(&line[..colon]).trim().to_string(),
                            String::from_utf8_lossy(&line[colon + 1..])
                                .trim()
                                .to_string(),
                        );
                    }
                }
                // Not HTTP/1 any more: the caller hands these bytes on.
                State::Tunnel => break,
                State::Done => {
                    let n = data.len();
                    self.consume(n, &mut data);
                }
                State::Resync => {
                    // Rare: only after lost bytes or garbage, so the copy is fine.
                    let rest = data.to_vec();
                    let offset = self.pos;
                    self.buf.clear();
                    self.feed(offset, &rest, ts, peer_ack, limits, sink);
                    return;
                }
            }
        }
    }

    fn consume(&mut self, n: usize, data: &mut &[u8]) {
        *data = &data[n..];
        self.pos += n as u64;
        if let Some(m) = self.msg.as_mut() {
            m.wire_len += n as u64;
        }
    }

    /// A line (without its line end) once complete, buffering a partial one.
    fn take_line(&mut self, data: &mut &[u8], _ts: i64) -> Option<Vec<u8>> {
        match memchr::memchr(b'\n', data) {
            Some(i) => {
                let mut line = std::mem::take(&mut self.buf);
                line.extend_from_slice(&data[..i]);
                self.consume(i + 1, data);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Some(line)
            }
            None => {
                let room = (MAX_CHUNK_LINE * 16).saturating_sub(self.buf.len());
                self.buf.extend_from_slice(&data[..data.len().min(room)]);
                let n = data.len();
                self.consume(n, data);
                None
            }
        }
    }

    fn flag(&mut self, f: Flags) {
        if let Some(m) = self.msg.as_mut() {
            m.flags |= f;
        }
    }

    /// The first lines of a head that was too long: up to the last complete line.
    fn parse_cut_head(&self, bytes: &[u8]) -> Option<Head> {
        let end = memchr::memrchr(b'\n', bytes)? + 1;
        let mut head = bytes[..end].to_vec();
        head.extend_from_slice(b"\r\n");
        let mut h = self.parse_head(&head)?;
        h.too_many_headers = true;
        Some(h)
    }

    fn parse_head(&self, bytes: &[u8]) -> Option<Head> {
        match self.role {
            Role::Request => head::parse_request(bytes),
            Role::Response => head::parse_response(bytes),
        }
    }

    fn head_done<S: Sink>(&mut self, parsed: Option<Head>, ts: i64, sink: &mut S) {
        let Some(mut msg) = self.msg.take() else {
            return;
        };
        let Some(h) = parsed else {
            // Not a head after all: look for the next message start.
            self.stats.lost_heads += 1;
            self.state = State::Resync;
            return;
        };
        if h.malformed {
            msg.flags |= Flags::MALFORMED;
        }
        if h.too_many_headers {
            msg.flags |= Flags::HEAD_TOO_LARGE;
        }
        msg.head = h;
        msg.head_end_offset = self.pos;
        msg.end_ts = ts;
        let framing = sink.on_head(&mut msg);
        self.msg = Some(msg);
        self.state = match framing {
            Framing::NoBody | Framing::Length(0) => {
                self.finish(ts, sink);
                return;
            }
            Framing::Length(n) => State::Body { remaining: n },
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
            Framing::Tunnel => {
                self.finish(ts, sink);
                self.state = State::Tunnel;
                return;
            }
        };
    }

    fn body_bytes(&mut self, bytes: &[u8], ts: i64, limits: &Limits) {
        if let Some(m) = self.msg.as_mut() {
            m.body.push(bytes, limits.max_body_bytes);
            m.end_ts = ts;
        }
    }

    fn finish<S: Sink>(&mut self, ts: i64, sink: &mut S) {
        self.state = State::Idle;
        if let Some(mut m) = self.msg.take() {
            m.end_offset = self.pos;
            m.end_ts = m.end_ts.max(ts);
            self.stats.messages += 1;
            sink.on_message(m);
        }
    }

    /// Chunk framing broke: the message ends here, flagged, and the parser looks for
    /// the next message.
    fn framing_lost<S: Sink>(&mut self, ts: i64, sink: &mut S) {
        self.buf.clear();
        if let Some(m) = self.msg.as_mut() {
            m.flags |= Flags::MALFORMED;
        }
        self.finish(ts, sink);
        self.state = State::Resync;
    }

    /// `len` bytes of this direction never reached the capture.
    pub fn gap<S: Sink>(&mut self, len: u64, ts: i64, sink: &mut S) {
        self.at_boundary = true;
        let gap_flag = match self.role {
            Role::Request => Flags::REQUEST_GAP,
            Role::Response => Flags::RESPONSE_GAP,
        };
        self.pos += len;
        match self.state {
            State::Body { remaining } => {
                let in_body = remaining.min(len);
                if let Some(m) = self.msg.as_mut() {
                    m.body.gap(in_body);
                    m.wire_len += in_body;
                    m.flags |= gap_flag;
                }
                if len < remaining {
                    self.state = State::Body {
                        remaining: remaining - len,
                    };
                } else {
                    // The message ended inside the gap; what follows it is unknown.
                    self.pos -= len - in_body;
                    self.finish(ts, sink);
                    self.pos += len - in_body;
                    if len > in_body {
                        sink.on_lost(self.last_data_ts);
                        self.state = State::Resync;
                    }
                }
            }
            State::UntilClose => {
                if let Some(m) = self.msg.as_mut() {
                    m.body.gap(len);
                    m.wire_len += len;
                    m.flags |= gap_flag;
                }
            }
            State::ChunkSize | State::ChunkData { .. } | State::ChunkDataEnd | State::Trailers => {
                if let Some(m) = self.msg.as_mut() {
                    m.body.gap(0);
                    m.flags |= gap_flag;
                }
                self.buf.clear();
                self.finish(ts, sink);
                sink.on_lost(self.last_data_ts);
                self.state = State::Resync;
            }
            State::Head | State::HeadOverflow { .. } => {
                self.buf.clear();
                self.msg = None;
                self.stats.lost_heads += 1;
                sink.on_lost(self.last_data_ts);
                self.state = State::Resync;
            }
            State::Idle | State::Resync => {
                self.buf.clear();
                sink.on_lost(self.last_data_ts);
                self.state = State::Resync;
            }
            State::Tunnel | State::Done => {}
        }
    }

    /// The direction ended (FIN, RST, timeout or end of capture).
    pub fn end<S: Sink>(&mut self, ts: i64, sink: &mut S) {
        match self.state {
            State::UntilClose => self.finish(ts, sink),
            State::Body { .. }
            | State::ChunkSize
            | State::ChunkData { .. }
            | State::ChunkDataEnd
            | State::Trailers => {
                if let Some(m) = self.msg.as_mut() {
                    m.flags |= Flags::TRUNCATED;
                }
                self.finish(ts, sink);
            }
            State::Head | State::HeadOverflow { .. } => {
                self.msg = None;
                self.stats.lost_heads += 1;
            }
            State::Idle | State::Resync | State::Tunnel | State::Done => {}
        }
        self.buf.clear();
        if self.state != State::Tunnel {
            self.state = State::Done;
        }
    }
}

/// Chunk size in hex, ignoring extensions (`;name=value`) and surrounding spaces.
pub fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.trim_ascii();
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 15 {
        return None;
    }
    let rest = line[digits..].trim_ascii_start();
    if !(rest.is_empty() || rest[0] == b';') {
        return None;
    }
    let s = std::str::from_utf8(&line[..digits]).ok()?;
    u64::from_str_radix(s, 16).ok()
}

/// Where the first message start is in `buf`: at its beginning or at a line start.
/// `at_boundary` says `buf` begins where a message may well begin (the first byte of
/// the capture, or the first byte after lost data): there a method and a space are
/// evidence enough, even before the request line is complete.
pub fn find_message_start(role: Role, buf: &[u8], at_boundary: bool) -> Option<usize> {
    let looks = |at: usize| match role {
        Role::Request => head::looks_like_request(&buf[at..]),
        Role::Response => head::looks_like_response(&buf[at..]),
    };
    let strong = |at: usize| {
        // After lost bytes only a full signature counts: a known method followed by a
        // target and version, or a status line.
        match role {
            Role::Response => looks(at) == Looks::Yes,
            Role::Request => {
                let line_end = memchr::memchr(b'\n', &buf[at..]).map(|e| at + e);
                match line_end {
                    Some(e) => {
                        looks(at) == Looks::Yes
                            && memchr::memmem::find(&buf[at..e], b" HTTP/1.").is_some()
                    }
                    None => false,
                }
            }
        }
    };
    if strong(0) || (at_boundary && looks(0) == Looks::Yes) {
        return Some(0);
    }
    for nl in memchr::memchr_iter(b'\n', buf) {
        if nl + 1 < buf.len() && strong(nl + 1) {
            return Some(nl + 1);
        }
    }
    None
}

/// With no message start found, where to keep bytes from: an unfinished last line
/// that may still become a start line is kept (up to a head's size); otherwise only a
/// short tail, in case a start straddles the next segment.
fn resync_keep_from(role: Role, buf: &[u8], max_head: usize) -> usize {
    let line_start = memchr::memrchr(b'\n', buf).map_or(0, |i| i + 1);
    let tail = &buf[line_start..];
    let plausible = match role {
        Role::Request => head::looks_like_request(tail) != Looks::No,
        Role::Response => head::looks_like_response(tail) != Looks::No,
    };
    if plausible && tail.len() <= max_head.min(head::MAX_SIGNATURE_LINE) {
        line_start
    } else {
        buf.len().saturating_sub(RESYNC_CARRY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"1a"), Some(26));
        assert_eq!(parse_chunk_size(b"0"), Some(0));
        assert_eq!(parse_chunk_size(b"FF;name=v"), Some(255));
        assert_eq!(parse_chunk_size(b" 10 "), Some(16));
        assert_eq!(parse_chunk_size(b"zz"), None);
        assert_eq!(parse_chunk_size(b"10 x"), None);
        assert_eq!(parse_chunk_size(b"1234567890abcdef0"), None);
    }

    #[test]
    fn message_starts() {
        let find = |r, b: &[u8]| find_message_start(r, b, false);
        assert_eq!(
            find(Role::Response, b"junk\r\nHTTP/1.1 200 OK\r\n"),
            Some(6)
        );
        assert_eq!(find(Role::Response, b"HTTP/1.0 404 x"), Some(0));
        assert_eq!(find(Role::Response, b"xxHTTP/1.1 200 OK\r\n"), None);
        assert_eq!(
            find(Role::Request, b"tail\nGET /x HTTP/1.1\r\nHost: a\r\n"),
            Some(5)
        );
        // Without the version a request line is too weak a signature inside a stream...
        assert_eq!(find(Role::Request, b"tail\nGET /x\r\n"), None);
        assert_eq!(find(Role::Request, b"GET /a-very-long-url"), None);
        // ...but enough right where the capture or a gap starts.
        assert_eq!(
            find_message_start(Role::Request, b"GET /a-very-long-url", true),
            Some(0)
        );
        assert_eq!(
            find_message_start(Role::Request, b"xGET /a HTTP/1.1\n", true),
            None
        );
    }
}
