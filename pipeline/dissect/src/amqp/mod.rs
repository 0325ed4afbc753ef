//! AMQP 0-9-1 (RabbitMQ and friends): methods, with synchronous requests paired with
//! their `-ok` answer per channel, and messages (basic.publish, deliver, return,
//! get-ok) assembled from their method, content header and body frames.
//!
//! Either side may ask: the broker opens the connection's handshake
//! (connection.start, connection.tune) and closes channels on errors. A close answers
//! the requests still waiting on the channel (or, for connection.close, on every
//! channel) with its reply code: an exchange.declare refused with 406 is one entry
//! with status 406, followed by the channel.close entry. Entries keep the
//! connection's endpoints (the AMQP client is `src`) whichever side sent the method;
//! the summary says when the broker did.

pub mod frame;
pub mod methods;

use std::collections::VecDeque;

use reef_reassembly::{Dir, FlowCtx};
use reef_schema::{Body, Entry, Flags, Protocol, Transport};
use rustc_hash::FxHashMap;

use self::frame::{At, Event, Framer};
use self::methods::{Args, ContentHeader, Method, Role, Sender};
use crate::body::{BodyBudget, BodyCollector};
use crate::{Output, Probe, Seg, StreamDissector};

/// Channels tracked per connection (RabbitMQ's default channel-max is 2047).
pub const MAX_CHANNELS: usize = 2048;
/// Synchronous requests waiting per channel and side.
pub const MAX_PENDING_PER_CHANNEL: usize = 256;
/// Answers of given-up requests remembered per channel, so that a late answer is
/// dropped rather than reported without its request.
pub const MAX_EXPIRED_PER_CHANNEL: usize = 64;
/// Bytes of a message body shown in a summary.
pub const MAX_SUMMARY_BODY: usize = 64;

/// AMQP's ports, used only to tell the broker from the client on a connection joined
/// mid-way whose frames could come from either side.
const BROKER_PORTS: [u16; 2] = [5672, 5671];
/// Bytes of a connection joined mid-way searched for frames.
const MIDSTREAM_WINDOW: usize = 8192;
/// Bytes skipped looking for the first frame of a connection joined mid-way.
const MAX_PROBE_SKIP: usize = 2048;

pub fn make(client: Dir, ctx: &FlowCtx, out: &Output) -> Box<dyn StreamDissector> {
    Box::new(Amqp::new(client, ctx, out))
}

/// Does `dir` speak AMQP 0-9-1? The protocol header makes it the client; on a
/// connection joined mid-way, frames ending in the frame-end octet with known
/// methods do, the methods telling the side when they can.
pub fn probe(ctx: &FlowCtx, dir: Dir, bytes: &[u8]) -> Probe {
    const MAGIC: &[u8] = b"AMQP";
    let n = bytes.len().min(MAGIC.len());
    if bytes[..n] == MAGIC[..n] {
        if bytes.len() < 8 {
            return Probe::NotYet;
        }
        // 0-9-1, 0-9 and 0-8 headers; 1.0 (`AMQP\0\1\0\0`, TLS and SASL variants)
        // is another protocol.
        return match bytes[4..8] {
            [0, 0, 9, 1] | [0, 0, 9, 0] | [1, 1, 0, 9] | [1, 1, 0, 8] | [1, 1, 8, 0] => {
                Probe::Client(dir)
            }
            _ => Probe::No,
        };
    }
    if !ctx.midstream[dir.index()] {
        return Probe::No;
    }
    let window = &bytes[..bytes.len().min(MIDSTREAM_WINDOW)];
    // The capture may start inside a frame: the first boundary counts.
    let first = (0..window.len().min(MAX_PROBE_SKIP)).find(|&i| {
        matches!(
            frame::boundary_at(&window[i..]),
            frame::Boundary::Yes | frame::Boundary::NeedMore
        )
    });
    let Some(mut at) = first else {
        return if bytes.len() < MAX_PROBE_SKIP {
            Probe::NotYet
        } else {
            Probe::No
        };
    };
    let mut frames = 0;
    let mut method_seen = false;
    let mut side: Option<bool> = None; // Some(true): dir is the client
    while at < window.len() {
        let b = &window[at..];
        match frame::boundary_at(b) {
            frame::Boundary::Yes => {}
            frame::Boundary::No => return Probe::No,
            _ => break,
        }
        let size = u32::from_be_bytes([b[3], b[4], b[5], b[6]]) as usize;
        if b[0] == frame::METHOD {
            method_seen = true;
            let class = u16::from_be_bytes([b[7], b[8]]);
            let method = u16::from_be_bytes([b[9], b[10]]);
            if side.is_none() {
                side = methods::lookup(class, method).and_then(|m| match m.sender {
                    Sender::Client => Some(true),
                    Sender::Server => Some(false),
                    Sender::Either => None,
                });
            }
        }
        frames += 1;
        at += 8 + size;
    }
    if !(method_seen && (frames >= 2 || at == window.len())) {
        return if bytes.len() < MIDSTREAM_WINDOW {
            Probe::NotYet
        } else {
            Probe::No
        };
    }
    let is_client = side.unwrap_or_else(|| {
        let mine = ctx.endpoints[dir.index()].port;
        let theirs = ctx.endpoints[dir.flip().index()].port;
        if BROKER_PORTS.contains(&theirs) != BROKER_PORTS.contains(&mine) {
            BROKER_PORTS.contains(&theirs)
        } else {
            mine > theirs
        }
    });
    Probe::Client(if is_client { dir } else { dir.flip() })
}

