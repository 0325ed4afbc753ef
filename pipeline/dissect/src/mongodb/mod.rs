//! MongoDB: OP_MSG commands (and the legacy OP_QUERY / OP_REPLY and write opcodes)
//! paired with their replies by request id; the command, database and collection of
//! each, and both documents as relaxed Extended JSON in the bodies.
//!
//! A message whose `moreToCome` flag is set gets no reply (a one-way entry); an
//! exhaust cursor's replies each set it and answer the reply before them. Compressed
//! messages (OP_COMPRESSED with snappy or zlib) are read inflated.

pub mod bson;
pub mod wire;

use std::collections::VecDeque;

use reef_reassembly::{Dir, FlowCtx};
use reef_schema::{Body, Entry, Flags, Protocol, Transport};
use rustc_hash::FxHashMap;

use self::bson::{Doc, Json, Value};
use self::wire::Inflated;
use crate::framing::{Frame, Framer, Handler, Msg, Resync, scan};
use crate::{Output, Probe, Seg, StreamDissector};

/// Requests waiting for a reply per connection; past this the oldest is given up.
pub const MAX_PENDING_REQUESTS: usize = 1024;
/// Bytes kept of a message longer than a segment (the body shows its start).
const KEEP: usize = 256 * 1024;
/// Bytes of a name (database, collection, command) kept.
const MAX_NAME: usize = 256;

pub fn make(client: Dir, ctx: &FlowCtx, out: &Output) -> Box<dyn StreamDissector> {
    Box::new(Mongo::new(client, ctx, out))
}

/// Does `dir` speak MongoDB? A request's header (a request opcode, a plausible
/// length and OP_MSG flags, a BSON document that fits) makes it the client; on a
/// connection joined mid-way a reply makes the other side the client.
pub fn probe(ctx: &FlowCtx, dir: Dir, bytes: &[u8]) -> Probe {
    match wire::looks_like_message(bytes, false) {
        Some(true) => {
            if wire::header(bytes).is_some_and(|h| h.response_to == 0) {
                return Probe::Client(dir);
            }
        }
        None => return Probe::NotYet,
        Some(false) => {}
    }
    if !ctx.midstream[dir.index()] {
        return Probe::No;
    }
    match wire::looks_like_message(bytes, true) {
        Some(true) => Probe::Client(dir.flip()),
        None => Probe::NotYet,
        Some(false) => Probe::No,
    }
}

/// What a request asked.
#[derive(Debug, Clone)]
struct Request {
    op: i32,
    command: String,
    database: Option<String>,
    collection: Option<String>,
    body: Option<Vec<u8>>,
    body_cut: bool,
    body_size: u64,
    start_ts: i64,
    size: u64,
    flags: Flags,
}

/// What a reply said.
#[derive(Debug, Default)]
struct Reply {
    ok: bool,
    code: Option<i32>,
    message: Option<String>,
    documents: Option<i64>,
    n: Option<i64>,
    body: Option<Vec<u8>>,
    body_cut: bool,
    more_to_come: bool,
    note: Option<&'static str>,
}

struct Core {
    client: Dir,
    base: Entry,
    pending: FxHashMap<i32, Request>,
    order: VecDeque<i32>,
    max_body: usize,
}

/// A MongoDB connection.
pub struct Mongo {
    halves: [Framer; 2],
    core: Core,
}

impl Mongo {
    pub fn new(client: Dir, ctx: &FlowCtx, out: &Output) -> Mongo {
        let c = ctx.endpoints[client.index()];
        let s = ctx.endpoints[client.flip().index()];
        let base = Entry {
            protocol: Protocol::Mongodb,
            transport: Transport::Tcp,
            src_ip: c.ip,
            src_port: Some(c.port),
            dst_ip: s.ip,
            dst_port: Some(s.port),
            ..Entry::default()
        };
        let budget = &out.body_budget;
        Mongo {
            halves: [
                Framer::new(Dir::Forward, KEEP, budget.clone()),
                Framer::new(Dir::Reverse, KEEP, budget.clone()),
            ],
            core: Core {
                client,
                base,
                pending: FxHashMap::default(),
                order: VecDeque::new(),
                max_body: out.limits.max_body_bytes,
            },
        }
    }
}

