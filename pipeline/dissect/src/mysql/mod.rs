//! MySQL and MariaDB (client/server protocol 4.1+): the greeting and login, commands
//! paired with their replies in order, result sets counted (columns, rows, several
//! results per command), prepared statements whose executions carry the text they
//! run, the compressed protocol (zlib), and the switch to TLS.
//!
//! The server speaks first (the greeting), which is how a connection is recognised;
//! on a connection joined mid-way, commands (sequence number 0, a known command byte,
//! plausible content) or a run of numbered reply packets do. A reply's packets are
//! numbered from 1, which finds the start of the next reply after lost bytes, and
//! TCP acknowledgments tell a reply to a command the capture missed.

pub mod packet;

use std::collections::VecDeque;
use std::rc::Rc;

use reef_reassembly::{Dir, FlowCtx};
use reef_schema::{Entry, Flags, Protocol, Transport};
use rustc_hash::FxHashMap;

use self::packet::{Reply, lossy};
use crate::framing::{Frame, Framer, Handler, Msg, Resync, scan};
use crate::tls::Tls;
use crate::{Output, Probe, Seg, StreamDissector};

/// Commands waiting for a reply per connection (commands without a reply may be
/// sent back to back); past this the oldest is given up.
pub const MAX_PENDING_COMMANDS: usize = 256;
/// Prepared statements remembered per connection (by statement id).
pub const MAX_STATEMENTS: usize = 4096;
/// Bytes of query text shown in a summary.
pub const MAX_SUMMARY_QUERY: usize = 160;
/// Bytes kept of a client packet longer than a segment.
const CLIENT_KEEP: usize = packet::MAX_QUERY_BYTES + 1024;
/// Bytes kept of a server packet longer than a segment, and of a compressed packet
/// (whose inflated contents are read on).
const SERVER_KEEP: usize = 4096;
const COMPRESSED_KEEP: usize = 1024 * 1024;
/// Inflated bytes handed on at a time.
const INFLATE_CHUNK: usize = 32 * 1024;

pub fn make(client: Dir, ctx: &FlowCtx, out: &Output) -> Box<dyn StreamDissector> {
    Box::new(Mysql::new(client, ctx, out))
}

/// Does `dir` speak MySQL? A server greeting (or an error instead of one) makes the
/// other side the client; on a connection joined mid-way a command (plain or
/// compressed) makes `dir` the client and a run of reply packets the other side.
pub fn probe(ctx: &FlowCtx, dir: Dir, bytes: &[u8]) -> Probe {
    match greeting(bytes) {
        Some(true) => return Probe::Client(dir.flip()),
        None => return Probe::NotYet,
        Some(false) => {}
    }
    if !ctx.midstream[dir.index()] {
        return Probe::No;
    }
    let window = &bytes[..bytes.len().min(4096)];
    let mut wait = false;
    for check in [
        packet::looks_like_command(window),
        packet::looks_like_compressed(window, true),
    ] {
        match check {
            Some(true) => return Probe::Client(dir),
            None => wait = true,
            Some(false) => {}
        }
    }
    match packet::looks_like_replies(window) {
        Some(true) => return Probe::Client(dir.flip()),
        None => wait = true,
        Some(false) => {}
    }
    if wait { Probe::NotYet } else { Probe::No }
}

/// A greeting: sequence number 0, protocol 10 and a version string, or an ERR
/// packet (too many connections, host not allowed).
fn greeting(b: &[u8]) -> Option<bool> {
    let (len, seq) = packet::header(b)?;
    if seq != 0 || !(5..=1024).contains(&len) {
        return Some(false);
    }
    match b.get(4)? {
        10 => {
            let p = &b[4..b.len().min(4 + len)];
            if p.len() < len {
                // The version must at least begin like one.
                let v = &p[1..];
                let ok = v.iter().take_while(|c| **c != 0).all(u8::is_ascii_graphic)
                    && v.first().is_none_or(u8::is_ascii_digit);
                return if ok { None } else { Some(false) };
            }
            Some(
                packet::parse_greeting(p).is_some_and(|g| g.version.as_bytes()[0].is_ascii_digit()),
            )
        }
        0xFF => {
            let p = &b[4..b.len().min(4 + len)];
            if p.len() < 4 {
                return None;
            }
            let code = u16::from_le_bytes([p[1], p[2]]);
            Some((1000..5000).contains(&code) && b.len() == 4 + len)
        }
        _ => Some(false),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Joined mid-way: plain or compressed is decided by what the bytes look like.
    Unknown,
    Plain,
    Zlib,
    Zstd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the server's greeting.
    Greeting,
    /// The login exchange.
    Login,
    Command,
}

/// Where a reply stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    First,
    Columns(u64),
    ColumnsEnd,
    Rows,
    /// Parameter and column definitions of a prepared statement still to come, and
    /// EOF packets after them (before DEPRECATE_EOF).
    PrepareDefs(u64, u8),
    /// A LOCAL INFILE request: the client sends the file, then OK or ERR.
    Infile,
    Done,
}

