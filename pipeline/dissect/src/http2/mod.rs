//! HTTP/2 in cleartext (h2c): with prior knowledge (the connection preface), after an
//! HTTP/1.1 `Upgrade: h2c`, or joined mid-connection. gRPC calls are HTTP/2 streams
//! too; [`crate::grpc`] fills their columns.
//!
//! Each direction is cut into frames ([`reader`]) and its header blocks decoded with
//! its own HPACK state ([`hpack`]). A stream is one exchange: request headers, data
//! and trailers from the client, response headers, data and trailers from the server;
//! it becomes an entry when both sides have ended, when it is reset, when GOAWAY says
//! it was not processed, or when the connection goes. Server pushes are entries of
//! their promised streams, linked to the entry of the stream that promised them.
//!
//! Where the HPACK state is unknown (a capture joined mid-connection, bytes lost) a
//! header field that refers to an unknown table entry is not invented: the entry is
//! flagged `malformed` and says how many fields could not be decoded. Fields that do
//! not depend on the lost state (literals, the static table) are still read, and the
//! state recovers as the peer adds entries.

pub mod frame;
pub mod hpack;
pub mod reader;

use std::collections::{BTreeMap, VecDeque};

use reef_reassembly::{Dir, FlowCtx};
use reef_schema::{Body, Entry, Flags, Headers, Protocol, Transport};

use self::frame::{
    CONTINUATION, END_HEADERS, END_STREAM, FrameHeader, HEADER_LEN, HEADERS, PREFACE, PUSH_PROMISE,
};
use self::hpack::Sender;
use self::reader::{Event, Reader};
use crate::body::{self, BodyBudget, BodyCollector};
use crate::{Limits, Output, Probe, Seg, StreamDissector, grpc};

/// Largest header block (HEADERS or PUSH_PROMISE and its CONTINUATIONs); a larger one
/// is not decoded (flagged `head_too_large`) and the direction's HPACK state becomes
/// unknown.
pub const MAX_HEADER_BLOCK_BYTES: usize = reader::MAX_BUFFERED_FRAME;
/// Streams tracked per connection; past this the oldest is emitted as it stands.
pub const MAX_STREAMS: usize = 1024;
/// Entries of server pushes held until the entry of the stream that promised them.
pub const MAX_HELD_PUSHES: usize = 256;
/// Entry ids of recently finished streams remembered for linking pushes to them.
const RECENT_IDS: usize = 64;

#[derive(Debug, Default, Clone, Copy)]
pub struct Http2Stats {
    pub connections: u64,
    pub streams: u64,
    pub resets: u64,
    pub goaways: u64,
    pub pushes: u64,
    /// Header fields not decoded because the HPACK state was unknown.
    pub unknown_fields: u64,
    /// Header blocks lost, broken or too large (the HPACK state was forgotten).
    pub lost_blocks: u64,
    /// Times a direction lost the framing.
    pub desyncs: u64,
    /// Bytes passed over while looking for frames again.
    pub skipped_bytes: u64,
    /// Streams emitted early because [`MAX_STREAMS`] were open.
    pub evicted_streams: u64,
    pub timeouts: u64,
}

impl Http2Stats {
    pub fn merge(&mut self, o: &Http2Stats) {
        self.connections += o.connections;
        self.streams += o.streams;
        self.resets += o.resets;
        self.goaways += o.goaways;
        self.pushes += o.pushes;
        self.unknown_fields += o.unknown_fields;
        self.lost_blocks += o.lost_blocks;
        self.desyncs += o.desyncs;
        self.skipped_bytes += o.skipped_bytes;
        self.evicted_streams += o.evicted_streams;
        self.timeouts += o.timeouts;
    }
}

/// Does `dir` speak HTTP/2? The client preface says so from the start; a connection
/// joined mid-way needs frames that hold together and a header block whose first
/// field tells a request from a response.
pub fn probe(ctx: &FlowCtx, dir: Dir, bytes: &[u8]) -> Probe {
    let n = bytes.len().min(PREFACE.len());
    if bytes[..n] == PREFACE[..n] {
        return if n == PREFACE.len() {
            Probe::Client(dir)
        } else {
            Probe::NotYet
        };
    }
    if !ctx.midstream[dir.index()] {
        // A server may send its SETTINGS before the client's preface is seen.
        return match FrameHeader::parse(bytes) {
            Some(h)
                if h.kind == frame::SETTINGS
                    && h.plausible(frame::reserved_bit(bytes), frame::DEFAULT_MAX_FRAME) =>
            {
                Probe::NotYet
            }
            None if bytes.len() < HEADER_LEN && bytes.first().is_none_or(|&b| b == 0) => {
                Probe::NotYet
            }
            _ => Probe::No,
        };
    }
    let undecided = if bytes.len() < crate::MAX_DETECT_BYTES {
        Probe::NotYet
    } else {
        Probe::No
    };
    let Ok(mut p) = frame::find_frame_start(bytes, 0, frame::DEFAULT_MAX_FRAME) else {
        return undecided;
    };
    loop {
        let Some(h) = FrameHeader::parse(&bytes[p..]) else {
            return undecided;
        };
        if !h.plausible(frame::reserved_bit(&bytes[p..]), frame::DEFAULT_MAX_FRAME) {
            return Probe::No;
        }
        let end = p + HEADER_LEN + h.len as usize;
        let Some(payload) = bytes.get(p + HEADER_LEN..end) else {
            return undecided;
        };
        match h.kind {
            HEADERS => {
                let sender = frame::headers_fragment(&h, payload)
                    .ok()
                    .and_then(hpack::first_field_sender);
                match sender {
                    Some(Sender::Client) => return Probe::Client(dir),
                    Some(Sender::Server) => return Probe::Client(dir.flip()),
                    None => {}
                }
            }
            PUSH_PROMISE => return Probe::Client(dir.flip()),
            _ => {}
        }
        p = end;
    }
}

