//! Kafka: requests (header v0–v2, classic and flexible versions) paired with their
//! responses by correlation id; the topics a request names, its client id and group,
//! and the error codes of the response.
//!
//! Every message is a 4-byte big-endian length and the message. A broker answers the
//! requests of a connection in the order they came, so a response also tells that
//! the requests sent before its own will get none (lost in the capture). Produce
//! requests with `acks=0` get no response by design: they are entries of their own.
//! Topic ids (Fetch 13+, Produce 13+, OffsetCommit/OffsetFetch 10+) are shown by
//! name when a Metadata response on the connection said which name an id has.

pub mod api;
pub mod wire;

use std::collections::VecDeque;

use reef_reassembly::{Dir, FlowCtx};
use reef_schema::{Entry, Flags, Protocol, Transport};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::framing::{Frame, Framer, Handler, Msg, Resync, scan};
use crate::{Output, Probe, Seg, StreamDissector};

/// Requests waiting for their response per connection; past this the oldest is
/// given up.
pub const MAX_PENDING_REQUESTS: usize = 1024;
/// Longest message accepted as such (brokers refuse requests over
/// `socket.request.max.bytes`, 100 MiB by default; responses can be larger).
pub const MAX_MESSAGE_BYTES: u32 = 1 << 30;
/// Longest request taken for one when detecting.
const MAX_DETECT_REQUEST: u32 = 100 << 20;
/// Topic id → name pairs remembered per connection.
pub const MAX_TOPIC_IDS: usize = 1024;
/// Correlation ids of requests given up (timed out) remembered, so that their late
/// responses are dropped rather than shown as responses without a request.
const MAX_GIVEN_UP: usize = 1024;
/// Bytes kept of a message longer than a segment (the topics of a Produce request
/// come before its records, mostly).
const KEEP: usize = 64 * 1024;
/// Longest client id kept.
const MAX_CLIENT_ID: usize = 256;

pub fn make(client: Dir, ctx: &FlowCtx, out: &Output) -> Box<dyn StreamDissector> {
    Box::new(Kafka::new(client, ctx, out))
}

/// Does `dir` speak Kafka? A request header (a known API key, a plausible version,
/// a client id of printable text) makes it the client. On a connection joined
/// mid-way a request may start anywhere in the first bytes; responses alone say too
/// little, so detection waits for the client's side.
pub fn probe(ctx: &FlowCtx, dir: Dir, bytes: &[u8]) -> Probe {
    match request_header(bytes) {
        Some(true) => return Probe::Client(dir),
        None => return Probe::NotYet,
        Some(false) => {}
    }
    if !ctx.midstream[dir.index()] {
        return Probe::No;
    }
    let window = &bytes[..bytes.len().min(4096)];
    let mut wait = false;
    // Joined inside a request: a later one must be whole and end the bytes (or be
    // followed by another), since a request header is easily found by chance in a
    // response's bytes.
    for i in 1..window.len() {
        match request_header(&window[i..]) {
            Some(true) if whole_requests(&window[i..]) => return Probe::Client(dir),
            None => wait = true,
            _ => {}
        }
    }
    // Responses: length-prefixed frames that fill the bytes exactly.
    if looks_like_responses(window) || wait {
        Probe::NotYet
    } else {
        Probe::No
    }
}