/// A command (or the login) and its reply.
#[derive(Debug)]
struct Cmd {
    name: &'static str,
    reply: Reply,
    text: Option<Rc<[u8]>>,
    /// What the summary says besides the text (schema, statement id, user).
    detail: Option<String>,
    start_ts: i64,
    end_offset: u64,
    req_bytes: u64,
    req_flags: Flags,
    state: State,
    responded: bool,
    resp_bytes: u64,
    resp_end_ts: i64,
    resp_flags: Flags,
    /// Next sequence number expected in the reply.
    next_seq: u8,
    results: u32,
    columns: u64,
    rows: u64,
    affected: Option<u64>,
    error: Option<packet::Err>,
    /// Prepared: statement id, parameters, columns.
    prepared: Option<(u32, u16, u16)>,
    /// Emitted already after the response timeout; its reply is still awaited.
    emitted: bool,
    /// Reply bytes were lost: only a terminator, an error or a new reply's first
    /// packet tells where it ends.
    broken: bool,
}

impl Cmd {
    fn new(name: &'static str, reply: Reply, m: &Msg<'_>) -> Cmd {
        Cmd {
            name,
            reply,
            text: None,
            detail: None,
            start_ts: m.start_ts,
            end_offset: m.end_offset(),
            req_bytes: m.len,
            req_flags: req_flags(m),
            state: State::First,
            responded: false,
            resp_bytes: 0,
            resp_end_ts: m.end_ts,
            resp_flags: Flags::empty(),
            next_seq: 1,
            results: 0,
            columns: 0,
            rows: 0,
            affected: None,
            error: None,
            prepared: None,
            emitted: false,
            broken: false,
        }
    }
}

fn req_flags(m: &Msg<'_>) -> Flags {
    let mut f = Flags::empty();
    if m.gap {
        f |= Flags::REQUEST_GAP;
    }
    if m.truncated {
        f |= Flags::TRUNCATED;
    }
    f
}

fn resp_flags(m: &Msg<'_>) -> Flags {
    let mut f = Flags::empty();
    if m.gap {
        f |= Flags::RESPONSE_GAP;
    }
    if m.truncated {
        f |= Flags::TRUNCATED;
    }
    f
}

#[derive(Debug)]
struct Stmt {
    text: Rc<[u8]>,
}

struct Core {
    client: Dir,
    base: Entry,
    phase: Phase,
    greeting: Option<packet::Greeting>,
    /// Capabilities both sides agreed on, once the login was seen.
    caps: Option<u32>,
    ext_caps: u32,
    deprecate_eof: Option<bool>,
    /// Set by the packet that switches the connection to compression.
    compress_now: Option<Mode>,
    encrypted: bool,
    queue: VecDeque<Cmd>,
    stmts: FxHashMap<u32, Stmt>,
    stmt_order: VecDeque<u32>,
    /// Reply packets to a command the capture missed.
    orphan: Option<Cmd>,
    /// A payload of the maximum length continues in the next packet.
    continuing: [bool; 2],
    /// An EOF packet may still follow a prepared statement's definitions (the EOF
    /// mode was not seen): it is taken silently.
    swallow_eof: Option<u8>,
    /// Plain packets are numbered; inside compressed ones clients differ.
    numbered: bool,
    /// The user and schema of the login, for later summaries.
    login_user: Option<String>,
    /// Per direction, the compressed packet being read: its wire length, inflated
    /// length, and the inflated and wire bytes accounted so far. Packets inside it
    /// count their share of its wire bytes.
    wire: [Option<Share>; 2],
}

#[derive(Debug, Clone, Copy)]
struct Share {
    wire: u64,
    inflated: u64,
    read: u64,
    counted: u64,
}

impl Share {
    /// The wire bytes of `n` more inflated bytes.
    fn take(&mut self, n: u64) -> u64 {
        self.read = (self.read + n).min(self.inflated);
        let upto = self.wire * self.read / self.inflated.max(1);
        let share = upto.saturating_sub(self.counted);
        self.counted = upto;
        share
    }
}

/// How the link carries packets, and the inflated stream of each direction.
struct Link {
    mode: Mode,
    inner_off: [u64; 2],
    inflate: flate2::Decompress,
    buf: Vec<u8>,
}

/// A MySQL connection.
pub struct Mysql {
    outer: [Framer; 2],
    inner: [Framer; 2],
    link: Link,
    core: Core,
    /// The TLS handshake after the client's SSLRequest: its hellos are read like those
    /// of any TLS connection (SNI, ALPN, version, fingerprints), nothing after them.
    tls: Option<Box<Tls>>,
}

impl Mysql {
    pub fn new(client: Dir, ctx: &FlowCtx, out: &Output) -> Mysql {
        let c = ctx.endpoints[client.index()];
        let s = ctx.endpoints[client.flip().index()];
        let base = Entry {
            protocol: Protocol::Mysql,
            transport: Transport::Tcp,
            src_ip: c.ip,
            src_port: Some(c.port),
            dst_ip: s.ip,
            dst_port: Some(s.port),
            ..Entry::default()
        };
        let budget = &out.body_budget;
        let keep = |d: Dir| {
            if d == client {
                CLIENT_KEEP
            } else {
                SERVER_KEEP
            }
        };
        Mysql {
            tls: None,
            outer: [
                Framer::new(
                    Dir::Forward,
                    COMPRESSED_KEEP.max(keep(Dir::Forward)),
                    budget.clone(),
                ),
                Framer::new(
                    Dir::Reverse,
                    COMPRESSED_KEEP.max(keep(Dir::Reverse)),
                    budget.clone(),
                ),
            ],
            inner: [
                Framer::new(Dir::Forward, keep(Dir::Forward), budget.clone()),
                Framer::new(Dir::Reverse, keep(Dir::Reverse), budget.clone()),
            ],
            link: Link {
                mode: Mode::Unknown,
                inner_off: [0; 2],
                inflate: flate2::Decompress::new(true),
                buf: Vec::new(),
            },
            core: Core {
                client,
                base,
                phase: Phase::Greeting,
                greeting: None,
                caps: None,
                ext_caps: 0,
                deprecate_eof: None,
                compress_now: None,
                encrypted: false,
                queue: VecDeque::new(),
                stmts: FxHashMap::default(),
                stmt_order: VecDeque::new(),
                orphan: None,
                continuing: [false; 2],
                swallow_eof: None,
                numbered: true,
                login_user: None,
                wire: [None; 2],
            },
        }
    }
}