impl Handler for Core {
    fn frame(&mut self, _dir: Dir, head: &[u8]) -> Frame {
        let Some(l) = head.get(..4) else {
            return Frame::More;
        };
        let len = i32::from_le_bytes([l[0], l[1], l[2], l[3]]);
        if !(16..=wire::MAX_MESSAGE_BYTES).contains(&len) {
            return Frame::Bad;
        }
        Frame::Len(len as u64)
    }

    fn resync(&mut self, dir: Dir, window: &[u8]) -> Resync {
        let reply = dir != self.client;
        scan(window, |b| {
            let h = wire::header(b)?;
            let len = usize::try_from(h.length).unwrap_or(0);
            // A reply to a waiting request, or a whole one that ends the bytes (or
            // is followed by another message).
            let whole = b.len() == len
                || (b.len() >= len + 16
                    && wire::looks_like_message(&b[len..], reply) == Some(true));
            if reply && !self.pending.contains_key(&h.response_to) && !whole {
                return Some(false);
            }
            wire::looks_like_message(b, reply)
        })
    }

    fn message(&mut self, dir: Dir, m: Msg<'_>, out: &mut Output) {
        let Some(h) = wire::header(m.bytes) else {
            return;
        };
        let body = &m.bytes[16..];
        let (op, inflated, note) = if h.op == wire::OP_COMPRESSED {
            match wire::op_compressed(body) {
                Some(Inflated::Ok(op, v)) => (op, Some(v), None),
                Some(Inflated::Unreadable(op, why)) => (op, None, Some(why)),
                None => (h.op, None, Some("a cut compressed message")),
            }
        } else {
            (h.op, None, None)
        };
        let body = inflated.as_deref().unwrap_or(body);
        let readable = note.is_none();
        if dir == self.client {
            self.request(h, op, body, readable, note, &m, out);
        } else {
            self.reply(h, op, body, readable, note, &m, out);
        }
    }

    fn lost(&mut self, _dir: Dir, _ts: i64, _out: &mut Output) {}
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

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(MAX_NAME)]).into_owned()
}

/// Commands whose first value names no collection even when it is a string.
const NO_COLLECTION: &[&str] = &[
    "hello",
    "isMaster",
    "ismaster",
    "ping",
    "buildInfo",
    "buildinfo",
    "saslStart",
    "saslContinue",
    "authenticate",
    "getnonce",
    "serverStatus",
    "listDatabases",
    "listCollections",
    "endSessions",
    "killCursors",
    "getLastError",
    "getParameter",
    "setParameter",
    "whatsmyuri",
    "connectionStatus",
    "logout",
    "dropDatabase",
    "abortTransaction",
    "commitTransaction",
    "hostInfo",
    "currentOp",
    "killOp",
];