/// Is `b` the start of a request? `None`: more bytes are needed to tell.
fn request_header(b: &[u8]) -> Option<bool> {
    if b.len() < 14 {
        // Judge what is there: a length, an API key, a version.
        let ok = b.get(..4).is_none_or(|l| {
            let len = u32::from_be_bytes([l[0], l[1], l[2], l[3]]);
            (10..=MAX_DETECT_REQUEST).contains(&len)
        }) && b
            .get(4..6)
            .is_none_or(|k| api::name(i16::from_be_bytes([k[0], k[1]])).is_some())
            && b.get(6..8).is_none_or(|v| {
                (0..=api::MAX_PLAUSIBLE_VERSION).contains(&i16::from_be_bytes([v[0], v[1]]))
            });
        return if ok { None } else { Some(false) };
    }
    let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let key = i16::from_be_bytes([b[4], b[5]]);
    let version = i16::from_be_bytes([b[6], b[7]]);
    if !(10..=MAX_DETECT_REQUEST).contains(&len)
        || api::name(key).is_none()
        || !(0..=api::MAX_PLAUSIBLE_VERSION).contains(&version)
    {
        return Some(false);
    }
    let id_len = i16::from_be_bytes([b[12], b[13]]);
    if id_len < -1 || i64::from(id_len) > i64::from(len) - 10 {
        return Some(false);
    }
    let id_len = id_len.max(0) as usize;
    let shown = &b[14.min(b.len())..b.len().min(14 + id_len)];
    if !shown.iter().all(|c| (0x20..0x7f).contains(c)) {
        return Some(false);
    }
    if shown.len() < id_len {
        return None;
    }
    let end = 4 + len as usize;
    if b.len() < end {
        // Mostly zero bytes fit this header by chance (an HTTP/2 SETTINGS frame
        // does): the start of a request must name its client, else the whole
        // request must be there.
        return if id_len > 0 && b.len() >= 32 {
            Some(true)
        } else if b.len() >= MAX_HELD_REQUEST {
            Some(false)
        } else {
            None
        };
    }
    // Nothing but another request may follow a whole one.
    if b.len() > end + 4 {
        let next = u32::from_be_bytes([b[end], b[end + 1], b[end + 2], b[end + 3]]);
        return Some((10..=MAX_DETECT_REQUEST).contains(&next));
    }
    Some(true)
}

/// Bytes of a request without a client id waited for before detection decides.
const MAX_HELD_REQUEST: usize = 8 * 1024;

/// Requests that fill `b` exactly.
fn whole_requests(b: &[u8]) -> bool {
    let mut at = 0;
    while at < b.len() {
        if request_header(&b[at..]) != Some(true) {
            return false;
        }
        let len = u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        at += 4 + len as usize;
    }
    at == b.len()
}

/// Frames (a length, at least a correlation id) that end exactly where the bytes do.
fn looks_like_responses(b: &[u8]) -> bool {
    let mut at = 0;
    let mut n = 0;
    while at + 4 <= b.len() && n < 16 {
        let len = u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        if !(4..=MAX_MESSAGE_BYTES).contains(&len) {
            return false;
        }
        at += 4 + len as usize;
        n += 1;
    }
    n > 0 && at >= b.len()
}

/// A request waiting for its response.
#[derive(Debug)]
struct Pending {
    key: i16,
    version: i16,
    correlation_id: i32,
    client_id: Option<String>,
    req: api::Request,
    start_ts: i64,
    size: u64,
    flags: Flags,
}

struct Core {
    client: Dir,
    base: Entry,
    pending: FxHashMap<i32, Pending>,
    /// Correlation ids in the order the requests came.
    order: VecDeque<i32>,
    given_up: FxHashSet<i32>,
    given_up_order: VecDeque<i32>,
    topic_names: FxHashMap<[u8; 16], String>,
    /// SASL tokens without Kafka framing follow (SaslHandshake v0).
    sasl_raw: bool,
    /// Response bytes were lost since the last response.
    resp_lost: bool,
}

/// A Kafka connection.
pub struct Kafka {
    halves: [Framer; 2],
    core: Core,
}

impl Kafka {
    pub fn new(client: Dir, ctx: &FlowCtx, out: &Output) -> Kafka {
        let c = ctx.endpoints[client.index()];
        let s = ctx.endpoints[client.flip().index()];
        let base = Entry {
            protocol: Protocol::Kafka,
            transport: Transport::Tcp,
            src_ip: c.ip,
            src_port: Some(c.port),
            dst_ip: s.ip,
            dst_port: Some(s.port),
            ..Entry::default()
        };
        let budget = &out.body_budget;
        Kafka {
            halves: [
                Framer::new(Dir::Forward, KEEP, budget.clone()),
                Framer::new(Dir::Reverse, KEEP, budget.clone()),
            ],
            core: Core {
                client,
                base,
                pending: FxHashMap::default(),
                order: VecDeque::new(),
                given_up: FxHashSet::default(),
                given_up_order: VecDeque::new(),
                topic_names: FxHashMap::default(),
                sasl_raw: false,
                resp_lost: false,
            },
        }
    }
}