/// A method as it was read.
#[derive(Debug)]
struct Read {
    m: &'static Method,
    args: Args,
    at: At,
    flags: Flags,
    /// Sent by the client.
    from_client: bool,
}

/// A message being assembled from its content frames.
#[derive(Debug)]
struct Message {
    method: Read,
    header: Option<ContentHeader>,
    body: BodyCollector,
    /// Body bytes read (or lost) so far.
    got: u64,
    /// Bytes of all its frames on the wire.
    wire: u64,
    end: At,
    flags: Flags,
    /// The basic.get a get-ok answers.
    get: Option<Read>,
}

#[derive(Debug, Default)]
struct Channel {
    /// Synchronous requests waiting for their answer, by sender (0: client).
    waiting: [VecDeque<Read>; 2],
    /// Messages whose content is being read, by sender.
    content: [Option<Message>; 2],
    /// Answers to drop: (sender of the request, class, method answered).
    expired: VecDeque<(usize, u16, u16)>,
}

/// The pairing state, apart from the framers so that they can feed it.
struct Conn {
    client: Dir,
    channels: FxHashMap<u16, Channel>,
    budget: BodyBudget,
    /// Frames of channels not tracked (over [`MAX_CHANNELS`]).
    untracked: u64,
}

/// An AMQP connection.
pub struct Amqp {
    framers: [Framer; 2],
    conn: Conn,
}

impl Amqp {
    pub fn new(client: Dir, ctx: &FlowCtx, out: &Output) -> Amqp {
        Amqp {
            framers: [Framer::new(ctx.midstream[0]), Framer::new(ctx.midstream[1])],
            conn: Conn {
                client,
                channels: FxHashMap::default(),
                budget: out.body_budget.clone(),
                untracked: 0,
            },
        }
    }
}

struct Feed<'a> {
    conn: &'a mut Conn,
    ctx: &'a FlowCtx,
    out: &'a mut Output,
    from_client: bool,
    gap_flag: Flags,
}

fn side(from_client: bool) -> usize {
    usize::from(!from_client)
}