/// The outer layer: plain packets go to the core; compressed packets are inflated
/// into each direction's inner stream of plain packets.
struct Outer<'a> {
    link: &'a mut Link,
    inner: &'a mut [Framer; 2],
    core: &'a mut Core,
}

impl Handler for Outer<'_> {
    fn frame(&mut self, dir: Dir, head: &[u8]) -> Frame {
        match self.link.mode {
            Mode::Plain | Mode::Unknown => self.core.frame(dir, head),
            Mode::Zlib | Mode::Zstd => match packet::compressed_header(head) {
                None => Frame::More,
                Some((clen, _, _)) => Frame::Len(7 + clen as u64),
            },
        }
    }

    fn resync(&mut self, dir: Dir, window: &[u8]) -> Resync {
        let client = dir == self.core.client;
        match self.link.mode {
            Mode::Plain => self.core.resync(dir, window),
            Mode::Zlib | Mode::Zstd => scan(window, |b| packet::looks_like_compressed(b, client)),
            Mode::Unknown => {
                let mut found = None;
                let r = scan(window, |b| {
                    let plain = if client {
                        packet::looks_like_command(b)
                    } else {
                        packet::looks_like_replies(b)
                    };
                    match (packet::looks_like_compressed(b, client), plain) {
                        (Some(true), _) => {
                            found = Some(Mode::Zlib);
                            Some(true)
                        }
                        (_, Some(true)) => {
                            found = Some(Mode::Plain);
                            Some(true)
                        }
                        (None, _) | (_, None) => None,
                        _ => Some(false),
                    }
                });
                if let Some(m) = found {
                    self.link.mode = m;
                    if m != Mode::Plain {
                        self.core.numbered = false;
                    }
                }
                r
            }
        }
    }

    fn message(&mut self, dir: Dir, m: Msg<'_>, out: &mut Output) {
        if self.core.encrypted {
            return;
        }
        match self.link.mode {
            Mode::Plain | Mode::Unknown => self.core.message(dir, m, out),
            Mode::Zlib | Mode::Zstd => self.inflate(dir, m, out),
        }
        if let Some(mode) = self.core.compress_now.take() {
            self.link.mode = mode;
            self.core.numbered = false;
        }
    }

    fn lost(&mut self, dir: Dir, ts: i64, out: &mut Output) {
        match self.link.mode {
            Mode::Zlib | Mode::Zstd => {
                // The inflated stream loses an unknown number of bytes: its framer
                // looks for the next packet.
                self.inner[dir.index()].lose_sync();
                self.core.lost(dir, ts, out);
            }
            _ => self.core.lost(dir, ts, out),
        }
    }
}

impl Outer<'_> {
    /// Hands the inflated contents of a compressed packet to the inner stream.
    fn inflate(&mut self, dir: Dir, m: Msg<'_>, out: &mut Output) {
        let Some((clen, _, ulen)) = packet::compressed_header(m.bytes) else {
            return;
        };
        let i = dir.index();
        let payload = &m.bytes[7.min(m.bytes.len())..];
        let payload = &payload[..payload.len().min(clen)];
        let inner_len = if ulen == 0 { clen } else { ulen } as u64;
        // Wire bytes of a packet cut across compressed packets go with its end.
        let carry = self.core.wire[i].map_or(0, |s| s.wire - s.counted);
        self.core.wire[i] = Some(Share {
            wire: m.len + carry,
            inflated: inner_len.max(1),
            read: 0,
            counted: 0,
        });
        let start = self.link.inner_off[i];
        self.link.inner_off[i] += inner_len;
        fn seg<'d>(dir: Dir, m: &Msg<'_>, offset: u64, data: &'d [u8]) -> Seg<'d> {
            Seg {
                dir,
                offset,
                data,
                ts: m.end_ts,
                peer_ack: m.peer_ack,
            }
        }
        let mut produced = 0u64;
        if ulen == 0 {
            self.inner[i].push(seg(dir, &m, start, payload), false, &mut *self.core, out);
            produced = payload.len() as u64;
        } else if self.link.mode == Mode::Zlib {
            let inflate = &mut self.link.inflate;
            inflate.reset(true);
            let mut input = payload;
            self.link.buf.resize(INFLATE_CHUNK, 0);
            loop {
                let before_in = inflate.total_in();
                let before_out = inflate.total_out();
                let status =
                    inflate.decompress(input, &mut self.link.buf, flate2::FlushDecompress::None);
                let used = (inflate.total_in() - before_in) as usize;
                let got = (inflate.total_out() - before_out) as usize;
                input = &input[used.min(input.len())..];
                let got = got.min(inner_len.saturating_sub(produced) as usize);
                if got > 0 {
                    let data = &self.link.buf[..got];
                    self.inner[i].push(
                        seg(dir, &m, start + produced, data),
                        false,
                        &mut *self.core,
                        out,
                    );
                    produced += got as u64;
                }
                match status {
                    Ok(flate2::Status::Ok) if got > 0 || used > 0 => {}
                    _ => break,
                }
                if produced >= inner_len {
                    break;
                }
            }
        }
        if produced < inner_len {
            // Cut, lost, zstd, or corrupt: the rest of the inflated stream is missing.
            let missing = inner_len - produced;
            self.inner[i].gap(missing, m.end_ts, &mut *self.core, out);
        }
    }
}

