//! WebSocket (RFC 6455) after an HTTP/1.1 `Upgrade: websocket`: one entry per
//! message.
//!
//! A data message (text or binary) is its first frame and its continuations; control
//! frames (close, ping, pong) are messages of their own, also when they come between
//! the fragments of a data message. Payloads are unmasked and, when the handshake
//! negotiated permessage-deflate (RFC 7692), inflated, with the compression context
//! carried from message to message unless the handshake said otherwise.
//!
//! An entry's endpoints are the connection's: the HTTP client is always `src`. What
//! the client sent fills the `request_*` columns, what the server sent the
//! `response_*` ones, and the summary says which side spoke. `path` is the upgrade
//! request's target and `parent_id` the id of its entry.

pub mod frame;

use flate2::{Decompress, FlushDecompress, Status};
use reef_reassembly::{Dir, FlowCtx};
use reef_schema::{Body, Entry, Flags, Protocol, Transport};

use self::frame::{Header, Parsed};
use crate::body::{BodyBudget, BodyCollector};
use crate::{Output, Seg, StreamDissector};

/// Bytes one message may inflate to. Past it inflating stops; since the compression
/// context runs on from message to message, the direction's later compressed
/// messages are then stored as sent, flagged `body_decode_error`.
pub const MAX_INFLATED_BYTES: u64 = 16 * 1024 * 1024;
/// Characters of a text message shown in the summary.
pub const MAX_SUMMARY_TEXT: usize = 64;

/// The dissector for the bytes after a `101 Switching Protocols` to `websocket`. The
/// upgrade's entry (just emitted by the HTTP/1 dissector) gives the path, the parent
/// id and the negotiated extensions.
pub fn make_upgraded(client: Dir, ctx: &FlowCtx, out: &Output) -> Box<dyn StreamDissector> {
    let c = ctx.endpoints[client.index()];
    let s = ctx.endpoints[client.flip().index()];
    let upgrade = out.entries.iter().rev().find(|e| {
        e.flags.contains(Flags::UPGRADE)
            && e.src_ip == c.ip
            && e.src_port == Some(c.port)
            && e.dst_ip == s.ip
            && e.dst_port == Some(s.port)
    });
    let mut h = Handshake::default();
    if let Some(u) = upgrade {
        h.path = u.path.clone();
        h.parent_id = (!u.id.is_empty()).then(|| u.id.clone());
        if let Some(ext) = u
            .response_headers
            .as_ref()
            .and_then(|r| r.get("sec-websocket-extensions"))
        {
            h.deflate = Deflate::negotiated(ext);
        }
    }
    Box::new(WebSocket::new(client, ctx, out, h))
}

/// What the opening handshake settled.
#[derive(Debug, Default, Clone)]
pub struct Handshake {
    pub path: Option<String>,
    pub parent_id: Option<String>,
    pub deflate: Option<Deflate>,
}

/// permessage-deflate as the server accepted it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Deflate {
    pub client_no_context_takeover: bool,
    pub server_no_context_takeover: bool,
}

impl Deflate {
    /// Reads a `Sec-WebSocket-Extensions` response value.
    pub fn negotiated(value: &str) -> Option<Deflate> {
        value.split(',').find_map(|ext| {
            let mut params = ext.split(';').map(str::trim);
            if !params.next()?.eq_ignore_ascii_case("permessage-deflate") {
                return None;
            }
            let mut d = Deflate::default();
            for p in params {
                let name = p.split('=').next().unwrap_or("").trim();
                if name.eq_ignore_ascii_case("client_no_context_takeover") {
                    d.client_no_context_takeover = true;
                } else if name.eq_ignore_ascii_case("server_no_context_takeover") {
                    d.server_no_context_takeover = true;
                }
            }
            Some(d)
        })
    }
}

/// A message being read.
#[derive(Debug)]
struct Msg {
    opcode: u8,
    start_ts: i64,
    end_ts: i64,
    /// Bytes on the wire, headers included.
    wire: u64,
    frames: u32,
    compressed: bool,
    /// Payload as delivered (unmasked, inflated), its start.
    body: BodyCollector,
    /// Payload bytes as sent (before inflating).
    sent: u64,
    inflated: u64,
    flags: Flags,
}

impl Msg {
    fn new(opcode: u8, ts: i64, budget: &BodyBudget) -> Msg {
        Msg {
            opcode,
            start_ts: ts,
            end_ts: ts,
            wire: 0,
            frames: 0,
            compressed: false,
            body: BodyCollector::with_budget(budget.clone()),
            sent: 0,
            inflated: 0,
            flags: Flags::empty(),
        }
    }
}