impl frame::Sink for Feed<'_> {
    fn event(&mut self, ev: Event<'_>) {
        let s = side(self.from_client);
        let max_body = self.out.limits.max_body_bytes;
        match ev {
            Event::ProtocolHeader { .. } | Event::Heartbeat => {}
            Event::Method {
                channel,
                class,
                method,
                args,
                at,
                flags,
            } => self.method(channel, class, method, args, at, flags),
            Event::Header {
                channel,
                payload,
                at,
                flags,
            } => {
                let Some(msg) = self.content(channel, s) else {
                    return;
                };
                msg.wire += at.wire_len();
                msg.end = at;
                msg.flags |= flags;
                match methods::content_header(payload) {
                    Some(h) => msg.header = Some(h),
                    None => {
                        msg.flags |= Flags::MALFORMED;
                        msg.header = Some(ContentHeader::default());
                    }
                }
                if msg.header.as_ref().is_some_and(|h| h.body_size == 0) {
                    self.finish_content(channel, s, Flags::empty());
                }
            }
            Event::Body { channel, data } => {
                if let Some(msg) = self.content(channel, s)
                    && msg.header.is_some()
                {
                    msg.body.push(data, max_body);
                    msg.got += data.len() as u64;
                }
            }
            Event::BodyGap { channel, len } => {
                let flag = self.gap_flag;
                if let Some(msg) = self.content(channel, s) {
                    msg.body.gap(len);
                    msg.got += len;
                    msg.flags |= flag;
                }
            }
            Event::BodyEnd { channel, at } => {
                let Some(msg) = self.content(channel, s) else {
                    return;
                };
                if msg.header.is_none() {
                    return;
                }
                msg.wire += at.wire_len();
                msg.end = at;
                let size = msg.header.as_ref().map_or(0, |h| h.body_size);
                if msg.got >= size {
                    self.finish_content(channel, s, Flags::empty());
                }
            }
            Event::Lost => {
                // Frames of the messages being read may be in the lost bytes.
                let flag = self.gap_flag;
                let mut chans: Vec<u16> = self
                    .conn
                    .channels
                    .iter()
                    .filter(|(_, c)| c.content[s].is_some())
                    .map(|(k, _)| *k)
                    .collect();
                chans.sort_unstable();
                for ch in chans {
                    self.finish_content(ch, s, flag);
                }
            }
        }
    }
}