impl Handler for Core {
    fn frame(&mut self, _dir: Dir, head: &[u8]) -> Frame {
        match packet::header(head) {
            None => Frame::More,
            Some((len, _)) => Frame::Len(4 + len as u64),
        }
    }

    fn resync(&mut self, dir: Dir, window: &[u8]) -> Resync {
        if dir == self.client {
            scan(window, packet::looks_like_command)
        } else {
            // A reply's first packet (numbered 1), or a terminator of the one broken.
            scan(window, |b| {
                let (len, seq) = packet::header(b)?;
                if len == 0 || len >= packet::MAX_PAYLOAD {
                    return Some(false);
                }
                let first = *b.get(4)?;
                let terminator = matches!(first, 0xFE | 0xFF) && len < 9;
                if seq == 1 || terminator {
                    // A lone terminator that ends the bytes ends a reply too.
                    let alone = terminator && b.len() == 4 + len;
                    return match packet::looks_like_replies(b) {
                        Some(true) => Some(true),
                        _ if alone => Some(true),
                        r => r.or(Some(b.len() >= 4 + len)),
                    };
                }
                Some(false)
            })
        }
    }

    fn message(&mut self, dir: Dir, m: Msg<'_>, out: &mut Output) {
        if self.encrypted {
            return;
        }
        let i = dir.index();
        let Some((len, seq)) = packet::header(m.bytes) else {
            return;
        };
        let mut m = m;
        if let Some(share) = &mut self.wire[i] {
            m.len = share.take(m.len);
        }
        let continued = std::mem::replace(&mut self.continuing[i], len == packet::MAX_PAYLOAD);
        let payload = &m.bytes[4..];
        if continued {
            self.more_bytes(dir, &m);
            return;
        }
        if dir == self.client {
            self.client_packet(seq, payload, m, out);
        } else {
            self.server_packet(seq, payload, m, out);
        }
    }

    fn lost(&mut self, dir: Dir, _ts: i64, _out: &mut Output) {
        self.continuing[dir.index()] = false;
        if dir == self.client {
            if let Some(c) = self.queue.back_mut() {
                c.req_flags |= Flags::REQUEST_GAP;
            }
            return;
        }
        if let Some(c) = self.queue.front_mut()
            && c.responded
        {
            c.resp_flags |= Flags::RESPONSE_GAP;
            c.broken = true;
        }
        if let Some(o) = &mut self.orphan {
            o.resp_flags |= Flags::RESPONSE_GAP;
            o.broken = true;
        }
    }
}

impl Core {
    fn more_bytes(&mut self, dir: Dir, m: &Msg<'_>) {
        if dir == self.client {
            if let Some(c) = self.queue.back_mut() {
                c.req_bytes += m.len;
            }
        } else if let Some(c) = self.orphan.as_mut().or(self.queue.front_mut()) {
            c.resp_bytes += m.len;
            c.resp_end_ts = m.end_ts;
        }
    }

    fn client_packet(&mut self, seq: u8, p: &[u8], m: Msg<'_>, out: &mut Output) {
        match self.phase {
            Phase::Greeting
                if seq == 0 && p.first().and_then(|b| packet::command(*b)).is_some() =>
            {
                // No greeting seen: a connection joined between commands.
                self.phase = Phase::Command;
                self.client_packet(seq, p, m, out);
            }
            Phase::Greeting | Phase::Login => {
                if self.phase == Phase::Login
                    && let Some(c) = self.queue.back_mut()
                    && c.name == "Login"
                {
                    // Authentication data after an auth switch.
                    c.req_bytes += m.len;
                    return;
                }
                self.login(p, m, out);
            }
            Phase::Command => {
                let first = p.first().copied();
                let new_command = (seq == 0 || !self.numbered)
                    && first.and_then(packet::command).is_some()
                    && !self.queue.back().is_some_and(|c| {
                        matches!(c.state, State::Infile) || c.reply == Reply::Auth && c.responded
                    });
                if new_command && let Some(b) = first {
                    self.command(b, p, m, out);
                } else if let Some(c) = self.queue.back_mut() {
                    // File contents after LOCAL INFILE, authentication data.
                    c.req_bytes += m.len;
                    c.req_flags |= req_flags(&m);
                }
            }
        }
    }