/// HTTP/2 with prior knowledge (or joined mid-connection).
pub fn make(client: Dir, ctx: &FlowCtx, out: &Output) -> Box<dyn StreamDissector> {
    Box::new(Http2::new(client, ctx, out))
}

/// HTTP/2 after `Upgrade: h2c`: the upgrade request was stream 1, whose response comes
/// as HTTP/2.
pub fn make_upgraded(client: Dir, ctx: &FlowCtx, out: &Output) -> Box<dyn StreamDissector> {
    let mut h = Http2::new(client, ctx, out);
    let c = ctx.endpoints[client.index()];
    let s = ctx.endpoints[client.flip().index()];
    let upgrade = out
        .entries
        .iter()
        .rev()
        .find(|e| {
            e.flags.contains(Flags::UPGRADE)
                && e.src_ip == c.ip
                && e.src_port == Some(c.port)
                && e.dst_ip == s.ip
                && e.dst_port == Some(s.port)
        })
        .cloned();
    if let Some(settings) = upgrade
        .as_ref()
        .and_then(|e| e.request_headers.as_ref())
        .and_then(|h| h.get("http2-settings"))
        .and_then(base64url)
    {
        // The client's settings, sent in the upgrade request (RFC 7540 §3.2.1).
        h.apply_settings(client, &settings);
    }
    let mut st = Stream::new(&h.budget);
    st.req.ended = true;
    if let Some(up) = &upgrade {
        st.req.start_ts = Some(up.timestamp);
        st.req.end_ts = up.timestamp;
        st.req.wire = up.request_size.unwrap_or(0);
    }
    st.upgrade = Some(Box::new(upgrade.unwrap_or_default()));
    h.streams.insert(1, st);
    h.opened[0] = Some((1, 1));
    Box::new(h)
}