impl Feed<'_> {
    fn content(&mut self, channel: u16, s: usize) -> Option<&mut Message> {
        self.conn
            .channels
            .get_mut(&channel)
            .and_then(|c| c.content[s].as_mut())
    }

    fn channel(&mut self, channel: u16) -> Option<&mut Channel> {
        if !self.conn.channels.contains_key(&channel) && self.conn.channels.len() >= MAX_CHANNELS {
            self.conn.untracked += 1;
            return None;
        }
        Some(self.conn.channels.entry(channel).or_default())
    }

    fn method(&mut self, channel: u16, class: u16, method: u16, args: &[u8], at: At, flags: Flags) {
        let s = side(self.from_client);
        let Some(m) = methods::lookup(class, method) else {
            let e = self.conn.unknown(
                self.ctx,
                channel,
                class,
                method,
                at,
                flags,
                self.from_client,
            );
            self.out.entries.emit(e);
            return;
        };
        let a = methods::args(m, args);
        let mut flags = flags;
        if a.malformed {
            flags |= Flags::MALFORMED;
        }
        let read = Read {
            m,
            args: a,
            at,
            flags,
            from_client: self.from_client,
        };
        // A method where content frames were expected ends that message short.
        if self.content(channel, s).is_some() {
            self.finish_content(channel, s, Flags::TRUNCATED);
        }
        let is_close = matches!((class, method), (10, 50) | (20, 40));
        if is_close {
            self.close_answers(channel, &read);
        }
        let budget = self.conn.budget.clone();
        if self.channel(channel).is_none() {
            return self.emit(channel, Some(read), None, Flags::empty());
        }
        match m.role {
            Role::Sync { .. } if !read.args.no_wait => {
                let overflow = self.conn.channels.get_mut(&channel).and_then(|ch| {
                    (ch.waiting[s].len() >= MAX_PENDING_PER_CHANNEL)
                        .then(|| ch.waiting[s].pop_front())
                        .flatten()
                });
                if let Some(old) = overflow {
                    self.emit(channel, Some(old), None, Flags::NO_RESPONSE);
                }
                if let Some(ch) = self.conn.channels.get_mut(&channel) {
                    ch.waiting[s].push_back(read);
                }
            }
            Role::Sync { .. } | Role::Async => self.emit(channel, Some(read), None, Flags::empty()),
            Role::Content => {
                if let Some(ch) = self.conn.channels.get_mut(&channel) {
                    ch.content[s] = Some(Message::new(read, None, budget));
                }
            }
            Role::Answer | Role::AnswerWithContent => {
                let other = 1 - s;
                let Some(ch) = self.conn.channels.get_mut(&channel) else {
                    return;
                };
                let (req, skipped) =
                    match ch.waiting[other]
                        .iter()
                        .position(|r| answers(r.m, class, method))
                    {
                        // Requests before it on the channel got no answer (a conforming
                        // peer has one synchronous request at a time per channel).
                        Some(i) => {
                            let skipped: Vec<Read> = ch.waiting[other].drain(..i).collect();
                            (ch.waiting[other].pop_front(), skipped)
                        }
                        None => {
                            if let Some(x) = ch.expired.iter().position(|&(o, c, me)| {
                                o == other && answers_ids(c, me, class, method)
                            }) {
                                // The late answer of a request given up on.
                                ch.expired.remove(x);
                                return;
                            }
                            (None, Vec::new())
                        }
                    };
                for r in skipped {
                    self.emit(channel, Some(r), None, Flags::NO_RESPONSE);
                }
                if m.role == Role::AnswerWithContent {
                    let mut msg = Message::new(read, req, budget);
                    if msg.get.is_none() {
                        msg.flags |= Flags::NO_REQUEST;
                    }
                    if let Some(ch) = self.conn.channels.get_mut(&channel) {
                        ch.content[s] = Some(msg);
                    }
                    return;
                }
                match req {
                    Some(req) => self.emit(channel, Some(req), Some(read), Flags::empty()),
                    None => self.emit(channel, None, Some(read), Flags::NO_REQUEST),
                }
                if matches!((class, method), (20, 41) | (10, 51)) {
                    self.closed_channel(channel, class == 10);
                }
            }
        }
    }

    /// A close (from either side) answers the requests the other side still waits
    /// on: those of the channel, or of every channel for connection.close.
    fn close_answers(&mut self, channel: u16, close: &Read) {
        let other = 1 - side(close.from_client);
        let mut chans: Vec<u16> = if close.m.class == 10 {
            self.conn.channels.keys().copied().collect()
        } else {
            vec![channel]
        };
        chans.sort_unstable();
        for ch in chans {
            let waiting: Vec<Read> = match self.conn.channels.get_mut(&ch) {
                Some(c) => c.waiting[other]
                    .iter()
                    .position(|r| !is_close_method(r.m))
                    .map(|_| {
                        let (keep, answered): (Vec<Read>, Vec<Read>) = c.waiting[other]
                            .drain(..)
                            .partition(|r| is_close_method(r.m));
                        c.waiting[other].extend(keep);
                        answered
                    })
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            for r in waiting {
                let e = self
                    .conn
                    .entry(self.ctx, ch, Some(&r), Some(close), None, Flags::empty());
                self.out.entries.emit(e);
            }
        }
    }

    /// After close-ok the channel (or connection) starts afresh.
    fn closed_channel(&mut self, channel: u16, connection: bool) {
        let chans: Vec<u16> = if connection {
            let mut k: Vec<u16> = self.conn.channels.keys().copied().collect();
            k.sort_unstable();
            k
        } else {
            vec![channel]
        };
        for ch in chans {
            let Some(mut c) = self.conn.channels.remove(&ch) else {
                continue;
            };
            for s in 0..2 {
                if let Some(msg) = c.content[s].take() {
                    self.emit_message(ch, msg, Flags::TRUNCATED);
                }
                for r in std::mem::take(&mut c.waiting[s]) {
                    self.emit(ch, Some(r), None, Flags::NO_RESPONSE);
                }
            }
        }
    }

    fn finish_content(&mut self, channel: u16, s: usize, flags: Flags) {
        let Some(msg) = self
            .conn
            .channels
            .get_mut(&channel)
            .and_then(|c| c.content[s].take())
        else {
            return;
        };
        self.emit_message(channel, msg, flags);
    }

    fn emit_message(&mut self, channel: u16, msg: Message, extra: Flags) {
        let mut flags = extra | msg.flags;
        let cut = !extra.is_empty() || msg.header.as_ref().is_none_or(|h| msg.got < h.body_size);
        if cut && !flags.intersects(Flags::REQUEST_GAP | Flags::RESPONSE_GAP) {
            flags |= Flags::TRUNCATED;
        }
        let e = self.conn.message_entry(self.ctx, channel, msg, flags);
        self.out.entries.emit(e);
    }

    fn emit(&mut self, channel: u16, req: Option<Read>, resp: Option<Read>, flags: Flags) {
        let e = self
            .conn
            .entry(self.ctx, channel, req.as_ref(), resp.as_ref(), None, flags);
        self.out.entries.emit(e);
    }
}