impl Handler for Core {
    fn frame(&mut self, _dir: Dir, head: &[u8]) -> Frame {
        let Some(l) = head.get(..4) else {
            return Frame::More;
        };
        let len = u32::from_be_bytes([l[0], l[1], l[2], l[3]]);
        if !(4..=MAX_MESSAGE_BYTES).contains(&len) {
            return Frame::Bad;
        }
        Frame::Len(4 + u64::from(len))
    }

    fn resync(&mut self, dir: Dir, window: &[u8]) -> Resync {
        if dir == self.client {
            scan(window, request_header)
        } else {
            // A response to a waiting request (its correlation id says so), or whole
            // responses that fill the bytes exactly (to requests not captured).
            scan(window, |b| {
                let h = b.get(..8)?;
                let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
                let id = i32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                if !(4..=MAX_MESSAGE_BYTES).contains(&len) {
                    return Some(false);
                }
                Some(
                    self.pending.contains_key(&id)
                        || (b.len() >= 4 + len as usize && looks_like_responses(b)),
                )
            })
        }
    }

    fn message(&mut self, dir: Dir, m: Msg<'_>, out: &mut Output) {
        if dir == self.client {
            self.request(m, out);
        } else {
            self.response(m, out);
        }
    }

    fn lost(&mut self, dir: Dir, _ts: i64, _out: &mut Output) {
        if dir != self.client {
            self.resp_lost = true;
        }
    }
}

fn msg_flags(m: &Msg<'_>, request: bool) -> Flags {
    let mut f = Flags::empty();
    if m.gap {
        f |= if request {
            Flags::REQUEST_GAP
        } else {
            Flags::RESPONSE_GAP
        };
    }
    if m.truncated {
        f |= Flags::TRUNCATED;
    }
    f
}

impl Core {
    fn request(&mut self, m: Msg<'_>, out: &mut Output) {
        let b = m.bytes;
        let header = (b.len() >= 12).then(|| {
            (
                i16::from_be_bytes([b[4], b[5]]),
                i16::from_be_bytes([b[6], b[7]]),
                i32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            )
        });
        let Some((key, version, correlation_id)) = header else {
            return;
        };
        if self.sasl_raw {
            if request_header(b) == Some(true) {
                self.sasl_raw = false;
            } else {
                // A SASL token (SaslHandshake v0): not a Kafka request.
                return;
            }
        }
        let mut flags = msg_flags(&m, true);
        if api::name(key).is_none() || !(0..=api::MAX_PLAUSIBLE_VERSION).contains(&version) {
            flags |= Flags::MALFORMED;
        }
        // The header: client id (a classic nullable string even in header v2), then
        // tagged fields in v2.
        let mut r = wire::Reader::new(&b[12..], false);
        let hv = api::request_header_version(key, version);
        let client_id = if hv >= 1 {
            match r.string() {
                Some(id) => id.map(|s| {
                    String::from_utf8_lossy(&s[..s.len().min(MAX_CLIENT_ID)]).into_owned()
                }),
                None => {
                    flags |= Flags::MALFORMED;
                    None
                }
            }
        } else {
            None
        };
        if hv >= 2 {
            r.flexible = true;
            if r.tagged().is_none() && !m.cut {
                flags |= Flags::MALFORMED;
            }
        }
        let body = r.rest();
        let req = api::parse_request(key, version, body);
        let p = Pending {
            key,
            version,
            correlation_id,
            client_id,
            req,
            start_ts: m.start_ts,
            size: m.len,
            flags,
        };
        if key == 0 && p.req.acks == Some(0) {
            // No response comes: the request is the whole exchange.
            let e = self.entry(&p, None, Flags::empty());
            out.entries.emit(e);
            return;
        }
        if let Some(old) = self.pending.remove(&correlation_id) {
            // The id was used again: the first request's response never came.
            self.order.retain(|&id| id != correlation_id);
            let e = self.entry(&old, None, Flags::NO_RESPONSE);
            out.entries.emit(e);
        }
        if self.pending.len() >= MAX_PENDING_REQUESTS
            && let Some(id) = self.order.pop_front()
            && let Some(old) = self.pending.remove(&id)
        {
            self.give_up(id);
            let e = self.entry(&old, None, Flags::NO_RESPONSE);
            out.entries.emit(e);
        }
        self.pending.insert(correlation_id, p);
        self.order.push_back(correlation_id);
    }