/// The frame being read.
#[derive(Debug)]
struct InFrame {
    h: Header,
    /// Payload bytes read so far.
    pos: u64,
    /// It belongs to the control message (not the data message).
    control: bool,
}

/// One direction.
struct Half {
    from_client: bool,
    /// Lost sync or ended: bytes are passed over.
    done: bool,
    head: Vec<u8>,
    frame: Option<InFrame>,
    data: Option<Msg>,
    control: Option<Msg>,
    /// permessage-deflate: the inflater, and whether it is reset after each message.
    inflater: Option<Decompress>,
    no_context_takeover: bool,
    /// Inflating failed or stopped: compressed messages are stored as sent.
    inflate_broken: bool,
    /// Messages read, for the entries.
    ready: Vec<Msg>,
    scratch: Vec<u8>,
}

impl Half {
    fn new(from_client: bool, deflate: Option<Deflate>) -> Half {
        Half {
            from_client,
            done: false,
            head: Vec::with_capacity(frame::MAX_HEADER_LEN),
            frame: None,
            data: None,
            control: None,
            inflater: deflate.map(|_| Decompress::new(false)),
            no_context_takeover: deflate.is_some_and(|d| {
                if from_client {
                    d.client_no_context_takeover
                } else {
                    d.server_no_context_takeover
                }
            }),
            inflate_broken: false,
            ready: Vec::new(),
            scratch: Vec::new(),
        }
    }

    fn feed(&mut self, mut data: &[u8], ts: i64, limit: usize, budget: &BodyBudget) {
        while !data.is_empty() && !self.done {
            let Some(f) = self.frame.as_mut() else {
                let n = (frame::MAX_HEADER_LEN - self.head.len()).min(data.len());
                self.head.extend_from_slice(&data[..n]);
                match frame::header(&self.head) {
                    Parsed::NeedMore => {
                        data = &data[n..];
                    }
                    Parsed::Invalid => {
                        self.lost(Flags::MALFORMED);
                    }
                    Parsed::Header(h) => {
                        // Bytes of the buffer past the header are payload.
                        let over = self.head.len() - h.len;
                        data = &data[n - over..];
                        self.head.clear();
                        self.start_frame(h, ts, budget);
                        if h.payload_len == 0 {
                            self.end_frame(ts, limit);
                        }
                    }
                }
                continue;
            };
            let left = f.h.payload_len - f.pos;
            let n = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
            let mut chunk = data[..n].to_vec();
            if let Some(key) = f.h.mask {
                frame::unmask(&mut chunk, key, f.pos);
            }
            f.pos += n as u64;
            let complete = f.pos == f.h.payload_len;
            let control = f.control;
            self.payload(control, &chunk, ts, limit);
            data = &data[n..];
            if complete {
                self.end_frame(ts, limit);
            }
        }
    }

    fn start_frame(&mut self, h: Header, ts: i64, budget: &BodyBudget) {
        let mut flags = Flags::empty();
        if h.rsv23 || (h.rsv1 && (self.inflater.is_none() && !self.inflate_broken)) {
            flags |= Flags::MALFORMED;
        }
        let control = h.is_control();
        if control {
            if !h.fin || h.payload_len > frame::MAX_CONTROL_PAYLOAD {
                flags |= Flags::MALFORMED;
            }
            if let Some(m) = self.control.take() {
                self.ready.push(m);
            }
            self.control = Some(Msg::new(h.opcode, ts, budget));
        } else if h.opcode == frame::CONTINUATION {
            if self.data.is_none() {
                // Its first frame was not captured.
                let mut m = Msg::new(h.opcode, ts, budget);
                m.flags |= Flags::MALFORMED;
                self.data = Some(m);
            }
        } else {
            if let Some(mut m) = self.data.take() {
                // A new message before the last one's final frame.
                m.flags |= Flags::MALFORMED | Flags::TRUNCATED;
                self.ready.push(m);
            }
            let mut m = Msg::new(h.opcode, ts, budget);
            m.compressed = h.rsv1 && (self.inflater.is_some() || self.inflate_broken);
            self.data = Some(m);
        }
        let m = if control {
            self.control.as_mut()
        } else {
            self.data.as_mut()
        };
        if let Some(m) = m {
            m.flags |= flags;
            m.frames += 1;
            m.wire += h.len as u64 + h.payload_len;
            m.end_ts = ts;
        }
        self.frame = Some(InFrame { h, pos: 0, control });
    }