impl Message {
    fn new(method: Read, get: Option<Read>, budget: BodyBudget) -> Message {
        Message {
            end: method.at,
            wire: method.at.wire_len(),
            flags: Flags::empty(),
            method,
            header: None,
            body: BodyCollector::with_budget(budget),
            got: 0,
            get,
        }
    }
}

fn answers(req: &Method, class: u16, method: u16) -> bool {
    matches!(req.role, Role::Sync { answers } if answers.contains(&(class, method)))
}

fn answers_ids(req_class: u16, req_method: u16, class: u16, method: u16) -> bool {
    methods::lookup(req_class, req_method).is_some_and(|m| answers(m, class, method))
}

fn is_close_method(m: &Method) -> bool {
    matches!((m.class, m.method), (10, 50) | (20, 40))
}

fn preview(b: &[u8]) -> String {
    let shown = &b[..b.len().min(MAX_SUMMARY_BODY)];
    match std::str::from_utf8(shown) {
        Ok(t) if t.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') => {
            let mut s = t.replace(['\n', '\t'], " ");
            if b.len() > MAX_SUMMARY_BODY {
                s.push('…');
            }
            s
        }
        _ => "(binary)".to_string(),
    }
}

impl Conn {
    fn base(&self, ctx: &FlowCtx, channel: u16) -> Entry {
        let c = ctx.endpoints[self.client.index()];
        let s = ctx.endpoints[self.client.flip().index()];
        Entry {
            protocol: Protocol::Amqp,
            transport: Transport::Tcp,
            src_ip: c.ip,
            src_port: Some(c.port),
            dst_ip: s.ip,
            dst_port: Some(s.port),
            amqp_channel: Some(u32::from(channel)),
            ..Entry::default()
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn unknown(
        &self,
        ctx: &FlowCtx,
        channel: u16,
        class: u16,
        method: u16,
        at: At,
        flags: Flags,
        from_client: bool,
    ) -> Entry {
        let mut e = self.base(ctx, channel);
        let name = format!("{class}.{method}");
        e.timestamp = at.start_ts;
        e.request_size = Some(at.wire_len());
        e.summary = Some(format!(
            "{}unknown method {name}",
            if from_client { "" } else { "(broker) " }
        ));
        e.method = Some(name.clone());
        e.amqp_method = Some(name);
        e.flags = flags | Flags::MALFORMED;
        e.incomplete = e.flags.intersects(Flags::INCOMPLETE);
        e
    }

    /// An entry for a method (`req`) and its answer; either may be missing.
    /// `content` is the answer's message (basic.get-ok).
    #[allow(clippy::too_many_arguments)]
    fn entry(
        &self,
        ctx: &FlowCtx,
        channel: u16,
        req: Option<&Read>,
        resp: Option<&Read>,
        content: Option<(&Message, Vec<u8>)>,
        extra: Flags,
    ) -> Entry {
        let mut e = self.base(ctx, channel);
        let mut flags = extra;
        let head = req.or(resp);
        let mut summary = String::new();
        if let Some(r) = head {
            e.timestamp = r.at.start_ts;
            e.method = Some(r.m.name.to_string());
            e.amqp_method = Some(r.m.name.to_string());
            if req.is_none() {
                summary.push_str("(request not captured) → ");
            }
            summary.push_str(&describe(r));
            columns(&mut e, &r.args, r.m);
            e.status_code = r.args.reply_code.map(i32::from);
        }
        if let Some(r) = req {
            e.request_size = Some(r.at.wire_len());
            flags |= r.flags;
        }
        let expected =
            req.is_some_and(|r| matches!(r.m.role, Role::Sync { .. }) && !r.args.no_wait);
        match resp {
            Some(a) => {
                flags |= a.flags;
                let mut size = a.at.wire_len();
                if let Some(r) = req {
                    e.elapsed_time = Some((a.at.end_ts - r.at.start_ts).max(0) / 1000);
                    // The answer fills what the request left open (a server-named queue).
                    if e.amqp_queue.as_deref().is_none_or(str::is_empty)
                        && let Some(q) = &a.args.queue
                    {
                        e.amqp_queue = Some(q.clone());
                        if e.path.as_deref().is_none_or(str::is_empty) {
                            e.path = Some(q.clone());
                        }
                    }
                    if let Some(code) = a.args.reply_code {
                        e.status_code = Some(i32::from(code));
                    }
                    summary.push_str(" → ");
                    summary.push_str(&describe(a));
                }
                if let Some((msg, body)) = content {
                    size = msg.wire;
                    flags |= msg.flags;
                    e.amqp_exchange = a.args.exchange.clone();
                    e.amqp_routing_key = a.args.routing_key.clone();
                    e.response_body_size = Some(msg.got);
                    if msg.body.cut || msg.body.holed {
                        flags |= Flags::RESPONSE_BODY_TRUNCATED;
                    }
                    summary.push_str(&content_summary(msg, &body));
                    e.response_body = Some(Body(body));
                    if let Some(r) = req {
                        e.elapsed_time = Some((msg.end.end_ts - r.at.start_ts).max(0) / 1000);
                    }
                }
                e.response_size = Some(size);
            }
            None if expected || (req.is_some() && flags.contains(Flags::NO_RESPONSE)) => {
                summary.push_str(" → (no answer)");
            }
            None => {}
        }
        e.summary = Some(summary);
        e.incomplete = flags.intersects(Flags::INCOMPLETE);
        e.flags = flags;
        e
    }

    fn message_entry(&self, ctx: &FlowCtx, channel: u16, mut msg: Message, flags: Flags) -> Entry {
        let body = msg.body.take_kept();
        if msg.method.m.role == Role::AnswerWithContent {
            // basic.get-ok: the answer (with its message) to the basic.get, if seen.
            let get = msg.get.take();
            return self.entry(
                ctx,
                channel,
                get.as_ref(),
                Some(&msg.method),
                Some((&msg, body)),
                flags,
            );
        }
        let mut e = self.entry(ctx, channel, Some(&msg.method), None, None, flags);
        let mut f = e.flags | msg.flags;
        e.request_size = Some(msg.wire);
        e.request_body_size = Some(msg.got);
        if msg.body.cut || msg.body.holed {
            f |= Flags::REQUEST_BODY_TRUNCATED;
        }
        let s = content_summary(&msg, &body);
        e.summary = e.summary.map(|x| x + &s);
        e.request_body = Some(Body(body));
        e.incomplete = f.intersects(Flags::INCOMPLETE);
        e.flags = f;
        e
    }
}

/// The message part of a summary: size, content type and the body's start.
fn content_summary(msg: &Message, body: &[u8]) -> String {
    let mut s = format!(
        " [{} bytes",
        msg.header.as_ref().map_or(msg.got, |h| h.body_size)
    );
    if let Some(ct) = msg.header.as_ref().and_then(|h| h.content_type.as_ref()) {
        s.push(' ');
        s.push_str(ct);
    }
    if !body.is_empty() {
        s.push_str(": ");
        s.push_str(&preview(body));
    }
    s.push(']');
    s
}

/// The columns a method's arguments fill.
fn columns(e: &mut Entry, a: &Args, m: &Method) {
    e.amqp_exchange = a.exchange.clone();
    e.amqp_routing_key = a.routing_key.clone();
    e.amqp_queue = a.queue.clone();
    // `path` is the queue for queue methods and consumers, else the exchange; a
    // message for the default exchange ("") names its queue by routing key.
    e.path = match m.class {
        50 => a.queue.clone(),
        60 if a.queue.is_some() => a.queue.clone(),
        _ => match &a.exchange {
            Some(x) if x.is_empty() => a.routing_key.clone().or(Some(String::new())),
            other => other.clone(),
        },
    };
}

/// One method in words.
fn describe(r: &Read) -> String {
    let a = &r.args;
    let mut s = String::new();
    if !r.from_client {
        s.push_str("(broker) ");
    }
    s.push_str(r.m.name);
    let mut part = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            s.push_str(&format!(" {k}={v:?}"));
        }
    };
    part("queue", &a.queue);
    part("exchange", &a.exchange);
    part("routing_key", &a.routing_key);
    part("consumer_tag", &a.consumer_tag);
    if let Some(t) = a.delivery_tag {
        s.push_str(&format!(" delivery_tag={t}"));
    }
    for d in &a.detail {
        s.push(' ');
        s.push_str(d);
    }
    if let Some(code) = a.reply_code {
        s.push_str(&format!(" {code}"));
        if let Some(t) = &a.reply_text {
            s.push(' ');
            s.push_str(t);
        }
    }
    if let Some((c, m)) = a.failed {
        let name = methods::lookup(c, m).map_or_else(|| format!("{c}.{m}"), |m| m.name.to_string());
        s.push_str(&format!(" (on {name})"));
    }
    if a.no_wait {
        s.push_str(" no_wait");
    }
    if r.flags.contains(Flags::MALFORMED) {
        s.push_str(" (malformed)");
    }
    s
}