    fn login(&mut self, p: &[u8], m: Msg<'_>, out: &mut Output) {
        let l = packet::parse_login(p);
        let server_caps = self.greeting.as_ref().map_or(u32::MAX, |g| g.caps);
        let server_ext = self.greeting.as_ref().map_or(0, |g| g.ext_caps);
        let caps = l.caps & server_caps;
        self.caps = Some(caps);
        self.ext_caps = l.ext_caps & server_ext;
        self.deprecate_eof = Some(caps & packet::CLIENT_DEPRECATE_EOF != 0);
        let server = self
            .greeting
            .as_ref()
            .map(|g| format!(" (server {})", g.version))
            .unwrap_or_default();
        if l.ssl_request {
            let mut e = self.base.clone();
            e.timestamp = m.start_ts;
            e.method = Some("SSLRequest".into());
            e.status_code = Some(0);
            e.request_size = Some(m.len);
            e.summary = Some(format!(
                "SSLRequest{server} → the connection is encrypted (TLS) from here on"
            ));
            e.flags = req_flags(&m);
            e.incomplete = e.flags.intersects(Flags::INCOMPLETE);
            out.entries.emit(e);
            self.encrypted = true;
            return;
        }
        let mut c = Cmd::new("Login", Reply::Auth, &m);
        let mut d = String::new();
        if let Some(u) = &l.user {
            d.push_str(&format!(" user={u}"));
        }
        if let Some(db) = &l.database {
            d.push_str(&format!(" db={db}"));
        }
        if let Some(pr) = &l.program {
            d.push_str(&format!(" program={pr}"));
        }
        if let Some(a) = l
            .auth_plugin
            .as_ref()
            .or(self.greeting.as_ref().and_then(|g| g.auth_plugin.as_ref()))
        {
            d.push_str(&format!(" auth={a}"));
        }
        d.push_str(&server);
        c.detail = Some(d.trim_start().to_string());
        // The reply to the login continues the greeting's numbering.
        c.next_seq = 2;
        self.login_user = l.user;
        self.phase = Phase::Login;
        self.queue.push_back(c);
    }

    fn command(&mut self, b: u8, p: &[u8], m: Msg<'_>, out: &mut Output) {
        let Some((name, reply)) = packet::command(b) else {
            return;
        };
        let mut c = Cmd::new(name, reply, &m);
        let body = &p[1..];
        match b {
            0x03 | 0x16 => {
                let attrs = self
                    .caps
                    .map(|caps| caps & packet::CLIENT_QUERY_ATTRIBUTES != 0);
                let t = if b == 0x03 {
                    packet::query_text(body, attrs)
                } else {
                    body
                };
                c.text = Some(t[..t.len().min(packet::MAX_QUERY_BYTES)].into());
            }
            0x17 | 0x19 | 0x1A | 0x1C | 0x18 | 0xFA => {
                if let Some(id) = packet::stmt_id(p) {
                    let text = self.stmts.get(&id).map(|s| s.text.clone());
                    c.detail = Some(match &text {
                        None => format!("statement {id}, prepared before the capture"),
                        // Closing, resetting or feeding a statement runs nothing:
                        // its text is told, not filed as the query.
                        Some(t) if !matches!(b, 0x17 | 0x1C | 0xFA) => {
                            format!("statement {id}: {}", one_line(t, MAX_SUMMARY_QUERY))
                        }
                        Some(_) => format!("statement {id}"),
                    });
                    if matches!(b, 0x17 | 0x1C | 0xFA) {
                        c.text = text;
                    }
                    if b == 0x19 {
                        self.stmts.remove(&id);
                    }
                }
            }
            0x02 | 0x05 | 0x06 => c.detail = Some(lossy(body, 128)),
            0x04 => {
                let table = body.split(|&x| x == 0).next().unwrap_or_default();
                c.detail = Some(lossy(table, 128));
            }
            0x0C => {
                if let Some(id) = packet::Reader::new(body).u32() {
                    c.detail = Some(format!("connection {id}"));
                }
            }
            0x11 => {
                let user = body.split(|&x| x == 0).next().unwrap_or_default();
                c.detail = Some(format!("user={}", lossy(user, 128)));
            }
            _ => {}
        }
        match reply {
            Reply::None => {
                // Quit ends the connection (the flow record tells); closing a
                // statement or sending its data gets no reply: an entry of its own.
                if b != 0x01 {
                    let e = self.entry(&c, Flags::empty());
                    out.entries.emit(e);
                }
            }
            _ => {
                if self.queue.len() >= MAX_PENDING_COMMANDS
                    && let Some(old) = self.queue.pop_front()
                    && !old.emitted
                {
                    let e = self.entry(&old, Flags::NO_RESPONSE);
                    out.entries.emit(e);
                }
                self.queue.push_back(c);
            }
        }
    }