impl Core {
    #[allow(clippy::too_many_arguments)]
    fn request(
        &mut self,
        h: wire::Header,
        op: i32,
        body: &[u8],
        readable: bool,
        note: Option<&'static str>,
        m: &Msg<'_>,
        out: &mut Output,
    ) {
        let mut r = Request {
            op,
            command: wire::op_name(op).unwrap_or("unknown").to_string(),
            database: None,
            collection: None,
            body: None,
            body_cut: false,
            body_size: 0,
            start_ts: m.start_ts,
            size: m.len,
            flags: msg_flags(m, true),
        };
        let mut one_way = false;
        if let Some(why) = note {
            r.command = format!("{} ({why}, not read)", r.command);
        }
        if readable {
            match op {
                wire::OP_MSG => {
                    let msg = wire::op_msg(body);
                    one_way = msg.flags & wire::MORE_TO_COME != 0;
                    if msg.broken && !m.cut && !m.gap {
                        r.flags |= Flags::MALFORMED;
                    }
                    if let Some(d) = msg.body {
                        self.describe(&mut r, &d);
                        let mut j = Json::new(self.max_body);
                        j.doc(&d, &msg.sequences);
                        r.body_size = m.len.saturating_sub(16);
                        r.body_cut = j.cut || m.cut;
                        r.body = Some(j.out.into_bytes());
                    }
                }
                wire::OP_QUERY => match wire::op_query(body) {
                    Some(q) => {
                        let ns = text(q.namespace);
                        let (db, coll) = match ns.split_once('.') {
                            Some((d, c)) => (d.to_string(), Some(c.to_string())),
                            None => (ns.clone(), None),
                        };
                        r.database = Some(db);
                        if let Some(d) = q.query {
                            if coll.as_deref() == Some("$cmd") {
                                // A command through the legacy opcode, maybe wrapped
                                // in `$query`.
                                let inner = match d.get("$query").and_then(|v| v.as_doc()) {
                                    Some(x) => x,
                                    None => d,
                                };
                                self.describe(&mut r, &inner);
                            } else {
                                r.command = "find".into();
                                r.collection = coll;
                            }
                            let mut j = Json::new(self.max_body);
                            j.doc(&d, &[]);
                            r.body_size = m.len.saturating_sub(16);
                            r.body_cut = j.cut || m.cut;
                            r.body = Some(j.out.into_bytes());
                        }
                    }
                    None => r.flags |= Flags::MALFORMED,
                },
                wire::OP_INSERT | wire::OP_UPDATE | wire::OP_DELETE | wire::OP_GET_MORE => {
                    one_way = op != wire::OP_GET_MORE;
                    r.command = match op {
                        wire::OP_INSERT => "insert",
                        wire::OP_UPDATE => "update",
                        wire::OP_DELETE => "delete",
                        _ => "getMore",
                    }
                    .into();
                    // Flags (OP_INSERT) or a reserved zero, then the namespace.
                    if let Some(ns) = wire::legacy_namespace(body) {
                        let ns = text(ns);
                        match ns.split_once('.') {
                            Some((d, c)) => {
                                r.database = Some(d.to_string());
                                r.collection = Some(c.to_string());
                            }
                            None => r.database = Some(ns),
                        }
                    }
                }
                wire::OP_KILL_CURSORS => {
                    one_way = true;
                    r.command = "killCursors".into();
                }
                _ => r.flags |= Flags::MALFORMED,
            }
        }
        if one_way {
            let e = self.entry(&r, None, Flags::empty(), m.len);
            out.entries.emit(e);
            return;
        }
        if self.pending.len() >= MAX_PENDING_REQUESTS
            && let Some(id) = self.order.pop_front()
            && let Some(old) = self.pending.remove(&id)
        {
            let e = self.entry(&old, None, Flags::NO_RESPONSE, 0);
            out.entries.emit(e);
        }
        if let Some(old) = self.pending.insert(h.request_id, r) {
            let e = self.entry(&old, None, Flags::NO_RESPONSE, 0);
            out.entries.emit(e);
        } else {
            self.order.push_back(h.request_id);
        }
    }

    /// Command, database and collection from a command document.
    fn describe(&self, r: &mut Request, d: &Doc<'_>) {
        let Some((name, first)) = d.first() else {
            return;
        };
        let name = text(name);
        if let Some(db) = d.get("$db").and_then(|v| v.as_str()) {
            r.database = Some(text(db));
        }
        r.collection = match (name.as_str(), first) {
            ("getMore", _) => d.get("collection").and_then(|v| v.as_str()).map(text),
            ("explain", Value::Doc(inner)) => inner.first().and_then(|(_, v)| v.as_str().map(text)),
            (n, Value::Str(s)) if !NO_COLLECTION.contains(&n) => Some(text(s)),
            _ => None,
        };
        r.command = name;
    }