impl Amqp {
    fn feed<'a>(
        &'a mut self,
        ctx: &'a FlowCtx,
        dir: Dir,
        out: &'a mut Output,
    ) -> (&'a mut Framer, Feed<'a>) {
        let from_client = dir == self.conn.client;
        let gap_flag = if from_client {
            Flags::REQUEST_GAP
        } else {
            Flags::RESPONSE_GAP
        };
        (
            &mut self.framers[dir.index()],
            Feed {
                conn: &mut self.conn,
                ctx,
                out,
                from_client,
                gap_flag,
            },
        )
    }

    fn give_up_all(&mut self, ctx: &FlowCtx, out: &mut Output, now: Option<i64>) {
        let timeout = out.limits.response_timeout_ns;
        let mut chans: Vec<u16> = self.conn.channels.keys().copied().collect();
        chans.sort_unstable();
        let mut gone: Vec<(u16, Read)> = Vec::new();
        for ch in chans {
            let Some(c) = self.conn.channels.get_mut(&ch) else {
                continue;
            };
            for s in 0..2 {
                while let Some(r) = c.waiting[s].front() {
                    if now.is_some_and(|n| n - r.at.start_ts <= timeout) {
                        break;
                    }
                    let Some(r) = c.waiting[s].pop_front() else {
                        break;
                    };
                    if now.is_some() {
                        if c.expired.len() >= MAX_EXPIRED_PER_CHANNEL {
                            c.expired.pop_front();
                        }
                        c.expired.push_back((s, r.m.class, r.m.method));
                    }
                    gone.push((ch, r));
                }
            }
        }
        gone.sort_by_key(|(_, r)| (r.at.start_ts, r.at.start_offset));
        let flags = if now.is_some() {
            Flags::NO_RESPONSE | Flags::TIMEOUT
        } else {
            Flags::NO_RESPONSE
        };
        for (ch, r) in gone {
            let e = self.conn.entry(ctx, ch, Some(&r), None, None, flags);
            out.entries.emit(e);
        }
    }
}