    fn give_up(&mut self, id: i32) {
        if self.given_up.insert(id) {
            self.given_up_order.push_back(id);
            while self.given_up_order.len() > MAX_GIVEN_UP {
                if let Some(old) = self.given_up_order.pop_front() {
                    self.given_up.remove(&old);
                }
            }
        }
    }

    fn response(&mut self, m: Msg<'_>, out: &mut Output) {
        let b = m.bytes;
        let Some(id) = b
            .get(4..8)
            .map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        else {
            return;
        };
        let Some(p) = self.pending.remove(&id) else {
            if self.given_up.remove(&id) || self.sasl_raw {
                return;
            }
            let mut e = self.base.clone();
            e.timestamp = m.start_ts;
            e.response_size = Some(m.len);
            e.kafka_correlation_id = Some(id);
            e.summary = Some(format!(
                "(request not captured) → response to correlation id {id}, {} bytes",
                m.len
            ));
            e.flags = msg_flags(&m, false) | Flags::NO_REQUEST;
            e.incomplete = true;
            out.entries.emit(e);
            return;
        };
        // Responses come in the order of the requests: those sent before this one
        // and still waiting had theirs lost.
        if let Some(pos) = self.order.iter().position(|&x| x == id) {
            let earlier: Vec<i32> = self.order.drain(..=pos).collect();
            for old in earlier.into_iter().filter(|&x| x != id) {
                if let Some(o) = self.pending.remove(&old) {
                    let lost = if self.resp_lost {
                        Flags::RESPONSE_GAP
                    } else {
                        Flags::empty()
                    };
                    let e = self.entry(&o, None, Flags::NO_RESPONSE | lost);
                    out.entries.emit(e);
                }
            }
        }
        self.resp_lost = false;
        let mut r = wire::Reader::new(&b[8..], api::response_header_flexible(p.key, p.version));
        let mut flags = msg_flags(&m, false);
        if r.tagged().is_none() {
            flags |= Flags::MALFORMED;
        }
        let resp = api::parse_response(p.key, p.version, r.rest());
        if resp.incomplete && !m.cut && !m.gap && !m.truncated {
            flags |= Flags::MALFORMED;
        }
        for (tid, name) in &resp.topic_names {
            if self.topic_names.len() < MAX_TOPIC_IDS || self.topic_names.contains_key(tid) {
                self.topic_names.insert(*tid, name.clone());
            }
        }
        if p.key == 17 && p.version == 0 && resp.status() == 0 {
            self.sasl_raw = true;
        }
        let e = self.entry(&p, Some((&resp, m.len, m.end_ts)), flags);
        out.entries.emit(e);
    }