    fn payload(&mut self, control: bool, chunk: &[u8], ts: i64, limit: usize) {
        let m = if control {
            self.control.as_mut()
        } else {
            self.data.as_mut()
        };
        let Some(m) = m else {
            return;
        };
        m.end_ts = ts;
        m.sent += chunk.len() as u64;
        if !m.compressed {
            m.body.push(chunk, limit);
            return;
        }
        if self.inflate_broken {
            m.flags |= Flags::BODY_DECODE_ERROR;
            m.body.push(chunk, limit);
            return;
        }
        if let Some(d) = self.inflater.as_mut()
            && !inflate(d, chunk, m, &mut self.scratch, limit)
        {
            self.inflate_broken = true;
            self.inflater = None;
        }
    }

    fn end_frame(&mut self, ts: i64, limit: usize) {
        let Some(f) = self.frame.take() else {
            return;
        };
        if f.control {
            if let Some(mut m) = self.control.take() {
                m.end_ts = ts;
                self.ready.push(m);
            }
            return;
        }
        if !f.h.fin {
            return;
        }
        let Some(mut m) = self.data.take() else {
            return;
        };
        m.end_ts = ts;
        if m.compressed && !self.inflate_broken {
            // The sender removed this tail from the end of the message (RFC 7692 §7.2.1).
            let ok = self
                .inflater
                .as_mut()
                .is_some_and(|d| inflate(d, &[0, 0, 0xff, 0xff], &mut m, &mut self.scratch, limit));
            if !ok {
                self.inflate_broken = true;
                self.inflater = None;
            } else if self.no_context_takeover
                && let Some(d) = self.inflater.as_mut()
            {
                d.reset(false);
            }
        }
        self.ready.push(m);
    }

    /// Frame boundaries are lost: what is in progress ends here, flagged.
    fn lost(&mut self, why: Flags) {
        self.done = true;
        self.frame = None;
        self.head.clear();
        for m in [self.control.take(), self.data.take()]
            .into_iter()
            .flatten()
        {
            let mut m = m;
            m.flags |= why;
            self.ready.push(m);
        }
    }

    /// `len` bytes of this direction were not captured.
    fn gap(&mut self, len: u64) {
        let why = if self.from_client {
            Flags::REQUEST_GAP
        } else {
            Flags::RESPONSE_GAP
        };
        let Some(f) = self
            .frame
            .as_mut()
            .filter(|f| f.h.payload_len - f.pos > len)
        else {
            self.lost(why);
            return;
        };
        // Inside a payload: the frame goes on after the hole.
        f.pos += len;
        let m = if f.control {
            self.control.as_mut()
        } else {
            self.data.as_mut()
        };
        if let Some(m) = m {
            m.flags |= why;
            m.sent += len;
            m.body.gap(len);
            if m.compressed {
                m.flags |= Flags::BODY_DECODE_ERROR;
                self.inflate_broken = true;
                self.inflater = None;
            }
        }
    }
}

/// Inflates `input` into `m`'s body; false when the data is corrupt or the message
/// passed [`MAX_INFLATED_BYTES`].
fn inflate(
    d: &mut Decompress,
    mut input: &[u8],
    m: &mut Msg,
    scratch: &mut Vec<u8>,
    limit: usize,
) -> bool {
    scratch.resize(16 * 1024, 0);
    loop {
        let (in0, out0) = (d.total_in(), d.total_out());
        let status = d.decompress(input, scratch, FlushDecompress::Sync);
        let used = (d.total_in() - in0) as usize;
        let made = (d.total_out() - out0) as usize;
        input = &input[used..];
        m.inflated += made as u64;
        m.body.push(&scratch[..made], limit);
        match status {
            Err(_) => {
                m.flags |= Flags::BODY_DECODE_ERROR;
                return false;
            }
            Ok(Status::StreamEnd) => {
                // A final block: the sender starts afresh for the next message.
                d.reset(false);
                return true;
            }
            Ok(_) => {}
        }
        if m.inflated > MAX_INFLATED_BYTES {
            m.flags |= Flags::BODY_DECODE_ERROR;
            return false;
        }
        if (input.is_empty() && made < scratch.len()) || (used == 0 && made == 0) {
            return true;
        }
    }
}

/// A WebSocket connection.
pub struct WebSocket {
    client: Dir,
    halves: [Half; 2],
    base: Entry,
    budget: BodyBudget,
}