    fn server_packet(&mut self, seq: u8, p: &[u8], m: Msg<'_>, out: &mut Output) {
        if self.phase == Phase::Greeting {
            if let Some(g) = packet::parse_greeting(p) {
                self.greeting = Some(g);
                self.phase = Phase::Login;
                return;
            }
            if p.first() == Some(&0xFF) {
                // Refused before any login (too many connections, host not allowed).
                let mut c = Cmd::new("Login", Reply::Auth, &m);
                c.req_bytes = 0;
                c.responded = true;
                c.resp_bytes = m.len;
                c.resp_end_ts = m.end_ts;
                c.error = Some(packet::parse_err(p));
                c.state = State::Done;
                let e = self.entry(&c, Flags::NO_REQUEST);
                out.entries.emit(e);
                self.phase = Phase::Command;
                return;
            }
            self.phase = Phase::Command;
        }
        let Some(&first) = p.first() else {
            self.more_bytes(self.client.flip(), &m);
            return;
        };
        if let Some(s) = self.swallow_eof.take()
            && first == 0xFE
            && p.len() < 9
            && (!self.numbered || s == seq)
            && self.queue.front().is_none_or(|c| !c.responded)
        {
            return;
        }
        // A reply's first packet while the one before is unfinished: that one lost
        // its end.
        if self.numbered && seq == 1 {
            if let Some(o) = self.orphan.take() {
                self.finish_orphan(o, Flags::RESPONSE_GAP, out);
            }
            if self
                .queue
                .front()
                .is_some_and(|c| c.responded && c.name != "Login")
                && let Some(c) = self.queue.pop_front()
            {
                self.finish(c, Flags::RESPONSE_GAP, out);
            }
        }
        let starts_reply = self.queue.front().is_none_or(|c| !c.responded) && self.orphan.is_none();
        if starts_reply {
            let missed = match self.queue.front() {
                None => true,
                Some(c) => {
                    m.peer_ack.is_some_and(|a| a < c.end_offset)
                        || (self.numbered && seq != c.next_seq && c.name != "Login" && seq != 1)
                }
            };
            if missed {
                let mut o = Cmd::new("", Reply::ResultSet, &m);
                o.req_bytes = 0;
                o.req_flags = Flags::empty();
                o.start_ts = m.start_ts;
                o.next_seq = seq;
                // Mid-reply (joined mid-way, or after loss): where it ends is found
                // by a terminator.
                o.broken = seq != 1;
                self.orphan = Some(o);
            }
        }
        let deprecate = self.deprecate_eof;
        let caps = self.caps;
        let ext = self.ext_caps;
        let orphaned = self.orphan.is_some();
        let Some(c) = self.orphan.as_mut().or(self.queue.front_mut()) else {
            return;
        };
        c.responded = true;
        c.resp_bytes += m.len;
        c.resp_end_ts = m.end_ts;
        c.resp_flags |= resp_flags(&m);
        c.next_seq = seq.wrapping_add(1);
        let learned = step(c, first, p, deprecate, caps, ext);
        if let Some(d) = learned {
            self.deprecate_eof = Some(d);
        }
        let Some(c) = self.orphan.as_ref().or(self.queue.front()) else {
            return;
        };
        if c.state != State::Done {
            return;
        }
        if orphaned {
            if let Some(o) = self.orphan.take() {
                self.finish_orphan(o, Flags::empty(), out);
            }
            return;
        }
        let Some(c) = self.queue.pop_front() else {
            return;
        };
        if c.name == "Login" {
            self.phase = Phase::Command;
            if c.error.is_none() {
                let caps = self.caps.unwrap_or(0);
                if caps & packet::CLIENT_COMPRESS != 0 {
                    self.compress_now = Some(Mode::Zlib);
                } else if caps & packet::CLIENT_ZSTD_COMPRESSION != 0 {
                    self.compress_now = Some(Mode::Zstd);
                }
            }
        }
        if let Some((id, params, _)) = c.prepared
            && let Some(text) = &c.text
        {
            if c.columns == 0 && params == 0 && deprecate.is_none() {
                // Nothing to wait for.
            } else if deprecate.is_none() {
                self.swallow_eof = Some(seq.wrapping_add(1));
            }
            self.remember(id, text.clone());
        }
        self.finish(c, Flags::empty(), out);
    }

    fn remember(&mut self, id: u32, text: Rc<[u8]>) {
        if self.stmts.insert(id, Stmt { text }).is_none() {
            self.stmt_order.push_back(id);
            while self.stmts.len() > MAX_STATEMENTS {
                match self.stmt_order.pop_front() {
                    Some(old) => {
                        self.stmts.remove(&old);
                    }
                    None => break,
                }
            }
        }
    }

    fn finish(&mut self, c: Cmd, extra: Flags, out: &mut Output) {
        if c.emitted {
            return;
        }
        let e = self.entry(&c, extra);
        out.entries.emit(e);
    }

    fn finish_orphan(&mut self, o: Cmd, extra: Flags, out: &mut Output) {
        let e = self.entry(&o, extra | Flags::NO_REQUEST);
        out.entries.emit(e);
    }

    fn entry(&self, c: &Cmd, extra: Flags) -> Entry {
        let mut e = self.base.clone();
        let mut flags = c.req_flags | c.resp_flags | extra;
        let orphan = flags.contains(Flags::NO_REQUEST);
        e.timestamp = c.start_ts;
        if !orphan {
            e.method = Some(c.name.to_string());
            e.request_size = Some(c.req_bytes);
        }
        if let Some(t) = &c.text {
            let s = lossy(t, packet::MAX_QUERY_BYTES);
            e.path = Some(s.clone());
            e.mysql_query = Some(s);
        }
        let mut what = if orphan {
            "(command not captured)".to_string()
        } else {
            c.name.to_string()
        };
        if let Some(t) = &c.text {
            what.push(' ');
            what.push_str(&one_line(t, MAX_SUMMARY_QUERY));
        }
        if let Some(d) = &c.detail {
            if c.text.is_some() {
                what.push_str(&format!(" ({d})"));
            } else {
                what.push(' ');
                what.push_str(d);
            }
        }
        let outcome = if c.responded {
            e.response_size = Some(c.resp_bytes);
            e.elapsed_time = Some((c.resp_end_ts - c.start_ts).max(0) / 1000);
            e.status_code = Some(c.error.as_ref().map_or(0, |x| i32::from(x.code)));
            e.db_error = c.error.as_ref().map(packet::Err::text);
            if c.state != State::Done && !flags.intersects(Flags::RESPONSE_GAP) {
                flags |= Flags::TRUNCATED;
            }
            if c.results > 0 {
                e.db_rows = Some(c.rows as i64);
            } else if let Some(a) = c.affected {
                e.db_rows = Some(a as i64);
            }
            outcome_text(c)
        } else if c.reply == Reply::None {
            "(no reply expected)".into()
        } else {
            flags |= Flags::NO_RESPONSE;
            "(no response)".into()
        };
        e.summary = Some(format!("{what} → {outcome}"));
        e.flags = flags;
        e.incomplete = flags.intersects(Flags::INCOMPLETE);
        e
    }

