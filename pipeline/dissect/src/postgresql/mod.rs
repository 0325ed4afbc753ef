//! PostgreSQL (frontend/backend protocol 3.x): startup and authentication, simple and
//! extended queries, COPY, function calls, cancel requests and notifications.
//!
//! A request is what the client sends up to a message the server answers with
//! ReadyForQuery (a Query, a Sync, a FunctionCall) or the startup exchange; its
//! response is what the server sends up to that ReadyForQuery. Within an extended
//! query each Execute gets an entry of its own, carrying the text of the statement it
//! runs, even when that statement was prepared (Parse) in an earlier exchange: named
//! statements are remembered per connection. After an accepted SSLRequest or
//! GSSENCRequest the connection is encrypted: one entry says so and nothing more is
//! read. Pairing is in order, checked against TCP acknowledgments after loss.

pub mod msg;

use std::collections::VecDeque;
use std::rc::Rc;

use reef_reassembly::{Dir, FlowCtx};
use reef_schema::{Entry, Flags, Protocol, Transport};
use rustc_hash::FxHashMap;

use self::msg::{PgError, Untyped};
use crate::framing::{Frame, Framer, Handler, Msg, Resync, scan};
use crate::tls::Tls;
use crate::{Output, Probe, Seg, StreamDissector};

/// Requests waiting for their ReadyForQuery per connection; past this the oldest is
/// given up.
pub const MAX_PENDING_REQUESTS: usize = 1024;
/// Named prepared statements (and portals) remembered per connection.
pub const MAX_STATEMENTS: usize = 4096;
/// Messages of one extended-query request tracked one by one; further ones are only
/// counted.
pub const MAX_OPS: usize = 1024;
/// Command tags listed per request (a simple query may run many statements).
pub const MAX_TAGS: usize = 16;
/// Bytes of query text shown in a summary.
pub const MAX_SUMMARY_QUERY: usize = 160;
/// Bytes kept of a client message longer than a segment (query texts are cut at
/// [`msg::MAX_QUERY_BYTES`] anyway).
const CLIENT_KEEP: usize = msg::MAX_QUERY_BYTES + 1024;
/// Bytes kept of a server message longer than a segment (rows are only counted).
const SERVER_KEEP: usize = 4096;

pub fn make(client: Dir, ctx: &FlowCtx, out: &Output) -> Box<dyn StreamDissector> {
    Box::new(Postgres::new(client, ctx, out))
}

/// Does `dir` speak PostgreSQL? The untyped first message of a connection (startup,
/// SSL, GSS or cancel request) makes it the client; on a connection joined mid-way,
/// a run of well-formed frontend messages does, and of backend messages makes the
/// other side the client.
pub fn probe(ctx: &FlowCtx, dir: Dir, bytes: &[u8]) -> Probe {
    match msg::untyped_len(bytes) {
        None => return Probe::NotYet,
        Some(Some(len)) => {
            let len = len as usize;
            match msg::parse_untyped(bytes) {
                Untyped::Startup { params, .. } => {
                    if bytes.len() < len {
                        return Probe::NotYet;
                    }
                    // Parameters of text, `user` among them (the server requires
                    // it), and the NUL that closes the list.
                    let text = |s: &str| !s.is_empty() && !s.chars().any(char::is_control);
                    if bytes[len - 1] == 0
                        && params.iter().any(|(k, _)| k == "user")
                        && params.iter().all(|(k, _)| text(k))
                    {
                        return Probe::Client(dir);
                    }
                }
                _ => return Probe::Client(dir),
            }
        }
        Some(None) => {}
    }
    if !ctx.midstream[dir.index()] {
        return Probe::No;
    }
    let window = &bytes[..bytes.len().min(4096)];
    match msg::looks_like_frontend(window) {
        Some(true) => return Probe::Client(dir),
        None => return Probe::NotYet,
        Some(false) => {}
    }
    match looks_like_backend_run(window) {
        Some(true) => Probe::Client(dir.flip()),
        None => Probe::NotYet,
        Some(false) => Probe::No,
    }
}

/// Backend messages from the first byte: two or more whole ones, or one that could
/// hardly be anything else (ReadyForQuery, CommandComplete, ErrorResponse).
fn looks_like_backend_run(b: &[u8]) -> Option<bool> {
    let first = msg::looks_like_backend(b)?;
    if !first {
        return Some(false);
    }
    let Some(Some(len)) = msg::typed_len(b, msg::BACKEND_TYPES) else {
        return Some(false);
    };
    let len = len as usize;
    if b.len() > len || matches!(b[0], b'Z' | b'C' | b'E') {
        Some(true)
    } else if b.len() < len {
        Some(b.len() >= 64)
    } else {
        None
    }
}

/// What a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Startup,
    Query,
    Extended,
    Function,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Startup,
    Query,
    Parse,
    Bind,
    Describe,
    Execute,
    Close,
    Flush,
    Sync,
    Function,
}

impl OpKind {
    fn name(self) -> &'static str {
        match self {
            OpKind::Startup => "Startup",
            OpKind::Query => "Query",
            OpKind::Parse => "Parse",
            OpKind::Bind => "Bind",
            OpKind::Describe => "Describe",
            OpKind::Execute => "Execute",
            OpKind::Close => "Close",
            OpKind::Flush => "Flush",
            OpKind::Sync => "Sync",
            OpKind::Function => "FunctionCall",
        }
    }
}