impl WebSocket {
    pub fn new(client: Dir, ctx: &FlowCtx, out: &Output, hs: Handshake) -> WebSocket {
        let c = ctx.endpoints[client.index()];
        let s = ctx.endpoints[client.flip().index()];
        let half = |d: Dir| Half::new(d == client, hs.deflate);
        WebSocket {
            client,
            halves: [half(Dir::Forward), half(Dir::Reverse)],
            base: Entry {
                protocol: Protocol::Websocket,
                transport: Transport::Tcp,
                src_ip: c.ip,
                src_port: Some(c.port),
                dst_ip: s.ip,
                dst_port: Some(s.port),
                path: hs.path,
                parent_id: hs.parent_id,
                ..Entry::default()
            },
            budget: out.body_budget.clone(),
        }
    }

    fn flush(&mut self, dir: Dir, out: &mut Output) {
        let h = &mut self.halves[dir.index()];
        if h.ready.is_empty() {
            return;
        }
        let from_client = h.from_client;
        for m in std::mem::take(&mut h.ready) {
            let e = self.entry(m, from_client);
            out.entries.emit(e);
        }
    }

    fn entry(&self, mut m: Msg, from_client: bool) -> Entry {
        let mut e = self.base.clone();
        let name = frame::opcode_name(m.opcode);
        e.timestamp = m.start_ts;
        e.elapsed_time = Some((m.end_ts - m.start_ts).max(0) / 1000);
        e.method = Some(name.into());
        e.ws_opcode = Some(name.into());
        let mut flags = m.flags;
        let body = m.body.take_kept();
        if m.body.cut {
            flags |= if from_client {
                Flags::REQUEST_BODY_TRUNCATED
            } else {
                Flags::RESPONSE_BODY_TRUNCATED
            };
        }
        let summary = summary(&m, &body, from_client);
        let body = Some(Body(body));
        if from_client {
            e.request_size = Some(m.wire);
            e.request_body_size = Some(m.sent);
            e.request_body = body;
        } else {
            e.response_size = Some(m.wire);
            e.response_body_size = Some(m.sent);
            e.response_body = body;
        }
        e.summary = Some(summary);
        e.flags = flags;
        e.incomplete = flags.intersects(Flags::INCOMPLETE);
        e
    }
}

fn summary(m: &Msg, body: &[u8], from_client: bool) -> String {
    let who = if from_client {
        "client → server"
    } else {
        "server → client"
    };
    let name = frame::opcode_name(m.opcode);
    let mut s = format!("{name} ({who}), {} bytes", m.body.size);
    if m.frames > 1 {
        s.push_str(&format!(" in {} frames", m.frames));
    }
    if m.compressed {
        s.push_str(", compressed");
    }
    let text = |b: &[u8]| {
        let t = String::from_utf8_lossy(b);
        // One line: control characters (line breaks…) become spaces.
        let mut cut: String = t
            .chars()
            .take(MAX_SUMMARY_TEXT)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if cut.len() < t.len() {
            cut.push('…');
        }
        cut
    };
    match m.opcode {
        frame::TEXT if !body.is_empty() => s.push_str(&format!(": {}", text(body))),
        frame::CLOSE if body.len() >= 2 => {
            let code = u16::from_be_bytes([body[0], body[1]]);
            s.push_str(&format!(": {code}"));
            if body.len() > 2 {
                s.push_str(&format!(" {}", text(&body[2..])));
            }
        }
        _ => {}
    }
    s
}

impl StreamDissector for WebSocket {
    fn data(&mut self, _ctx: &FlowCtx, seg: Seg<'_>, out: &mut Output) {
        let limit = out.limits.max_body_bytes;
        let h = &mut self.halves[seg.dir.index()];
        if h.done {
            return;
        }
        h.feed(seg.data, seg.ts, limit, &self.budget);
        self.flush(seg.dir, out);
    }

    fn gap(&mut self, _ctx: &FlowCtx, dir: Dir, len: u64, _ts: i64, out: &mut Output) {
        let h = &mut self.halves[dir.index()];
        if h.done {
            return;
        }
        h.gap(len);
        self.flush(dir, out);
    }

    fn end(&mut self, _ctx: &FlowCtx, dir: Dir, _ts: i64, out: &mut Output) {
        let h = &mut self.halves[dir.index()];
        let cut = h.frame.is_some() || !h.head.is_empty() || h.data.is_some();
        if !h.done && cut {
            h.lost(Flags::TRUNCATED);
        }
        h.done = true;
        self.flush(dir, out);
    }

    fn closed(&mut self, ctx: &FlowCtx, ts: i64, out: &mut Output) {
        for dir in [self.client, self.client.flip()] {
            self.end(ctx, dir, ts, out);
        }
    }

    fn tick(&mut self, _ctx: &FlowCtx, _now: i64, _out: &mut Output) {}
}

#[cfg(test)]
mod tests;