    fn expire(&mut self, now: i64, out: &mut Output) {
        let timeout = out.limits.response_timeout_ns;
        for i in 0..self.queue.len() {
            let c = &self.queue[i];
            if now - c.start_ts <= timeout {
                break;
            }
            if c.emitted || c.responded {
                continue;
            }
            let e = self.entry(c, Flags::NO_RESPONSE | Flags::TIMEOUT);
            out.entries.emit(e);
            self.queue[i].emitted = true;
        }
    }

    fn close(&mut self, out: &mut Output) {
        if let Some(o) = self.orphan.take() {
            self.finish_orphan(o, Flags::empty(), out);
        }
        while let Some(c) = self.queue.pop_front() {
            self.finish(c, Flags::empty(), out);
        }
    }
}

/// Advances a reply by one packet (`first` is its first byte). Returns what the
/// packet told about the EOF mode, when it told something.
fn step(
    c: &mut Cmd,
    first: u8,
    p: &[u8],
    deprecate: Option<bool>,
    caps: Option<u32>,
    ext: u32,
) -> Option<bool> {
    let terminator = first == 0xFE && p.len() < packet::MAX_PAYLOAD;
    if c.broken {
        // After lost bytes only an end tells where the reply is.
        if first == 0xFF {
            c.error = Some(packet::parse_err(p));
            c.state = State::Done;
        } else if first == 0xFE && p.len() < 9 {
            let status = packet::eof_status(p);
            if status & packet::SERVER_MORE_RESULTS_EXISTS == 0 {
                c.state = State::Done;
            }
        }
        return None;
    }
    let mut learned = None;
    match (c.reply, c.state) {
        (_, State::Done) => {}
        (Reply::Status | Reply::Text, _) => {
            read_status(c, first, p);
            c.state = State::Done;
        }
        (Reply::Auth, _) => match first {
            0x00 => {
                read_status(c, first, p);
                c.state = State::Done;
            }
            0xFF => {
                read_status(c, first, p);
                c.state = State::Done;
            }
            0xFE if p.len() > 1 => {
                // Auth switch: the plugin's name follows.
                let plugin = p[1..].split(|&x| x == 0).next().unwrap_or_default();
                let note = format!("auth switch to {}", lossy(plugin, 64));
                c.detail = Some(match c.detail.take() {
                    Some(d) => format!("{d}; {note}"),
                    None => note,
                });
            }
            _ => {}
        },
        (Reply::Stream, _) | (Reply::Fields, _) => {
            if first == 0xFF {
                read_status(c, first, p);
                c.state = State::Done;
            } else if first == 0xFE && p.len() < 9 {
                c.state = State::Done;
            } else {
                c.rows += 1;
            }
            if c.reply == Reply::Fields {
                c.columns = c.rows;
            }
        }
        (Reply::Prepare, State::First) => match first {
            0x00 => {
                let mut r = packet::Reader::new(&p[1..]);
                let id = r.u32().unwrap_or(0);
                let cols = r.u16().unwrap_or(0);
                let params = r.u16().unwrap_or(0);
                c.prepared = Some((id, params, cols));
                c.columns = u64::from(cols);
                c.detail = Some(format!(
                    "statement {id}: {params} parameters, {cols} columns"
                ));
                let defs = u64::from(params) + u64::from(cols);
                let eofs = if deprecate == Some(false) {
                    u8::from(params > 0) + u8::from(cols > 0)
                } else {
                    0
                };
                c.state = if defs == 0 && eofs == 0 {
                    State::Done
                } else {
                    State::PrepareDefs(defs, eofs)
                };
            }
            _ => {
                read_status(c, first, p);
                c.state = State::Done;
            }
        },
        (Reply::Prepare, State::PrepareDefs(defs, eofs)) => {
            let (defs, eofs) = if first == 0xFE && p.len() < 9 {
                if deprecate.is_none() {
                    // EOF packets are in use: the column definitions still to come
                    // end with one too.
                    learned = Some(false);
                    (defs, u8::from(defs > 0))
                } else {
                    (defs, eofs.saturating_sub(1))
                }
            } else {
                (defs.saturating_sub(1), eofs)
            };
            c.state = if defs == 0 && eofs == 0 {
                State::Done
            } else {
                State::PrepareDefs(defs, eofs)
            };
        }
        (Reply::Prepare, _) => c.state = State::Done,
        (Reply::ResultSet | Reply::Rows, state) => {
            let state = if c.reply == Reply::Rows && state == State::First {
                c.results = c.results.max(1);
                State::Rows
            } else {
                state
            };
            match state {
                State::First => match first {
                    0x00 => {
                        read_status(c, first, p);
                        let more = packet::parse_ok(p).status & packet::SERVER_MORE_RESULTS_EXISTS;
                        if more == 0 {
                            c.state = State::Done;
                        }
                    }
                    0xFF => {
                        read_status(c, first, p);
                        c.state = State::Done;
                    }
                    0xFB => c.state = State::Infile,
                    0xFE => c.state = State::Done,
                    _ => {
                        let mut r = packet::Reader::new(p);
                        let n = r.lenenc().unwrap_or(0);
                        c.results += 1;
                        c.columns = n;
                        let optional = caps
                            .is_some_and(|x| x & packet::CLIENT_OPTIONAL_RESULTSET_METADATA != 0)
                            || ext & packet::MARIADB_CLIENT_CACHE_METADATA != 0;
                        let metadata = !optional || r.u8() != Some(0);
                        c.state = if n == 0 || !metadata {
                            State::ColumnsEnd
                        } else {
                            State::Columns(n)
                        };
                    }
                },
                State::Columns(k) => {
                    c.state = if first == 0xFE && p.len() < 9 {
                        // Fewer definitions than announced: this ends them.
                        State::Rows
                    } else if k <= 1 {
                        State::ColumnsEnd
                    } else {
                        State::Columns(k - 1)
                    };
                }
                State::ColumnsEnd => {
                    if first == 0xFE && p.len() == 5 {
                        learned = Some(false);
                        // A cursor was opened: rows come with COM_STMT_FETCH.
                        c.state = if packet::eof_status(p) & 0x0040 != 0 {
                            State::Done
                        } else {
                            State::Rows
                        };
                    } else if terminator && deprecate != Some(false) {
                        learned = Some(true);
                        end_of_rows(c, p);
                    } else if first == 0xFF {
                        read_status(c, first, p);
                        c.state = State::Done;
                    } else {
                        if deprecate.is_none() {
                            learned = Some(true);
                        }
                        c.rows += 1;
                        c.state = State::Rows;
                    }
                }
                State::Rows => {
                    let ends = if deprecate == Some(false) {
                        first == 0xFE && p.len() < 9
                    } else {
                        terminator
                    };
                    if first == 0xFF {
                        read_status(c, first, p);
                        c.state = State::Done;
                    } else if ends {
                        end_of_rows(c, p);
                    } else {
                        c.rows += 1;
                    }
                }
                State::Infile => {
                    read_status(c, first, p);
                    c.state = State::Done;
                }
                State::PrepareDefs(..) | State::Done => c.state = State::Done,
            }
        }
        (Reply::None, _) => c.state = State::Done,
    }
    learned
}