/// One frontend message of a request and what the server answered to it.
#[derive(Debug)]
struct Op {
    kind: OpKind,
    /// The statement text (Query, Parse) or the text of the statement a Bind or an
    /// Execute runs, when known.
    text: Option<Rc<[u8]>>,
    /// Statement (Parse, Bind, Describe/Close 'S') or portal name.
    name: String,
    start_ts: i64,
    req_bytes: u64,
    resp_bytes: u64,
    resp_end_ts: Option<i64>,
    /// DataRow messages.
    rows: u64,
    tags: Vec<String>,
    tag_rows: Option<i64>,
    error: Option<PgError>,
    done: bool,
    /// Not run: an earlier message of the request failed.
    skipped: bool,
}

impl Op {
    fn new(kind: OpKind, m: &Msg<'_>) -> Op {
        Op {
            kind,
            text: None,
            name: String::new(),
            start_ts: m.start_ts,
            req_bytes: m.len,
            resp_bytes: 0,
            resp_end_ts: None,
            rows: 0,
            tags: Vec::new(),
            tag_rows: None,
            error: None,
            done: false,
            skipped: false,
        }
    }

    /// Does the server answer this message, and with which completion?
    fn completes_on(&self, t: u8) -> bool {
        match self.kind {
            OpKind::Parse => t == b'1',
            OpKind::Bind => t == b'2',
            OpKind::Describe => matches!(t, b'T' | b'n'),
            OpKind::Execute => matches!(t, b'C' | b'I' | b's'),
            OpKind::Close => t == b'3',
            OpKind::Function => t == b'V',
            _ => false,
        }
    }

    fn answered(&self) -> bool {
        !matches!(
            self.kind,
            OpKind::Flush | OpKind::Sync | OpKind::Startup | OpKind::Query
        )
    }
}

/// A request: frontend messages up to one the server answers with ReadyForQuery.
#[derive(Debug)]
struct Group {
    kind: Kind,
    /// More frontend messages may join (an extended query before its Sync, the
    /// startup exchange before ReadyForQuery).
    open: bool,
    start_ts: i64,
    /// Client stream offset where the first message ends (the server can't answer
    /// before it has that much).
    first_end: u64,
    req_flags: Flags,
    resp_flags: Flags,
    ops: Vec<Op>,
    /// Messages beyond [`MAX_OPS`].
    extra_ops: u64,
    /// First op not answered yet.
    cur: usize,
    responded: bool,
    /// Startup: parameters, authentication, backend pid.
    params: Vec<(String, String)>,
    auth: Option<String>,
    ssl_refused: Option<&'static str>,
    /// Emitted already (after the response timeout): its response is still awaited
    /// to keep the order, then dropped.
    emitted: bool,
    /// The session ended with a FATAL error: no ReadyForQuery will come.
    fatal: bool,
}

impl Group {
    fn new(kind: Kind, m: &Msg<'_>, op: Op) -> Group {
        Group {
            kind,
            open: matches!(kind, Kind::Extended | Kind::Startup),
            start_ts: m.start_ts,
            first_end: m.end_offset(),
            req_flags: flags_of(m, true),
            resp_flags: Flags::empty(),
            ops: vec![op],
            extra_ops: 0,
            cur: 0,
            responded: false,
            params: Vec::new(),
            auth: None,
            ssl_refused: None,
            emitted: false,
            fatal: false,
        }
    }

    fn push_op(&mut self, op: Op, m: &Msg<'_>) {
        self.req_flags |= flags_of(m, true);
        if self.ops.len() < MAX_OPS {
            self.ops.push(op);
        } else {
            self.extra_ops += 1;
            if let Some(last) = self.ops.last_mut() {
                last.req_bytes += op.req_bytes;
            }
        }
    }

    /// The op a backend message of type `t` belongs to: the first unanswered one that
    /// `t` completes or continues. Ops passed over never got their answer (bytes
    /// lost, or a server that skips them) and count as done.
    fn op_for(&mut self, t: u8) -> usize {
        let partial = |op: &Op| match op.kind {
            OpKind::Execute => matches!(t, b'D' | b'G' | b'H' | b'W' | b'd' | b'c' | b'T'),
            OpKind::Describe => t == b't',
            OpKind::Query | OpKind::Function | OpKind::Startup => true,
            _ => false,
        };
        let mut i = self.cur;
        while i < self.ops.len() {
            let op = &self.ops[i];
            let fits = if t == b'E' {
                // An error answers the first message still waiting for an answer.
                op.answered() || matches!(op.kind, OpKind::Query | OpKind::Startup)
            } else {
                op.completes_on(t) || partial(op)
            };
            if !op.done && fits {
                break;
            }
            i += 1;
        }
        if i >= self.ops.len() {
            // Nothing expects it: it belongs with the last message.
            return self.ops.len() - 1;
        }
        for op in &mut self.ops[self.cur..i] {
            if op.answered() {
                op.done = true;
            }
        }
        self.cur = i;
        i
    }

    fn response_size(&self) -> u64 {
        self.ops.iter().map(|o| o.resp_bytes).sum()
    }
}