    #[allow(clippy::too_many_arguments)]
    fn reply(
        &mut self,
        h: wire::Header,
        op: i32,
        body: &[u8],
        readable: bool,
        note: Option<&'static str>,
        m: &Msg<'_>,
        out: &mut Output,
    ) {
        let mut rep = Reply {
            ok: true,
            note,
            ..Reply::default()
        };
        let mut flags = msg_flags(m, false);
        if readable {
            match op {
                wire::OP_MSG => {
                    let msg = wire::op_msg(body);
                    rep.more_to_come = msg.flags & wire::MORE_TO_COME != 0;
                    if msg.broken && !m.cut && !m.gap {
                        flags |= Flags::MALFORMED;
                    }
                    if let Some(d) = msg.body {
                        self.read_reply(&mut rep, &d);
                        let mut j = Json::new(self.max_body);
                        j.doc(&d, &msg.sequences);
                        rep.body_cut = j.cut || m.cut;
                        rep.body = Some(j.out.into_bytes());
                    }
                }
                wire::OP_REPLY => match wire::op_reply(body) {
                    Some(r) => {
                        rep.documents = Some(i64::from(r.returned));
                        // Query failure: the document is `{$err, code}`.
                        let failed = r.flags & 2 != 0;
                        if let Some(d) = r.first {
                            if failed || r.returned == 1 {
                                self.read_reply(&mut rep, &d);
                                if failed {
                                    rep.ok = false;
                                }
                            }
                            let mut j = Json::new(self.max_body);
                            j.doc(&d, &[]);
                            rep.body_cut = j.cut || m.cut || r.returned > 1;
                            rep.body = Some(j.out.into_bytes());
                        }
                    }
                    None => flags |= Flags::MALFORMED,
                },
                _ => flags |= Flags::MALFORMED,
            }
        }
        let Some(req) = self.pending.remove(&h.response_to) else {
            let mut e = self.base.clone();
            e.timestamp = m.start_ts;
            e.response_size = Some(m.len);
            set_reply(&mut e, &rep);
            e.summary = Some(format!(
                "(request not captured) → reply to request {}{}",
                h.response_to,
                outcome_suffix(&rep)
            ));
            e.flags = flags | Flags::NO_REQUEST;
            e.incomplete = true;
            out.entries.emit(e);
            return;
        };
        self.order.retain(|&id| id != h.response_to);
        let e = self.entry(&req, Some((&rep, m.end_ts)), flags, m.len);
        out.entries.emit(e);
        if rep.more_to_come && self.pending.len() < MAX_PENDING_REQUESTS {
            // An exhaust cursor: the next reply answers this one.
            let mut next = req;
            next.start_ts = m.end_ts;
            next.size = 0;
            next.body = None;
            next.flags = Flags::empty();
            self.pending.insert(h.request_id, next);
            self.order.push_back(h.request_id);
        }
    }

    fn read_reply(&self, rep: &mut Reply, d: &Doc<'_>) {
        if let Some(ok) = d.get("ok").and_then(|v| v.as_f64()) {
            rep.ok = ok == 1.0;
        }
        if d.get("$err").is_some() {
            rep.ok = false;
            rep.message = d.get("$err").and_then(|v| v.as_str()).map(text);
        }
        if let Some(c) = d.get("code").and_then(|v| v.as_i64()) {
            rep.code = i32::try_from(c).ok();
        }
        if let Some(msg) = d.get("errmsg").and_then(|v| v.as_str()) {
            rep.message = Some(text(msg));
        }
        rep.n = d.get("n").and_then(|v| v.as_i64());
        if let Some(c) = d.get("cursor").and_then(|v| v.as_doc()) {
            let batch = c
                .get("firstBatch")
                .or_else(|| c.get("nextBatch"))
                .and_then(|v| v.as_doc());
            if let Some(b) = batch {
                rep.documents = Some(b.len() as i64);
            }
        }
        // A write that failed for some documents answers ok: 1 with writeErrors.
        if let Some(w) = d.get("writeErrors").and_then(|v| v.as_doc())
            && let Some((_, Value::Doc(first))) = w.first()
        {
            rep.code = first
                .get("code")
                .and_then(|v| v.as_i64())
                .and_then(|c| i32::try_from(c).ok());
            rep.message = first.get("errmsg").and_then(|v| v.as_str()).map(text);
            rep.ok = false;
        }
    }