/// The terminator after rows: another result set may follow.
fn end_of_rows(c: &mut Cmd, p: &[u8]) {
    let status = packet::eof_status(p);
    c.state = if status & packet::SERVER_MORE_RESULTS_EXISTS != 0 {
        State::First
    } else {
        State::Done
    };
}

fn read_status(c: &mut Cmd, first: u8, p: &[u8]) {
    match first {
        0x00 => {
            let ok = packet::parse_ok(p);
            c.affected = Some(c.affected.unwrap_or(0) + ok.affected_rows);
        }
        0xFF => c.error = Some(packet::parse_err(p)),
        _ => {}
    }
}

fn outcome_text(c: &Cmd) -> String {
    if let Some(err) = &c.error {
        return match &err.sqlstate {
            Some(s) => format!("ERROR {} ({s}) {}", err.code, err.message),
            None => format!("ERROR {} {}", err.code, err.message),
        };
    }
    let plural = |n: u64, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    match c.reply {
        Reply::ResultSet | Reply::Rows if c.results > 0 => {
            let mut s = plural(c.rows, "row", "rows");
            if c.results > 1 {
                s.push_str(&format!(" in {} result sets", c.results));
            } else if c.columns > 0 {
                s.push_str(&format!(", {}", plural(c.columns, "column", "columns")));
            }
            s
        }
        Reply::Fields => plural(c.columns, "field", "fields"),
        Reply::Prepare => "OK".into(),
        _ => match c.affected {
            Some(a) if a > 0 => format!("OK, {}", plural(a, "row affected", "rows affected")),
            _ => "OK".into(),
        },
    }
}

/// A query on one line, cut for a summary.
fn one_line(t: &[u8], max: usize) -> String {
    let s = lossy(t, max);
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

impl StreamDissector for Mysql {
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
        if self.link.mode == Mode::Unknown && !ctx.midstream[i] {
            // Seen from its start: plain until the login says otherwise.
            self.link.mode = Mode::Plain;
        }
        let mut h = Outer {
            link: &mut self.link,
            inner: &mut self.inner,
            core: &mut self.core,
        };
        self.outer[i].push(seg, ctx.midstream[i], &mut h, out);
    }

    fn gap(&mut self, ctx: &FlowCtx, dir: Dir, len: u64, ts: i64, out: &mut Output) {
        if self.core.encrypted {
            if let Some(tls) = self.tls.as_mut() {
                tls.gap(ctx, dir, len, ts, out);
            }
            return;
        }
        let mut h = Outer {
            link: &mut self.link,
            inner: &mut self.inner,
            core: &mut self.core,
        };
        self.outer[dir.index()].gap(len, ts, &mut h, out);
    }

    fn end(&mut self, ctx: &FlowCtx, dir: Dir, ts: i64, out: &mut Output) {
        if let Some(tls) = self.tls.as_mut() {
            tls.end(ctx, dir, ts, out);
        }
        let mut h = Outer {
            link: &mut self.link,
            inner: &mut self.inner,
            core: &mut self.core,
        };
        self.outer[dir.index()].end(ts, &mut h, out);
        self.inner[dir.index()].end(ts, &mut self.core, out);
    }

    fn closed(&mut self, ctx: &FlowCtx, ts: i64, out: &mut Output) {
        for d in [self.core.client, self.core.client.flip()] {
            self.end(ctx, d, ts, out);
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
            .is_some_and(|c| !c.emitted && now - c.start_ts > out.limits.response_timeout_ns)
        {
            self.core.expire(now, out);
        }
    }
}

#[cfg(test)]
mod tests;