fn flags_of(m: &Msg<'_>, request: bool) -> Flags {
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

/// Backend messages that answer no captured request, gathered up to ReadyForQuery.
#[derive(Debug)]
struct Orphan {
    start_ts: i64,
    end_ts: i64,
    bytes: u64,
    rows: u64,
    tags: Vec<String>,
    tag_rows: Option<i64>,
    error: Option<PgError>,
    flags: Flags,
}

/// Statement and portal names to the text they run, bounded (oldest forgotten).
#[derive(Debug, Default)]
struct Names {
    map: FxHashMap<String, Rc<[u8]>>,
    order: VecDeque<String>,
}

impl Names {
    fn insert(&mut self, name: String, text: Rc<[u8]>) {
        if self.map.insert(name.clone(), text).is_none() {
            self.order.push_back(name);
            while self.map.len() > MAX_STATEMENTS {
                match self.order.pop_front() {
                    Some(old) => {
                        self.map.remove(&old);
                    }
                    None => break,
                }
            }
        }
    }

    fn remove(&mut self, name: &str) {
        if self.map.remove(name).is_some() {
            self.order.retain(|n| n != name);
        }
    }

    fn get(&self, name: &str) -> Option<Rc<[u8]>> {
        self.map.get(name).cloned()
    }
}

/// An SSLRequest or GSSENCRequest waiting for its one-byte answer, or refused.
#[derive(Debug, Clone, Copy)]
struct EncRequest {
    what: &'static str,
    start_ts: i64,
    size: u64,
    flags: Flags,
}

struct Core {
    client: Dir,
    base: Entry,
    /// The client's next message has no type byte (startup, SSL or GSS request).
    untyped: bool,
    enc_reply: Option<EncRequest>,
    enc_refused: Option<EncRequest>,
    encrypted: bool,
    queue: VecDeque<Group>,
    statements: Names,
    portals: Names,
    orphan: Option<Orphan>,
    /// Response bytes were lost; the time of the last response data before.
    resp_lost_after: Option<i64>,
}

/// A PostgreSQL connection.
pub struct Postgres {
    halves: [Framer; 2],
    core: Core,
    /// The TLS handshake after an accepted SSLRequest: its hellos are read like those
    /// of any TLS connection (SNI, ALPN, version, fingerprints), nothing after them.
    tls: Option<Box<Tls>>,
}

impl Postgres {
    pub fn new(client: Dir, ctx: &FlowCtx, out: &Output) -> Postgres {
        let c = ctx.endpoints[client.index()];
        let s = ctx.endpoints[client.flip().index()];
        let base = Entry {
            protocol: Protocol::Postgresql,
            transport: Transport::Tcp,
            src_ip: c.ip,
            src_port: Some(c.port),
            dst_ip: s.ip,
            dst_port: Some(s.port),
            ..Entry::default()
        };
        let mk = |d: Dir| {
            let keep = if d == client {
                CLIENT_KEEP
            } else {
                SERVER_KEEP
            };
            Framer::new(d, keep, out.body_budget.clone())
        };
        Postgres {
            tls: None,
            halves: [mk(Dir::Forward), mk(Dir::Reverse)],
            core: Core {
                client,
                base,
                untyped: !ctx.midstream[client.index()],
                enc_reply: None,
                enc_refused: None,
                encrypted: false,
                queue: VecDeque::new(),
                statements: Names::default(),
                portals: Names::default(),
                orphan: None,
                resp_lost_after: None,
            },
        }
    }
}

impl Handler for Core {
    fn frame(&mut self, dir: Dir, head: &[u8]) -> Frame {
        if dir == self.client {
            if self.untyped {
                return match msg::untyped_len(head) {
                    None => Frame::More,
                    Some(Some(n)) => Frame::Len(u64::from(n)),
                    Some(None) => Frame::Bad,
                };
            }
            return typed(head, msg::FRONTEND_TYPES);
        }
        if self.enc_reply.is_some() {
            match head.first() {
                None => return Frame::More,
                Some(b'S' | b'N' | b'G') => return Frame::Len(1),
                // An old server answers with an ErrorResponse.
                Some(_) => {}
            }
        }
        typed(head, msg::BACKEND_TYPES)
    }

    fn resync(&mut self, dir: Dir, window: &[u8]) -> Resync {
        if dir == self.client {
            scan(window, msg::looks_like_frontend)
        } else {
            scan(window, msg::looks_like_backend)
        }
    }

    fn message(&mut self, dir: Dir, m: Msg<'_>, out: &mut Output) {
        if self.encrypted {
            return;
        }
        if dir == self.client {
            self.frontend(m, out);
        } else {
            self.backend(m, out);
        }
    }

    fn lost(&mut self, dir: Dir, ts: i64, _out: &mut Output) {
        if dir == self.client {
            // The request being written is damaged, and no later message joins it.
            if let Some(g) = self.queue.back_mut()
                && g.open
            {
                g.req_flags |= Flags::REQUEST_GAP;
                g.open = false;
            }
            self.untyped = false;
        } else {
            if self.resp_lost_after.is_none() {
                self.resp_lost_after = Some(ts);
            }
            if let Some(g) = self.queue.front_mut()
                && g.responded
            {
                g.resp_flags |= Flags::RESPONSE_GAP;
            }
            if let Some(o) = &mut self.orphan {
                o.flags |= Flags::RESPONSE_GAP;
            }
            self.enc_reply = None;
        }
    }
}

fn typed(head: &[u8], types: &[u8]) -> Frame {
    match msg::typed_len(head, types) {
        None => Frame::More,
        Some(Some(n)) => Frame::Len(n),
        Some(None) => Frame::Bad,
    }
}

impl Core {
    fn frontend(&mut self, m: Msg<'_>, out: &mut Output) {
        if self.untyped {
            self.untyped_message(m, out);
            return;
        }
        let t = m.bytes[0];
        let body = msg::body(m.bytes);
        match t {
            b'X' => {
                // Terminate: the flow record says how the connection ended.
            }
            b'p' | b'd' | b'c' | b'f' => {
                // Authentication answers and COPY data belong to the request being
                // answered (the startup exchange, a COPY FROM STDIN).
                let i = self
                    .queue
                    .iter()
                    .rposition(|g| !g.emitted)
                    .or(self.queue.len().checked_sub(1));
                match i.and_then(|i| self.queue.get_mut(i)) {
                    Some(g) => {
                        g.req_flags |= flags_of(&m, true);
                        if let Some(op) = g.ops.last_mut() {
                            op.req_bytes += m.len;
                        }
                    }
                    None => {
                        // The exchange it belongs to was not captured.
                    }
                }
            }
            b'Q' => {
                let mut op = Op::new(OpKind::Query, &m);
                op.text = Some(msg::query_text(body).into());
                self.push_group(Group::new(Kind::Query, &m, op), out);
            }
            b'F' => {
                let op = Op::new(OpKind::Function, &m);
                self.push_group(Group::new(Kind::Function, &m, op), out);
            }
            _ => self.extended(t, body, m, out),
        }
    }

    fn untyped_message(&mut self, m: Msg<'_>, out: &mut Output) {
        match msg::parse_untyped(m.bytes) {
            u @ (Untyped::SslRequest | Untyped::GssEncRequest) => {
                let what = if u == Untyped::SslRequest {
                    "SSLRequest"
                } else {
                    "GSSENCRequest"
                };
                self.enc_reply = Some(EncRequest {
                    what,
                    start_ts: m.start_ts,
                    size: m.len,
                    flags: flags_of(&m, true),
                });
            }
            Untyped::Cancel { pid } => {
                let mut e = self.base.clone();
                e.timestamp = m.start_ts;
                e.method = Some("CancelRequest".into());
                e.request_size = Some(m.len);
                e.summary = Some(format!("CancelRequest for backend {pid}"));
                e.flags = flags_of(&m, true);
                e.incomplete = e.flags.intersects(Flags::INCOMPLETE);
                out.entries.emit(e);
            }
            Untyped::Startup { params, .. } => {
                self.untyped = false;
                let mut g = Group::new(Kind::Startup, &m, Op::new(OpKind::Startup, &m));
                g.params = params;
                if let Some(r) = self.enc_refused.take() {
                    g.ssl_refused = Some(r.what);
                    g.start_ts = r.start_ts;
                    g.ops[0].start_ts = r.start_ts;
                    g.ops[0].req_bytes += r.size;
                    g.req_flags |= r.flags;
                }
                self.push_group(g, out);
            }
            Untyped::Unknown(code) => {
                // Not a startup packet after all (or a protocol version from the
                // future): read on as typed messages.
                self.untyped = false;
                let mut e = self.base.clone();
                e.timestamp = m.start_ts;
                e.method = Some("Startup".into());
                e.request_size = Some(m.len);
                e.summary = Some(format!("Startup with unknown code {code:#x}"));
                e.flags = flags_of(&m, true) | Flags::MALFORMED;
                e.incomplete = e.flags.intersects(Flags::INCOMPLETE);
                out.entries.emit(e);
            }
        }
    }

    /// Parse, Bind, Describe, Execute, Close, Flush, Sync.
    fn extended(&mut self, t: u8, body: &[u8], m: Msg<'_>, out: &mut Output) {
        let kind = match t {
            b'P' => OpKind::Parse,
            b'B' => OpKind::Bind,
            b'D' => OpKind::Describe,
            b'E' => OpKind::Execute,
            b'C' => OpKind::Close,
            b'H' => OpKind::Flush,
            b'S' => OpKind::Sync,
            _ => return,
        };
        let mut op = Op::new(kind, &m);
        match kind {
            OpKind::Parse => {
                let (name, text) = msg::parse_parse(body);
                let text: Rc<[u8]> = text.into();
                // Later Binds in this and later requests run this text.
                self.statements.insert(name.clone(), text.clone());
                op.text = Some(text);
                op.name = name;
            }
            OpKind::Bind => {
                let (portal, stmt) = msg::parse_bind(body);
                op.text = self.statements.get(&stmt);
                match &op.text {
                    Some(t) => self.portals.insert(portal, t.clone()),
                    None => self.portals.remove(&portal),
                }
                op.name = stmt;
            }
            OpKind::Execute => {
                let (portal, _limit) = msg::parse_execute(body);
                op.text = self.portals.get(&portal);
                // The statement's name, for the summary when its text is unknown.
                op.name = self
                    .queue
                    .back()
                    .filter(|g| g.open && g.kind == Kind::Extended)
                    .and_then(|g| g.ops.iter().rev().find(|o| o.kind == OpKind::Bind))
                    .map(|o| o.name.clone())
                    .unwrap_or(portal);
            }
            OpKind::Describe | OpKind::Close => {
                let (what, name) = msg::parse_target(body);
                if what == b'S' {
                    op.text = self.statements.get(&name);
                    if kind == OpKind::Close {
                        self.statements.remove(&name);
                    }
                } else {
                    op.text = self.portals.get(&name);
                    if kind == OpKind::Close {
                        self.portals.remove(&name);
                    }
                }
                op.name = name;
            }
            _ => {}
        }
        let sync = kind == OpKind::Sync;
        match self.queue.back_mut() {
            Some(g) if g.open && g.kind == Kind::Extended => {
                g.push_op(op, &m);
                if sync {
                    g.open = false;
                }
            }
            _ => {
                let mut g = Group::new(Kind::Extended, &m, op);
                g.open = !sync;
                self.push_group(g, out);
            }
        }
    }

    fn push_group(&mut self, g: Group, out: &mut Output) {
        if let Some(last) = self.queue.back_mut() {
            // A startup exchange ends when the client moves on.
            if last.kind == Kind::Startup || last.kind == Kind::Extended {
                last.open = false;
            }
        }
        if self.queue.len() >= MAX_PENDING_REQUESTS
            && let Some(old) = self.queue.pop_front()
            && !old.emitted
        {
            self.emit_group(old, Flags::NO_RESPONSE, out);
        }
        self.queue.push_back(g);
    }

    fn backend(&mut self, m: Msg<'_>, out: &mut Output) {
        if let Some(r) = self.enc_reply.take()
            && m.len == 1
        {
            self.enc_answer(r, m, out);
            return;
        }
        let t = m.bytes[0];
        let body = msg::body(m.bytes);
        match t {
            b'A' => {
                self.notification(body, &m, out);
                return;
            }
            b'S' | b'N' | b'K' | b'v' => {
                // Parameter status, notices, key data: asynchronous or informative;
                // their bytes count with the request being answered, if any.
                if let Some(g) = self.queue.front_mut()
                    && (g.responded || g.kind == Kind::Startup)
                {
                    let last = g.ops.len() - 1;
                    let i = g.cur.min(last);
                    g.ops[i].resp_bytes += m.len;
                    g.ops[i].resp_end_ts = Some(m.end_ts);
                } else if let Some(o) = &mut self.orphan {
                    o.bytes += m.len;
                    o.end_ts = m.end_ts;
                }
                return;
            }
            _ => {}
        }
        self.check_loss(&m, out);
        if self.orphan.is_none()
            && let Some(g) = self.queue.front()
            && !g.responded
            && g.kind != Kind::Startup
            && m.peer_ack.is_some_and(|a| a < g.first_end)
        {
            // Sent before the server had the request: it answers one not captured.
            self.start_orphan(&m);
        }
        if self.orphan.is_some() || self.queue.is_empty() {
            self.orphan_message(t, body, m, out);
            return;
        }
        let Some(g) = self.queue.front_mut() else {
            return;
        };
        g.responded = true;
        g.resp_flags |= flags_of(&m, false);
        let i = g.op_for(t);
        let op = &mut g.ops[i];
        op.resp_bytes += m.len;
        op.resp_end_ts = Some(m.end_ts);
        match t {
            b'R' => {
                let code = msg::Reader::new(body).i32().unwrap_or(-1);
                if code != 0 {
                    let name = match code {
                        10 => msg::sasl_mechanism(body)
                            .map_or_else(|| "SASL".to_string(), |m| format!("SASL {m}")),
                        c => msg::auth_name(c).to_string(),
                    };
                    if g.auth.is_none() {
                        g.auth = Some(name);
                    }
                }
            }
            b'D' => op.rows += 1,
            b'C' => {
                let (tag, rows) = msg::parse_tag(body);
                if op.tags.len() < MAX_TAGS {
                    op.tags.push(tag);
                }
                if let Some(r) = rows {
                    op.tag_rows = Some(op.tag_rows.unwrap_or(0) + r);
                }
                if op.kind == OpKind::Execute {
                    op.done = true;
                }
            }
            b'I' | b's' | b'1' | b'2' | b'3' | b'n' | b'V' => {
                if t == b's' && op.tags.len() < MAX_TAGS {
                    op.tags.push("suspended".into());
                }
                if t == b'I' && op.tags.len() < MAX_TAGS {
                    op.tags.push("empty query".into());
                }
                if op.completes_on(t) {
                    op.done = true;
                }
            }
            b'T' if op.kind == OpKind::Describe => op.done = true,
            b'E' => {
                let err = msg::parse_error(body);
                let fatal = err.fatal();
                if op.error.is_none() {
                    op.error = Some(err);
                }
                op.done = true;
                // The server skips the rest of the request up to Sync.
                for later in &mut g.ops[i + 1..] {
                    if later.answered() {
                        later.skipped = true;
                        later.done = true;
                    }
                }
                if fatal {
                    g.fatal = true;
                    if let Some(g) = self.queue.pop_front() {
                        self.finish(g, out);
                    }
                }
            }
            b'Z' => {
                if let Some(g) = self.queue.pop_front() {
                    self.finish(g, out);
                }
            }
            _ => {}
        }
    }

    /// After response bytes were lost: requests whose whole response (ReadyForQuery
    /// included) was in the lost bytes are given up, judged by what the server had
    /// received when it sent this message.
    fn check_loss(&mut self, m: &Msg<'_>, out: &mut Output) {
        let Some(after) = self.resp_lost_after.take() else {
            return;
        };
        if let Some(o) = self.orphan.take() {
            self.emit_orphan(o, Flags::empty(), out);
        }
        while let (Some(_), Some(q1)) = (self.queue.front(), self.queue.get(1)) {
            let q1_received = m.peer_ack.is_some_and(|a| q1.first_end <= a);
            if q1_received && q1.start_ts > after {
                if let Some(g) = self.queue.pop_front() {
                    let flags = if g.responded {
                        Flags::RESPONSE_GAP
                    } else {
                        Flags::NO_RESPONSE | Flags::RESPONSE_GAP
                    };
                    if !g.emitted {
                        self.emit_group(g, flags, out);
                    }
                }
                continue;
            }
            if let Some(g) = self.queue.front_mut() {
                g.resp_flags |= Flags::PAIRING_UNCERTAIN;
            }
            break;
        }
    }

    fn start_orphan(&mut self, m: &Msg<'_>) {
        self.orphan = Some(Orphan {
            start_ts: m.start_ts,
            end_ts: m.end_ts,
            bytes: 0,
            rows: 0,
            tags: Vec::new(),
            tag_rows: None,
            error: None,
            flags: Flags::empty(),
        });
    }

    fn orphan_message(&mut self, t: u8, body: &[u8], m: Msg<'_>, out: &mut Output) {
        if self.orphan.is_none() {
            self.start_orphan(&m);
        }
        let Some(o) = &mut self.orphan else {
            return;
        };
        o.bytes += m.len;
        o.end_ts = m.end_ts;
        o.flags |= flags_of(&m, false);
        match t {
            b'D' => o.rows += 1,
            b'C' => {
                let (tag, rows) = msg::parse_tag(body);
                if o.tags.len() < MAX_TAGS {
                    o.tags.push(tag);
                }
                if let Some(r) = rows {
                    o.tag_rows = Some(o.tag_rows.unwrap_or(0) + r);
                }
            }
            b'E' if o.error.is_none() => o.error = Some(msg::parse_error(body)),
            b'Z' => {
                if let Some(o) = self.orphan.take() {
                    self.emit_orphan(o, Flags::empty(), out);
                }
            }
            _ => {}
        }
    }

    fn emit_orphan(&mut self, o: Orphan, extra: Flags, out: &mut Output) {
        let mut e = self.base.clone();
        e.timestamp = o.start_ts;
        e.response_size = Some(o.bytes);
        let rows = o.tag_rows.or((o.rows > 0).then_some(o.rows as i64));
        e.db_rows = rows;
        let outcome = outcome_text(&o.tags, rows, o.error.as_ref());
        e.status_code = Some(i32::from(o.error.is_some()));
        e.db_error = o.error.as_ref().map(PgError::text);
        e.summary = Some(format!("(request not captured) → {outcome}"));
        let flags = o.flags | extra | Flags::NO_REQUEST;
        e.flags = flags;
        e.incomplete = flags.intersects(Flags::INCOMPLETE);
        out.entries.emit(e);
    }

    fn enc_answer(&mut self, r: EncRequest, m: Msg<'_>, out: &mut Output) {
        let accepted = matches!(m.bytes[0], b'S' | b'G');
        if !accepted {
            // Refused: the client goes on in plain text (or gives up); the refusal is
            // told with the startup that follows.
            self.enc_refused = Some(r);
            return;
        }
        let mut e = self.base.clone();
        e.timestamp = r.start_ts;
        e.elapsed_time = Some((m.end_ts - r.start_ts).max(0) / 1000);
        e.method = Some(r.what.into());
        e.status_code = Some(0);
        e.request_size = Some(r.size);
        e.response_size = Some(m.len);
        let how = if r.what == "SSLRequest" {
            "TLS"
        } else {
            "GSSAPI"
        };
        e.summary = Some(format!(
            "{} → accepted: the connection is encrypted ({how}) from here on",
            r.what
        ));
        e.flags = r.flags | flags_of(&m, false);
        e.incomplete = e.flags.intersects(Flags::INCOMPLETE);
        out.entries.emit(e);
        self.encrypted = true;
        self.queue.clear();
    }

    fn notification(&mut self, body: &[u8], m: &Msg<'_>, out: &mut Output) {
        let mut r = msg::Reader::new(body);
        let pid = r.i32().unwrap_or(0);
        let channel = msg::lossy(r.cstr_or_rest(), 256);
        let payload = msg::lossy(r.cstr_or_rest(), MAX_SUMMARY_QUERY);
        let mut e = self.base.clone();
        e.timestamp = m.start_ts;
        e.method = Some("NotificationResponse".into());
        e.path = Some(channel.clone());
        e.status_code = Some(0);
        e.response_size = Some(m.len);
        e.summary = Some(format!("NOTIFY {channel} {payload:?} from backend {pid}"));
        e.flags = flags_of(m, false);
        e.incomplete = e.flags.intersects(Flags::INCOMPLETE);
        out.entries.emit(e);
    }

    /// A request whose response is complete (or as complete as it will get).
    fn finish(&mut self, g: Group, out: &mut Output) {
        if g.emitted {
            return;
        }
        self.emit_group(g, Flags::empty(), out);
    }

    /// Emits a request's entries: one per Execute that ran, else one for the request.
    fn emit_group(&mut self, mut g: Group, extra: Flags, out: &mut Output) {
        let flags = g.req_flags | g.resp_flags | extra;
        if g.kind == Kind::Startup {
            let e = self.startup_entry(&g, flags);
            out.entries.emit(e);
            return;
        }
        // Split the messages into runs ending at an Execute that ran; what follows
        // the last one (Sync, Close) goes with it.
        let mut runs: Vec<(usize, usize)> = Vec::new();
        let mut from = 0;
        for (i, op) in g.ops.iter().enumerate() {
            let ran = op.kind == OpKind::Execute && !op.skipped;
            if ran || op.error.is_some() {
                runs.push((from, i + 1));
                from = i + 1;
            }
        }
        match runs.last_mut() {
            Some(last) => last.1 = g.ops.len(),
            None => runs.push((0, g.ops.len())),
        }
        let n = runs.len();
        let extra_ops = std::mem::take(&mut g.extra_ops);
        for (k, (a, b)) in runs.into_iter().enumerate() {
            let e = self.run_entry(&g, a, b, flags, extra_ops, k + 1 == n);
            out.entries.emit(e);
        }
    }

    fn run_entry(
        &self,
        g: &Group,
        a: usize,
        b: usize,
        flags: Flags,
        extra_ops: u64,
        last: bool,
    ) -> Entry {
        let ops = &g.ops[a..b];
        // The message that names the entry: the Execute that ran, the one that
        // failed, else the most telling one.
        let main = ops
            .iter()
            .find(|o| o.kind == OpKind::Execute && !o.skipped)
            .or_else(|| ops.iter().find(|o| o.error.is_some()))
            .or_else(|| {
                [
                    OpKind::Query,
                    OpKind::Function,
                    OpKind::Parse,
                    OpKind::Bind,
                    OpKind::Describe,
                    OpKind::Close,
                    OpKind::Execute,
                ]
                .iter()
                .find_map(|k| ops.iter().find(|o| o.kind == *k))
            })
            .or(ops.first());
        let mut e = self.base.clone();
        let Some(main) = main else {
            return e;
        };
        let start = ops.first().map_or(g.start_ts, |o| o.start_ts);
        e.timestamp = start;
        e.method = Some(main.kind.name().into());
        let text = main
            .text
            .clone()
            .or_else(|| ops.iter().find_map(|o| o.text.clone()));
        if let Some(t) = &text {
            let s = msg::lossy(t, msg::MAX_QUERY_BYTES);
            e.path = Some(s.clone());
            e.postgresql_query = Some(s);
        }
        e.request_size = Some(ops.iter().map(|o| o.req_bytes).sum());
        let responded = ops.iter().any(|o| o.resp_end_ts.is_some());
        let error = ops.iter().find_map(|o| o.error.as_ref());
        let mut flags = flags;
        if responded || (last && g.responded) {
            e.response_size = Some(ops.iter().map(|o| o.resp_bytes).sum());
            let end = ops
                .iter()
                .filter_map(|o| o.resp_end_ts)
                .max()
                .unwrap_or(start);
            e.elapsed_time = Some((end - start).max(0) / 1000);
            e.status_code = Some(i32::from(error.is_some()));
        } else {
            flags |= Flags::NO_RESPONSE;
            flags = Flags(flags.0 & !Flags::PAIRING_UNCERTAIN.0);
        }
        if flags.contains(Flags::NO_RESPONSE) {
            e.response_size = None;
            e.elapsed_time = None;
            e.status_code = None;
        }
        let tags: Vec<String> = ops.iter().flat_map(|o| o.tags.iter().cloned()).collect();
        let tag_rows = ops.iter().filter_map(|o| o.tag_rows).reduce(|x, y| x + y);
        let data_rows: u64 = ops.iter().map(|o| o.rows).sum();
        let rows = tag_rows.or((data_rows > 0).then_some(data_rows as i64));
        if e.status_code.is_some() {
            e.db_rows = rows;
        }
        e.db_error = error.map(PgError::text);
        let mut what = main.kind.name().to_string();
        match &text {
            Some(t) => {
                what.push(' ');
                what.push_str(&one_line(t, MAX_SUMMARY_QUERY));
            }
            None if !main.name.is_empty() => {
                what.push_str(&format!(" (statement {:?}, text not captured)", main.name));
            }
            None if matches!(main.kind, OpKind::Execute | OpKind::Bind) => {
                what.push_str(" (unnamed statement, text not captured)");
            }
            None => {}
        }
        let skipped = ops
            .iter()
            .filter(|o| o.skipped && o.kind == OpKind::Execute)
            .count();
        if skipped > 0 {
            what.push_str(&format!(" ({skipped} Execute skipped after the error)"));
        }
        if extra_ops > 0 && last {
            what.push_str(&format!(" (+{extra_ops} messages)"));
        }
        let outcome = if flags.contains(Flags::NO_RESPONSE) {
            "(no response)".to_string()
        } else {
            outcome_text(&tags, rows, error)
        };
        e.summary = Some(format!("{what} → {outcome}"));
        e.flags = flags;
        e.incomplete = flags.intersects(Flags::INCOMPLETE);
        e
    }

    fn startup_entry(&self, g: &Group, mut flags: Flags) -> Entry {
        let mut e = self.base.clone();
        e.timestamp = g.start_ts;
        e.method = Some("Startup".into());
        e.request_size = Some(g.ops.iter().map(|o| o.req_bytes).sum());
        let param = |k: &str| {
            g.params
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        let mut what = String::from("Startup");
        for k in ["user", "database", "application_name", "replication"] {
            if let Some(v) = param(k) {
                what.push_str(&format!(" {k}={v}"));
            }
        }
        if let Some(r) = g.ssl_refused {
            what = format!("{r} refused; {what}");
        }
        let error = g.ops.iter().find_map(|o| o.error.as_ref());
        let outcome = if g.responded {
            e.response_size = Some(g.response_size());
            let end = g
                .ops
                .iter()
                .filter_map(|o| o.resp_end_ts)
                .max()
                .unwrap_or(g.start_ts);
            e.elapsed_time = Some((end - g.start_ts).max(0) / 1000);
            e.status_code = Some(i32::from(error.is_some()));
            e.db_error = error.map(PgError::text);
            let auth = g.auth.as_deref().unwrap_or("trust");
            match error {
                Some(err) if g.auth.is_some() => {
                    format!(
                        "ERROR {} {} (authentication: {auth})",
                        err.code, err.message
                    )
                }
                Some(err) => format!("ERROR {} {}", err.code, err.message),
                None if flags.contains(Flags::NO_RESPONSE) => "(no response)".into(),
                None => format!("ready (authentication: {auth})"),
            }
        } else {
            flags |= Flags::NO_RESPONSE;
            "(no response)".into()
        };
        if flags.contains(Flags::NO_RESPONSE) {
            e.response_size = None;
            e.elapsed_time = None;
            e.status_code = None;
        }
        e.summary = Some(format!("{what} → {outcome}"));
        e.flags = flags;
        e.incomplete = flags.intersects(Flags::INCOMPLETE);
        e
    }

    fn expire(&mut self, now: i64, out: &mut Output) {
        let timeout = out.limits.response_timeout_ns;
        let mut i = 0;
        while i < self.queue.len() {
            let g = &self.queue[i];
            if now - g.start_ts <= timeout {
                break;
            }
            if !g.emitted && !g.responded {
                let mut copy_flags = Flags::NO_RESPONSE | Flags::TIMEOUT;
                copy_flags |= g.req_flags;
                let e = if g.kind == Kind::Startup {
                    self.startup_entry(g, copy_flags)
                } else {
                    let n = g.ops.len();
                    self.run_entry(g, 0, n, copy_flags, g.extra_ops, true)
                };
                out.entries.emit(e);
                self.queue[i].emitted = true;
            }
            i += 1;
        }
        // Placeholders beyond the limit would only grow.
        while self.queue.len() > MAX_PENDING_REQUESTS {
            self.queue.pop_front();
        }
    }

    fn close(&mut self, out: &mut Output) {
        if let Some(o) = self.orphan.take() {
            self.emit_orphan(o, Flags::TRUNCATED, out);
        }
        while let Some(g) = self.queue.pop_front() {
            if g.emitted {
                continue;
            }
            let extra = if g.responded && !g.fatal && g.kind != Kind::Startup {
                Flags::TRUNCATED
            } else if g.responded {
                Flags::empty()
            } else {
                Flags::NO_RESPONSE
            };
            self.emit_group(g, extra, out);
        }
        let pending = [
            (self.enc_reply.take(), true),
            (self.enc_refused.take(), false),
        ];
        for (r, unanswered) in pending {
            let Some(r) = r else { continue };
            let mut e = self.base.clone();
            e.timestamp = r.start_ts;
            e.method = Some(r.what.into());
            e.request_size = Some(r.size);
            e.flags = r.flags;
            if unanswered {
                e.flags |= Flags::NO_RESPONSE;
                e.summary = Some(format!("{} → (no response)", r.what));
            } else {
                e.status_code = Some(0);
                e.response_size = Some(1);
                e.summary = Some(format!("{} → refused; no startup followed", r.what));
            }
            e.incomplete = e.flags.intersects(Flags::INCOMPLETE);
            out.entries.emit(e);
        }
    }
}

/// What the server answered, for a summary.
fn outcome_text(tags: &[String], rows: Option<i64>, error: Option<&PgError>) -> String {
    if let Some(err) = error {
        return format!("ERROR {} {}", err.code, err.message);
    }
    let mut s = if tags.is_empty() {
        "ok".to_string()
    } else {
        tags.join(", ")
    };
    if let Some(r) = rows
        && tags.len() != 1
    {
        let unit = if r == 1 { "row" } else { "rows" };
        s.push_str(&format!(" ({r} {unit})"));
    }
    s
}

/// A query on one line, cut for a summary.
fn one_line(t: &[u8], max: usize) -> String {
    let s = msg::lossy(t, max);
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.trim().chars() {
        if c.is_whitespace() {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    if t.len() > max {
        out.push('…');
    }
    out
}

impl StreamDissector for Postgres {
    fn data(&mut self, ctx: &FlowCtx, seg: Seg<'_>, out: &mut Output) {
        if self.core.encrypted {
            let client = self.core.client;
            let tls = self
                .tls
                .get_or_insert_with(|| Box::new(Tls::new(client, ctx)));
            tls.data(ctx, seg, out);
            return;
        }
        let i = seg.dir.index();
        self.halves[i].push(seg, ctx.midstream[i], &mut self.core, out);
    }

    fn gap(&mut self, ctx: &FlowCtx, dir: Dir, len: u64, ts: i64, out: &mut Output) {
        if self.core.encrypted {
            if let Some(tls) = self.tls.as_mut() {
                tls.gap(ctx, dir, len, ts, out);
            }
            return;
        }
        self.halves[dir.index()].gap(len, ts, &mut self.core, out);
    }

    fn end(&mut self, ctx: &FlowCtx, dir: Dir, ts: i64, out: &mut Output) {
        self.halves[dir.index()].end(ts, &mut self.core, out);
        if let Some(tls) = self.tls.as_mut() {
            tls.end(ctx, dir, ts, out);
        }
    }

    fn closed(&mut self, ctx: &FlowCtx, ts: i64, out: &mut Output) {
        for d in [self.core.client, self.core.client.flip()] {
            self.halves[d.index()].end(ts, &mut self.core, out);
        }
        self.core.close(out);
        if let Some(tls) = self.tls.as_mut() {
            tls.closed(ctx, ts, out);
        }
    }

    fn tick(&mut self, ctx: &FlowCtx, now: i64, out: &mut Output) {
        if let Some(tls) = self.tls.as_mut() {
            tls.tick(ctx, now, out);
        }
        if self
            .core
            .queue
            .front()
            .is_some_and(|g| now - g.start_ts > out.limits.response_timeout_ns)
        {
            self.core.expire(now, out);
        }
    }
}

#[cfg(test)]
mod tests;