    fn entry(
        &self,
        r: &Request,
        rep: Option<(&Reply, i64)>,
        extra: Flags,
        resp_size: u64,
    ) -> Entry {
        let mut e = self.base.clone();
        e.timestamp = r.start_ts;
        e.method = Some(r.command.clone());
        e.mongodb_command = Some(r.command.clone());
        e.mongodb_database = r.database.clone();
        e.mongodb_collection = r.collection.clone();
        e.path = match (&r.database, &r.collection) {
            (Some(d), Some(c)) => Some(format!("{d}.{c}")),
            (Some(d), None) => Some(d.clone()),
            (None, Some(c)) => Some(c.clone()),
            (None, None) => None,
        };
        e.request_size = Some(r.size);
        let mut flags = r.flags | extra;
        if let Some(b) = &r.body {
            e.request_body = Some(Body(b.clone()));
            e.request_body_size = Some(r.body_size);
            if r.body_cut {
                flags |= Flags::REQUEST_BODY_TRUNCATED;
            }
        }
        let mut what = r.command.clone();
        if let Some(p) = &e.path {
            what.push(' ');
            what.push_str(p);
        }
        let outcome = match rep {
            Some((rep, end_ts)) => {
                e.response_size = Some(resp_size);
                e.elapsed_time = Some((end_ts - r.start_ts).max(0) / 1000);
                set_reply(&mut e, rep);
                if rep.body_cut {
                    flags |= Flags::RESPONSE_BODY_TRUNCATED;
                }
                outcome_suffix(rep).trim_start_matches(", ").to_string()
            }
            None if flags.contains(Flags::NO_RESPONSE) => "(no response)".into(),
            None => {
                if r.op == wire::OP_MSG || r.op == wire::OP_COMPRESSED {
                    "(moreToCome: no reply)".into()
                } else {
                    "(no reply expected)".into()
                }
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
            let Some(r) = self.pending.get(&id) else {
                self.order.pop_front();
                continue;
            };
            if now - r.start_ts <= timeout {
                break;
            }
            self.order.pop_front();
            if let Some(r) = self.pending.remove(&id) {
                let e = self.entry(&r, None, Flags::NO_RESPONSE | Flags::TIMEOUT, 0);
                out.entries.emit(e);
            }
        }
    }

    fn close(&mut self, out: &mut Output) {
        while let Some(id) = self.order.pop_front() {
            if let Some(r) = self.pending.remove(&id) {
                let e = self.entry(&r, None, Flags::NO_RESPONSE, 0);
                out.entries.emit(e);
            }
        }
    }
}

/// Status, rows, error and body of a reply on an entry.
fn set_reply(e: &mut Entry, rep: &Reply) {
    e.status_code = Some(if rep.ok { 0 } else { rep.code.unwrap_or(1) });
    e.db_rows = rep.documents.or(rep.n);
    if !rep.ok {
        e.db_error = Some(match (rep.code, &rep.message) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            (None, Some(m)) => m.clone(),
            (None, None) => "failed".into(),
        });
    }
    if let Some(b) = &rep.body {
        e.response_body_size = Some(b.len() as u64);
        e.response_body = Some(Body(b.clone()));
    }
}

fn outcome_suffix(rep: &Reply) -> String {
    if let Some(why) = rep.note {
        return format!(", ({why}, not read)");
    }
    if !rep.ok {
        let mut s = String::from(", error");
        if let Some(c) = rep.code {
            s.push_str(&format!(" {c}"));
        }
        if let Some(m) = &rep.message {
            s.push_str(&format!(" {m}"));
        }
        return s;
    }
    let mut s = String::from(", ok");
    if let Some(d) = rep.documents {
        let unit = if d == 1 { "document" } else { "documents" };
        s.push_str(&format!(", {d} {unit}"));
    } else if let Some(n) = rep.n {
        s.push_str(&format!(", n={n}"));
    }
    if rep.more_to_come {
        s.push_str(" (more to come)");
    }
    s
}

impl StreamDissector for Mongo {
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
            .map(|r| r.start_ts);
        if oldest.is_some_and(|t| now - t > out.limits.response_timeout_ns) {
            self.core.expire(now, out);
        }
    }
}

#[cfg(test)]
mod tests;