    fn entry(&self, p: &Pending, resp: Option<(&api::Response, u64, i64)>, extra: Flags) -> Entry {
        let mut e = self.base.clone();
        let name = api::name(p.key).map_or_else(|| format!("ApiKey{}", p.key), str::to_string);
        e.timestamp = p.start_ts;
        e.method = Some(name.clone());
        e.kafka_api_key_name = Some(name.clone());
        e.kafka_api_version = Some(i32::from(p.version));
        e.kafka_correlation_id = Some(p.correlation_id);
        e.kafka_client_id = p.client_id.clone();
        e.request_size = Some(p.size);
        let mut topics = p.req.topics.clone();
        for (i, id) in &p.req.topic_ids {
            if let Some(n) = self.topic_names.get(id)
                && let Some(t) = topics.get_mut(*i)
            {
                *t = n.clone();
            }
        }
        topics.retain(|t| !t.is_empty());
        e.path = topics.first().cloned();
        e.kafka_topic = topics.first().cloned();
        let mut what = format!("{name} v{}", p.version);
        if p.req.all_topics {
            what.push_str(" (all topics)");
        } else if !topics.is_empty() {
            let mut unique: Vec<&String> = Vec::new();
            for t in &topics {
                if !unique.contains(&t) {
                    unique.push(t);
                }
            }
            what.push(' ');
            let shown: Vec<&str> = unique.iter().take(3).map(|s| s.as_str()).collect();
            what.push_str(&shown.join(", "));
            let more = unique.len().saturating_sub(3) + p.req.more_topics;
            if more > 0 {
                what.push_str(&format!(" (+{more} topics)"));
            }
        }
        if p.req.partitions > 0 {
            let unit = if p.req.partitions == 1 {
                "partition"
            } else {
                "partitions"
            };
            what.push_str(&format!(" [{} {unit}]", p.req.partitions));
        }
        if let Some(g) = &p.req.group {
            what.push_str(&format!(" group={g}"));
        }
        if let Some(mech) = &p.req.sasl_mechanism {
            what.push_str(&format!(" mechanism={mech}"));
        }
        if let Some(a) = p.req.acks {
            what.push_str(&format!(" acks={a}"));
        }
        if let Some(c) = &p.client_id {
            what.push_str(&format!(" client={c}"));
        }
        if !topics.is_empty() {
            e.kafka_topics = Some(topics);
        }
        let mut flags = p.flags | extra;
        let outcome = match resp {
            Some((r, size, end_ts)) => {
                e.response_size = Some(size);
                e.elapsed_time = Some((end_ts - p.start_ts).max(0) / 1000);
                let status = r.status();
                e.status_code = Some(i32::from(status));
                if status == 0 {
                    "ok".to_string()
                } else {
                    let mut s = format!("error {status} {}", api::error_name(status));
                    if r.errors > 1 {
                        s.push_str(&format!(" ({} in error)", r.errors));
                    }
                    s
                }
            }
            None if p.key == 0 && p.req.acks == Some(0) => "(acks=0: no response)".into(),
            None => {
                flags |= Flags::NO_RESPONSE;
                "(no response)".into()
            }
        };
        e.summary = Some(format!("{what} → {outcome}"));
        e.flags = flags;
        e.incomplete = flags.intersects(Flags::INCOMPLETE);
        e
    }

    fn expire(&mut self, now: i64, out: &mut Output) {
        let timeout = out.limits.response_timeout_ns;
        while let Some(&id) = self.order.front() {
            let Some(p) = self.pending.get(&id) else {
                self.order.pop_front();
                continue;
            };
            if now - p.start_ts <= timeout {
                break;
            }
            self.order.pop_front();
            if let Some(p) = self.pending.remove(&id) {
                self.give_up(id);
                let e = self.entry(&p, None, Flags::NO_RESPONSE | Flags::TIMEOUT);
                out.entries.emit(e);
            }
        }
    }

    fn close(&mut self, out: &mut Output) {
        while let Some(id) = self.order.pop_front() {
            if let Some(p) = self.pending.remove(&id) {
                let e = self.entry(&p, None, Flags::NO_RESPONSE);
                out.entries.emit(e);
            }
        }
    }
}

impl StreamDissector for Kafka {
    fn data(&mut self, ctx: &FlowCtx, seg: Seg<'_>, out: &mut Output) {
        let i = seg.dir.index();
        self.halves[i].push(seg, ctx.midstream[i], &mut self.core, out);
    }

    fn gap(&mut self, _ctx: &FlowCtx, dir: Dir, len: u64, ts: i64, out: &mut Output) {
        self.halves[dir.index()].gap(len, ts, &mut self.core, out);
    }

    fn end(&mut self, _ctx: &FlowCtx, dir: Dir, ts: i64, out: &mut Output) {
        self.halves[dir.index()].end(ts, &mut self.core, out);
    }

    fn closed(&mut self, _ctx: &FlowCtx, ts: i64, out: &mut Output) {
        for d in [self.core.client, self.core.client.flip()] {
            self.halves[d.index()].end(ts, &mut self.core, out);
        }
        self.core.close(out);
    }

    fn tick(&mut self, _ctx: &FlowCtx, now: i64, out: &mut Output) {
        let oldest = self
            .core
            .order
            .front()
            .and_then(|id| self.core.pending.get(id))
            .map(|p| p.start_ts);
        if oldest.is_some_and(|t| now - t > out.limits.response_timeout_ns) {
            self.core.expire(now, out);
        }
    }
}

#[cfg(test)]
mod tests;