/// The HTTP2-Settings header value: base64url without padding.
fn base64url(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim().bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// One side (request or response) of a stream.
struct Msg {
    headers: Option<Headers>,
    /// Later header blocks (trailers), appended to the headers in the entry.
    trailers: Headers,
    /// Header blocks seen, decoded or not (interim responses not counted).
    blocks: u32,
    /// DATA frames of it seen (whole, in part or lost), with its header block or not.
    data: bool,
    body: BodyCollector,
    framer: grpc::Framer,
    start_ts: Option<i64>,
    end_ts: i64,
    /// Bytes of this side's frames, headers included.
    wire: u64,
    ended: bool,
    flags: Flags,
    /// Header fields that could not be decoded.
    unknown_fields: usize,
}

impl Msg {
    fn new(budget: &BodyBudget) -> Msg {
        Msg {
            headers: None,
            trailers: Headers::new(),
            blocks: 0,
            data: false,
            body: BodyCollector::with_budget(budget.clone()),
            framer: grpc::Framer::default(),
            start_ts: None,
            end_ts: 0,
            wire: 0,
            ended: false,
            flags: Flags::empty(),
            unknown_fields: 0,
        }
    }

    fn started(&self) -> bool {
        self.start_ts.is_some()
    }

    fn touch(&mut self, start_ts: i64, ts: i64) {
        self.start_ts.get_or_insert(start_ts);
        self.end_ts = self.end_ts.max(ts);
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.as_ref().and_then(|h| h.get(name))
    }
}

struct Stream {
    req: Msg,
    resp: Msg,
    /// 1xx responses came before the final one.
    interim: bool,
    /// The stream whose PUSH_PROMISE opened this one.
    pushed_by: Option<u32>,
    /// Who reset the stream, with which error code.
    reset: Option<(Dir, u32)>,
    /// GOAWAY said it was not processed.
    refused: bool,
    /// The HTTP/1.1 upgrade request this stream answers (stream 1 after `h2c`).
    upgrade: Option<Box<Entry>>,
}

impl Stream {
    fn new(budget: &BodyBudget) -> Stream {
        Stream {
            req: Msg::new(budget),
            resp: Msg::new(budget),
            interim: false,
            pushed_by: None,
            reset: None,
            refused: false,
            upgrade: None,
        }
    }

    fn is_grpc(&self) -> bool {
        let ct = |m: &Msg| m.header("content-type").is_some_and(grpc::is_grpc);
        ct(&self.req) || ct(&self.resp)
    }

    fn done(&self) -> bool {
        self.reset.is_some()
            || self.refused
            || (self.resp.ended && (self.req.ended || !self.req.started()))
    }
}

/// A header block waiting for its CONTINUATION frames.
struct Pending {
    kind: u8,
    stream: u32,
    promised: u32,
    end_stream: bool,
    bytes: Vec<u8>,
    start_ts: i64,
    wire: u64,
    /// Bytes of it were lost, or it outgrew the limit (`too_large`).
    lost: bool,
    too_large: bool,
}

struct Half {
    reader: Reader,
    hpack: hpack::Decoder,
    block: Option<Pending>,
    blocks_seen: u64,
    /// The framing was lost at least once after the start.
    desynced: bool,
}

/// An HTTP/2 connection.
pub struct Http2 {
    client: Dir,
    halves: [Half; 2],
    streams: BTreeMap<u32, Stream>,
    /// Lowest and highest stream id opened in the capture by the client (odd, 0) and by
    /// server push (even, 1): ids between them no longer in `streams` are closed.
    opened: [Option<(u32, u32)>; 2],
    budget: BodyBudget,
    /// Entries of pushes waiting for the entry of their promising stream.
    held_pushes: Vec<(u32, Entry)>,
    /// Entry ids of recently finished streams.
    recent: VecDeque<(u32, String)>,
    /// A GOAWAY with an error code: who sent it, which code.
    goaway_error: Option<(Dir, u32)>,
    pub stats: Http2Stats,
}

impl Http2 {
    pub fn new(client: Dir, ctx: &FlowCtx, out: &Output) -> Http2 {
        let half = |dir: Dir| {
            let mid = ctx.midstream[dir.index()];
            Half {
                reader: Reader::new(dir == client, !mid),
                hpack: if mid {
                    hpack::Decoder::unknown()
                } else {
                    hpack::Decoder::new()
                },
                block: None,
                blocks_seen: 0,
                desynced: false,
            }
        };
        Http2 {
            client,
            halves: [half(Dir::Forward), half(Dir::Reverse)],
            streams: BTreeMap::new(),
            opened: [None, None],
            budget: out.body_budget.clone(),
            held_pushes: Vec::new(),
            recent: VecDeque::new(),
            goaway_error: None,
            stats: Http2Stats {
                connections: 1,
                ..Http2Stats::default()
            },
        }
    }

    /// SETTINGS sent by `from`: they describe what `from` receives.
    fn apply_settings(&mut self, from: Dir, payload: &[u8]) {
        let other = &mut self.halves[from.flip().index()];
        for (id, v) in frame::settings(payload) {
            match id {
                frame::SETTINGS_HEADER_TABLE_SIZE => {
                    other
                        .hpack
                        .set_limit(usize::try_from(v).unwrap_or(usize::MAX));
                }
                frame::SETTINGS_MAX_FRAME_SIZE => {
                    other.reader.max_frame =
                        v.clamp(frame::DEFAULT_MAX_FRAME, frame::MAX_FRAME_LIMIT);
                }
                _ => {}
            }
        }
    }

    fn parity(id: u32) -> usize {
        usize::from(id.is_multiple_of(2))
    }

    fn known_closed(&self, id: u32) -> bool {
        !self.streams.contains_key(&id)
            && self.opened[Self::parity(id)].is_some_and(|(lo, hi)| lo <= id && id <= hi)
    }

    /// Records that a HEADERS or PUSH_PROMISE opened `id`.
    fn open(&mut self, id: u32) {
        let o = &mut self.opened[Self::parity(id)];
        *o = match *o {
            None => Some((id, id)),
            Some((lo, hi)) if id > hi => Some((lo, id)),
            other => other,
        };
    }

    /// The stream `id`, created unless it is known to be over.
    fn stream(&mut self, id: u32, ctx: &FlowCtx, out: &mut Output) -> Option<&mut Stream> {
        if id == 0 || self.known_closed(id) {
            return None;
        }
        if !self.streams.contains_key(&id) {
            if self.streams.len() >= MAX_STREAMS
                && let Some((&oldest, _)) = self.streams.iter().next()
            {
                self.stats.evicted_streams += 1;
                self.emit(oldest, ctx, out, Flags::empty());
            }
            self.stats.streams += 1;
            self.streams.insert(id, Stream::new(&self.budget));
        }
        self.streams.get_mut(&id)
    }

    fn is_client(&self, dir: Dir) -> bool {
        dir == self.client
    }

    fn on_event(&mut self, ctx: &FlowCtx, dir: Dir, ev: Event<'_>, ts: i64, out: &mut Output) {
        let is_req = self.is_client(dir);
        let limit = out.limits.max_body_bytes;
        match ev {
            Event::Frame {
                h,
                payload,
                start_ts,
            } => self.on_frame(ctx, dir, h, payload, start_ts, ts, out),
            Event::Data { h, bytes } => {
                if let Some(st) = self.stream(h.stream, ctx, out) {
                    let m = if is_req { &mut st.req } else { &mut st.resp };
                    m.body.push(bytes, limit);
                    m.framer.push(bytes);
                    m.data = true;
                    m.touch(ts, ts);
                }
            }
            Event::DataEnd { h, start_ts } => {
                if let Some(st) = self.stream(h.stream, ctx, out) {
                    let m = if is_req { &mut st.req } else { &mut st.resp };
                    m.wire += u64::from(h.len) + HEADER_LEN as u64;
                    m.data = true;
                    m.touch(start_ts, ts);
                    if h.has(END_STREAM) {
                        m.ended = true;
                    }
                    self.maybe_finish(h.stream, ctx, out);
                }
            }
            Event::DataLost { h, len } => {
                if let Some(st) = self.stream(h.stream, ctx, out) {
                    let m = if is_req { &mut st.req } else { &mut st.resp };
                    m.body.gap(len);
                    m.framer.gap(len);
                    m.flags |= gap_flag(is_req);
                    m.data = true;
                    m.touch(ts, ts);
                }
            }
            Event::FrameLost {
                h,
                start_ts,
                too_large,
            } => {
                let half = &mut self.halves[dir.index()];
                match h.kind {
                    HEADERS | PUSH_PROMISE => {
                        half.block = Some(Pending {
                            kind: h.kind,
                            stream: h.stream,
                            promised: 0,
                            end_stream: h.has(END_STREAM),
                            bytes: Vec::new(),
                            start_ts,
                            wire: u64::from(h.len) + HEADER_LEN as u64,
                            lost: !too_large,
                            too_large,
                        });
                        if h.has(END_HEADERS) {
                            self.end_block(ctx, dir, ts, out);
                        }
                    }
                    CONTINUATION => {
                        if let Some(p) = half.block.as_mut() {
                            p.lost |= !too_large;
                            p.too_large |= too_large;
                            p.wire += u64::from(h.len) + HEADER_LEN as u64;
                        }
                        if h.has(END_HEADERS) {
                            self.end_block(ctx, dir, ts, out);
                        }
                    }
                    _ => {}
                }
            }
            Event::Desync => self.desync(dir),
            Event::Resync { .. } => {}
        }
    }

    /// The framing of `dir` is lost: its HPACK state goes, and every stream it was
    /// sending on may have lost bytes.
    fn desync(&mut self, dir: Dir) {
        self.stats.desyncs += 1;
        let half = &mut self.halves[dir.index()];
        half.desynced = true;
        half.hpack.forget();
        if half.block.take().is_some() {
            self.stats.lost_blocks += 1;
        }
        let is_req = self.is_client(dir);
        for st in self.streams.values_mut() {
            let m = if is_req { &mut st.req } else { &mut st.resp };
            if !m.ended {
                m.flags |= gap_flag(is_req);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_frame(
        &mut self,
        ctx: &FlowCtx,
        dir: Dir,
        h: FrameHeader,
        payload: &[u8],
        start_ts: i64,
        ts: i64,
        out: &mut Output,
    ) {
        let i = dir.index();
        if let Some(p) = &self.halves[i].block
            && (h.kind != CONTINUATION || h.stream != p.stream)
        {
            // A header block left unfinished (RFC 9113 §6.10 forbids other frames
            // in between): what it added to the HPACK table is unknown.
            if let Some(mut p) = self.halves[i].block.take() {
                p.lost = true;
                self.halves[i].block = Some(p);
                self.end_block(ctx, dir, ts, out);
            }
        }
        let wire = u64::from(h.len) + HEADER_LEN as u64;
        match h.kind {
            HEADERS | PUSH_PROMISE => {
                let parsed = if h.kind == HEADERS {
                    frame::headers_fragment(&h, payload).map(|f| (0, f))
                } else {
                    frame::push_promise(&h, payload)
                };
                let (promised, frag, lost) = match parsed {
                    Ok((promised, frag)) => (promised, frag, false),
                    Err(_) => (0, &[][..], true),
                };
                let mut p = Pending {
                    kind: h.kind,
                    stream: h.stream,
                    promised,
                    end_stream: h.has(END_STREAM),
                    bytes: Vec::new(),
                    start_ts,
                    wire,
                    lost,
                    too_large: false,
                };
                if h.has(END_HEADERS) {
                    self.decode_block(ctx, dir, p, frag, ts, out);
                } else {
                    p.bytes.extend_from_slice(frag);
                    self.halves[i].block = Some(p);
                }
            }
            CONTINUATION => {
                let Some(p) = self.halves[i].block.as_mut() else {
                    return;
                };
                p.wire += wire;
                if p.bytes.len() + payload.len() > MAX_HEADER_BLOCK_BYTES {
                    p.too_large = true;
                    p.bytes = Vec::new();
                } else if !p.too_large {
                    p.bytes.extend_from_slice(payload);
                }
                if h.has(END_HEADERS) {
                    self.end_block(ctx, dir, ts, out);
                }
            }
            frame::SETTINGS if !h.has(frame::ACK) => self.apply_settings(dir, payload),
            frame::RST_STREAM => {
                let code = frame::rst_stream(payload).unwrap_or(0);
                if self.streams.contains_key(&h.stream) {
                    self.stats.resets += 1;
                    let is_req = self.is_client(dir);
                    if let Some(st) = self.streams.get_mut(&h.stream) {
                        st.reset = Some((dir, code));
                        let m = if is_req { &mut st.req } else { &mut st.resp };
                        m.wire += wire;
                        m.end_ts = m.end_ts.max(ts);
                    }
                    self.maybe_finish(h.stream, ctx, out);
                }
            }
            frame::GOAWAY => {
                if let Some((last, code)) = frame::goaway(payload) {
                    self.stats.goaways += 1;
                    if code != 0 {
                        self.goaway_error = Some((dir, code));
                    }
                    // Streams the other side opened above `last` were not processed.
                    let theirs = usize::from(dir == self.client);
                    let refused: Vec<u32> = self
                        .streams
                        .iter()
                        .filter(|(id, st)| {
                            **id > last && Self::parity(**id) == theirs && st.resp.blocks == 0
                        })
                        .map(|(id, _)| *id)
                        .collect();
                    for id in refused {
                        if let Some(st) = self.streams.get_mut(&id) {
                            st.refused = true;
                        }
                        self.maybe_finish(id, ctx, out);
                    }
                }
            }
            _ => {}
        }
    }

    /// The last frame of the pending header block of `dir` arrived.
    fn end_block(&mut self, ctx: &FlowCtx, dir: Dir, ts: i64, out: &mut Output) {
        if let Some(mut p) = self.halves[dir.index()].block.take() {
            let bytes = std::mem::take(&mut p.bytes);
            self.decode_block(ctx, dir, p, &bytes, ts, out);
        }
    }

    /// A whole header block of `dir`: decoded, and given to its stream.
    fn decode_block(
        &mut self,
        ctx: &FlowCtx,
        dir: Dir,
        p: Pending,
        bytes: &[u8],
        ts: i64,
        out: &mut Output,
    ) {
        let is_req = self.is_client(dir);
        let half = &mut self.halves[dir.index()];
        let mut flags = Flags::empty();
        let mut unknown = 0usize;
        let headers = if p.lost || p.too_large {
            self.stats.lost_blocks += 1;
            half.hpack.forget();
            flags |= if p.too_large {
                Flags::HEAD_TOO_LARGE
            } else {
                gap_flag(is_req)
            };
            None
        } else {
            if half.hpack.is_uncertain() && half.blocks_seen == 0 && !half.desynced && p.stream == 1
            {
                // Stream 1 is the first a client opens, so its request head is the
                // client's first header block, and (when the capture saw that request
                // and no other) the server's first block answers it or promises on
                // it: the table was empty then, whatever came before the capture.
                let sender = hpack::first_field_sender(bytes);
                let only_stream_1 = self.opened[0] == Some((1, 1));
                let first = match (is_req, p.kind) {
                    (true, HEADERS) => sender == Some(Sender::Client),
                    (false, HEADERS) => sender == Some(Sender::Server) && only_stream_1,
                    (false, _) => sender == Some(Sender::Client) && only_stream_1,
                    _ => false,
                };
                if first {
                    half.hpack.starts_empty();
                }
            }
            let block = half.hpack.decode(bytes, out.limits.max_head_bytes);
            if block.unknown > 0 || block.error.is_some() || block.bad_size_update {
                flags |= Flags::MALFORMED;
            }
            if block.error.is_some() {
                self.stats.lost_blocks += 1;
            }
            if block.dropped > 0 {
                flags |= Flags::HEAD_TOO_LARGE;
            }
            unknown = block.unknown + usize::from(block.error.is_some());
            self.stats.unknown_fields += block.unknown as u64;
            Some(Headers(block.fields))
        };
        half.blocks_seen += 1;
        let status = headers
            .as_ref()
            .and_then(|h| h.get(":status"))
            .and_then(|s| s.parse::<u16>().ok());

        if p.kind == PUSH_PROMISE {
            if is_req || p.promised == 0 || self.known_closed(p.promised) {
                return;
            }
            self.stats.pushes += 1;
            let parent = p.stream;
            let created = self.stream(p.promised, ctx, out).is_some();
            if created {
                self.open(p.promised);
            }
            if let Some(st) = self.streams.get_mut(&p.promised) {
                st.pushed_by = Some(parent);
                st.req.headers = headers;
                st.req.blocks = 1;
                st.req.flags |= flags;
                st.req.unknown_fields = unknown;
                st.req.wire += p.wire;
                st.req.touch(p.start_ts, ts);
                st.req.ended = true;
            }
            // The promise's bytes are part of the promising stream's response.
            if let Some(st) = self.streams.get_mut(&parent) {
                st.resp.wire += p.wire;
            }
            return;
        }
        let opens = is_req
            && !self.streams.contains_key(&p.stream)
            && self.opened[0].is_none_or(|(_, hi)| p.stream > hi);
        if self.stream(p.stream, ctx, out).is_none() {
            return;
        }
        if opens {
            self.open(p.stream);
        }
        let Some(st) = self.streams.get_mut(&p.stream) else {
            return;
        };
        let m = if is_req { &mut st.req } else { &mut st.resp };
        m.wire += p.wire;
        m.touch(p.start_ts, ts);
        if !is_req && status.is_some_and(|s| (100..200).contains(&s) && s != 101) {
            st.interim = true;
            return;
        }
        if m.blocks == 0 {
            m.headers = headers;
        } else if let Some(h) = headers {
            m.trailers.0.extend(h.0);
        }
        m.blocks += 1;
        m.flags |= flags;
        m.unknown_fields += unknown;
        if p.end_stream {
            m.ended = true;
        }
        self.maybe_finish(p.stream, ctx, out);
    }

    fn maybe_finish(&mut self, id: u32, ctx: &FlowCtx, out: &mut Output) {
        if self.streams.get(&id).is_some_and(Stream::done) {
            self.emit(id, ctx, out, Flags::empty());
        }
    }

    /// Emits the entry of stream `id` as it stands, and forgets the stream.
    fn emit(&mut self, id: u32, ctx: &FlowCtx, out: &mut Output, extra: Flags) {
        let Some(st) = self.streams.remove(&id) else {
            return;
        };
        let pushed_by = st.pushed_by;
        let mut e = self.build(id, st, ctx, &out.limits);
        e.flags |= extra;
        e.incomplete = e.flags.intersects(Flags::INCOMPLETE);
        if let Some(parent) = pushed_by {
            match self.recent.iter().find(|(s, _)| *s == parent) {
                Some((_, pid)) => e.parent_id = Some(pid.clone()),
                None if self.streams.contains_key(&parent)
                    && self.held_pushes.len() < MAX_HELD_PUSHES =>
                {
                    self.held_pushes.push((parent, e));
                    return;
                }
                None => {}
            }
        }
        let eid = out.entries.emit(e).to_string();
        if self.recent.len() >= RECENT_IDS {
            self.recent.pop_front();
        }
        self.recent.push_back((id, eid.clone()));
        // Pushes that waited for this entry.
        let mut i = 0;
        while i < self.held_pushes.len() {
            if self.held_pushes[i].0 == id {
                let (_, mut pe) = self.held_pushes.remove(i);
                pe.parent_id = Some(eid.clone());
                out.entries.emit(pe);
            } else {
                i += 1;
            }
        }
    }

    fn build(&self, id: u32, st: Stream, ctx: &FlowCtx, limits: &Limits) -> Entry {
        let c = ctx.endpoints[self.client.index()];
        let s = ctx.endpoints[self.client.flip().index()];
        let grpc = st.is_grpc();
        let Stream {
            req,
            resp,
            interim,
            pushed_by,
            reset,
            refused,
            upgrade,
        } = st;
        let mut e = Entry {
            protocol: Protocol::Http,
            transport: Transport::Tcp,
            src_ip: c.ip,
            src_port: Some(c.port),
            dst_ip: s.ip,
            dst_port: Some(s.port),
            http_version: Some("2".to_string()),
            http2_stream_id: Some(id),
            ..Entry::default()
        };
        let mut flags = req.flags | resp.flags;
        let mut notes: Vec<String> = Vec::new();
        e.timestamp = req.start_ts.or(resp.start_ts).unwrap_or(0);
        if let Some(up) = upgrade {
            e.method = up.method;
            e.path = up.path;
            e.request_headers = up.request_headers;
            e.request_body = up.request_body;
            e.request_body_size = up.request_body_size;
            e.request_size = up.request_size;
            if !up.id.is_empty() {
                e.parent_id = Some(up.id);
            }
            notes.push("response to the h2c upgrade request".into());
        } else {
            e.method = req.header(":method").map(str::to_string);
            e.path = req
                .header(":path")
                .or_else(|| {
                    // CONNECT names an authority, not a path (RFC 9113 §8.5).
                    req.header(":method")
                        .filter(|m| m.eq_ignore_ascii_case("CONNECT"))
                        .and(req.header(":authority"))
                })
                .map(str::to_string);
            if req.started() || req.blocks > 0 {
                e.request_size = Some(req.wire);
            }
        }
        // A side without a header block whose DATA was seen all the same (on a
        // connection joined mid-stream, or after its head was lost) was captured in
        // part: its head is missing, not the message.
        if req.blocks == 0 && pushed_by.is_none() && e.method.is_none() {
            flags |= if req.data {
                Flags::REQUEST_GAP
            } else {
                Flags::NO_REQUEST
            };
        }
        // Interim (1xx) responses alone are no response.
        let resp_seen = resp.blocks > 0 || resp.data;
        if !resp_seen {
            flags |= Flags::NO_RESPONSE;
        } else {
            if resp.blocks == 0 {
                flags |= Flags::RESPONSE_GAP;
            }
            if !resp.ended {
                // Reset, or the connection or capture ended, before the response did.
                flags |= Flags::TRUNCATED;
            }
        }
        if interim {
            flags |= Flags::INTERIM_RESPONSE;
        }
        e.status_code = resp.header(":status").and_then(|s| s.parse::<i32>().ok());
        if resp_seen {
            e.response_size = Some(resp.wire);
        }
        if let (Some(start), true) = (req.start_ts, resp.started()) {
            e.elapsed_time = Some((resp.end_ts - start).max(0) / 1000);
        }
        let unknown = req.unknown_fields + resp.unknown_fields;
        if unknown > 0 {
            notes.push(format!(
                "{unknown} header field{} not decodable: HPACK state unknown (capture joined mid-connection or lost bytes)",
                if unknown == 1 { "" } else { "s" }
            ));
        }
        if let Some(parent) = pushed_by {
            notes.push(format!("pushed by the server on stream {parent}"));
        }
        if let Some((by, code)) = reset {
            let who = if by == self.client {
                "client"
            } else {
                "server"
            };
            notes.push(format!("reset by the {who}: {}", frame::error_name(code)));
        }
        if refused {
            notes.push("not processed (GOAWAY)".into());
        } else if let (Some((by, code)), None, false) = (self.goaway_error, reset, resp.ended) {
            let who = if by == self.client {
                "client"
            } else {
                "server"
            };
            notes.push(format!(
                "connection closed by the {who} with GOAWAY: {}",
                frame::error_name(code)
            ));
        }

        let with_trailers = |h: Option<Headers>, t: Headers| -> Option<Headers> {
            match h {
                Some(mut h) => {
                    h.0.extend(t.0);
                    Some(h)
                }
                None if !t.is_empty() => Some(t),
                None => None,
            }
        };
        let req_seen = req.blocks > 0 || req.started();
        let Msg {
            headers: req_headers,
            trailers: req_trailers,
            body: mut req_body,
            framer: req_framer,
            ..
        } = req;
        let Msg {
            headers: resp_headers,
            trailers: resp_trailers,
            body: mut resp_body,
            framer: resp_framer,
            ..
        } = resp;
        if e.request_headers.is_none() {
            e.request_headers = with_trailers(req_headers, req_trailers);
        }
        e.response_headers = with_trailers(resp_headers, resp_trailers);

        if grpc {
            let req_size = req_body.size;
            let resp_size = resp_body.size;
            if req_body.cut || req_body.holed {
                flags |= Flags::REQUEST_BODY_TRUNCATED;
            }
            if resp_body.cut || resp_body.holed {
                flags |= Flags::RESPONSE_BODY_TRUNCATED;
            }
            e.request_body_size = req_seen.then_some(req_size);
            e.response_body_size = resp_seen.then_some(resp_size);
            let req_side = grpc::Side {
                kept: req_body.take_kept(),
                size: req_size,
                framer: &req_framer,
            };
            let resp_side = grpc::Side {
                kept: resp_body.take_kept(),
                size: resp_size,
                framer: &resp_framer,
            };
            grpc::finish(&mut e, req_side, resp_side, limits);
            // The summary reads the flags (a request not captured, say).
            e.flags |= flags;
            e.summary = Some(grpc_summary(&e, &notes, &req_framer, &resp_framer));
        } else {
            // The upgrade request's body came with it, over HTTP/1.1.
            if e.request_body.is_none() && req_seen {
                e.request_body_size = Some(req_body.size);
                if req_body.size > 0 {
                    let (b, f) = finish_body(req_body, e.request_headers.as_ref(), limits, true);
                    e.request_body = b;
                    flags |= f;
                }
            }
            if resp_seen {
                e.response_body_size = Some(resp_body.size);
                if resp_body.size > 0 {
                    let (b, f) = finish_body(resp_body, e.response_headers.as_ref(), limits, false);
                    e.response_body = b;
                    flags |= f;
                }
            }
            e.flags |= flags;
            e.summary = Some(http_summary(&e, &notes));
            crate::graphql::enrich(&mut e);
        }
        e.flags |= flags;
        e.incomplete = e.flags.intersects(Flags::INCOMPLETE);
        e
    }

    fn feed(
        &mut self,
        ctx: &FlowCtx,
        dir: Dir,
        data: Option<&[u8]>,
        gap: u64,
        ts: i64,
        out: &mut Output,
    ) {
        let i = dir.index();
        let mut reader = std::mem::take(&mut self.halves[i].reader);
        {
            let mut sink = |ev: Event<'_>| self.on_event(ctx, dir, ev, ts, out);
            match data {
                Some(d) => reader.feed(d, ts, &mut sink),
                None => reader.gap(gap, &mut sink),
            }
        }
        // (SETTINGS in these bytes change the other direction's reader, not this one.)
        self.halves[i].reader = reader;
    }

    fn flush(&mut self, ctx: &FlowCtx, out: &mut Output) {
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            self.emit(id, ctx, out, Flags::empty());
        }
        for (_, e) in std::mem::take(&mut self.held_pushes) {
            out.entries.emit(e);
        }
    }
}

fn gap_flag(is_req: bool) -> Flags {
    if is_req {
        Flags::REQUEST_GAP
    } else {
        Flags::RESPONSE_GAP
    }
}

/// A body kept as transferred, decoded from its content-encoding.
fn finish_body(
    mut b: BodyCollector,
    headers: Option<&Headers>,
    limits: &Limits,
    is_req: bool,
) -> (Option<Body>, Flags) {
    let mut flags = Flags::empty();
    let cut_flag = if is_req {
        Flags::REQUEST_BODY_TRUNCATED
    } else {
        Flags::RESPONSE_BODY_TRUNCATED
    };
    if b.cut || b.holed {
        flags |= cut_flag;
    }
    let complete = !b.cut && !b.holed;
    let kept = b.take_kept();
    let bytes = match headers.and_then(|h| h.get("content-encoding")) {
        Some(enc) if !kept.is_empty() => {
            let d = body::decode(kept, enc, limits.max_body_bytes, complete);
            if d.failed {
                flags |= Flags::BODY_DECODE_ERROR;
            }
            if d.cut {
                flags |= cut_flag;
            }
            d.bytes
        }
        _ => kept,
    };
    (Some(Body(bytes)), flags)
}

fn with_notes(mut s: String, notes: &[String]) -> String {
    if !notes.is_empty() {
        s.push_str(" (");
        s.push_str(&notes.join("; "));
        s.push(')');
    }
    s
}

fn http_summary(e: &Entry, notes: &[String]) -> String {
    let req = match (&e.method, &e.path) {
        (Some(m), Some(p)) => format!("{m} {p}"),
        (Some(m), None) => m.clone(),
        _ if e.flags.contains(Flags::NO_REQUEST) => "(request not captured)".to_string(),
        _ => "(request headers not decodable)".to_string(),
    };
    let resp = match e.status_code {
        Some(s) => s.to_string(),
        None if e.response_headers.is_some() => "(status not decodable)".to_string(),
        None => "(no response)".to_string(),
    };
    with_notes(format!("{req} → {resp}"), notes)
}

fn grpc_summary(e: &Entry, notes: &[String], req: &grpc::Framer, resp: &grpc::Framer) -> String {
    let call = e.path.clone().unwrap_or_else(|| {
        if e.flags.contains(Flags::NO_REQUEST) {
            "(call not captured)".to_string()
        } else {
            "(method not decodable)".to_string()
        }
    });
    let status = match e.grpc_status {
        Some(s) => {
            let name = grpc::status_name(s);
            match &e.grpc_message {
                Some(m) if !m.is_empty() => format!("{s} {name}: {m}"),
                _ => format!("{s} {name}").trim_end().to_string(),
            }
        }
        None if e.flags.contains(Flags::NO_RESPONSE) => "(no response)".to_string(),
        None => "(no status)".to_string(),
    };
    let mut notes = notes.to_vec();
    if req.messages != 1 || resp.messages != 1 {
        let lower = |f: &grpc::Framer| if f.broken { "≥" } else { "" };
        notes.insert(
            0,
            format!(
                "{}{} → {}{} messages",
                lower(req),
                req.messages,
                lower(resp),
                resp.messages
            ),
        );
    }
    with_notes(format!("gRPC {call} → {status}"), &notes)
}

impl StreamDissector for Http2 {
    fn data(&mut self, ctx: &FlowCtx, seg: Seg<'_>, out: &mut Output) {
        self.feed(ctx, seg.dir, Some(seg.data), 0, seg.ts, out);
    }

    fn gap(&mut self, ctx: &FlowCtx, dir: Dir, len: u64, ts: i64, out: &mut Output) {
        self.feed(ctx, dir, None, len, ts, out);
    }

    fn end(&mut self, _ctx: &FlowCtx, _dir: Dir, _ts: i64, _out: &mut Output) {}

    fn closed(&mut self, ctx: &FlowCtx, _ts: i64, out: &mut Output) {
        self.flush(ctx, out);
        for h in &self.halves {
            self.stats.skipped_bytes += h.reader.skipped_bytes;
        }
        out.stats.http2.merge(&self.stats);
        self.stats = Http2Stats::default();
    }

    fn tick(&mut self, ctx: &FlowCtx, now: i64, out: &mut Output) {
        let timeout = out.limits.response_timeout_ns;
        let late: Vec<u32> = self
            .streams
            .iter()
            .filter(|(_, st)| {
                st.resp.blocks == 0
                    && !st.resp.started()
                    && st.req.start_ts.is_some_and(|t| now - t > timeout)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            self.stats.timeouts += 1;
            // Its id stays "opened", so a late response is ignored rather than taken
            // for a response without request.
            self.emit(id, ctx, out, Flags::TIMEOUT);
        }
    }
}

#[cfg(test)]
mod tests;