impl StreamDissector for Amqp {
    fn data(&mut self, ctx: &FlowCtx, seg: Seg<'_>, out: &mut Output) {
        let (framer, mut feed) = self.feed(ctx, seg.dir, out);
        framer.feed(seg.offset, seg.data, seg.ts, seg.peer_ack, &mut feed);
    }

    fn gap(&mut self, ctx: &FlowCtx, dir: Dir, len: u64, _ts: i64, out: &mut Output) {
        let (framer, mut feed) = self.feed(ctx, dir, out);
        let flag = feed.gap_flag;
        framer.gap(len, flag, &mut feed);
    }

    fn end(&mut self, _ctx: &FlowCtx, _dir: Dir, _ts: i64, _out: &mut Output) {}

    fn closed(&mut self, ctx: &FlowCtx, _ts: i64, out: &mut Output) {
        // Messages still being read were cut by the end of the connection.
        for dir in [self.conn.client, self.conn.client.flip()] {
            let (_, mut feed) = self.feed(ctx, dir, out);
            let s = side(feed.from_client);
            let mut chans: Vec<u16> = feed
                .conn
                .channels
                .iter()
                .filter(|(_, c)| c.content[s].is_some())
                .map(|(k, _)| *k)
                .collect();
            chans.sort_unstable();
            for ch in chans {
                feed.finish_content(ch, s, Flags::TRUNCATED);
            }
        }
        self.give_up_all(ctx, out, None);
    }

    fn tick(&mut self, ctx: &FlowCtx, now: i64, out: &mut Output) {
        let timeout = out.limits.response_timeout_ns;
        let late = self.conn.channels.values().any(|c| {
            c.waiting
                .iter()
                .any(|w| w.front().is_some_and(|r| now - r.at.start_ts > timeout))
        });
        if late {
            self.give_up_all(ctx, out, Some(now));
        }
    }
}

#[cfg(test)]
mod tests;
