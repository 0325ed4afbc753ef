//! Redis (RESP2 and RESP3): commands paired with replies in order, pub/sub and RESP3
//! push messages as one-way entries.
//!
//! Replies come in the order of the commands (pipelined or not), except for what the
//! server pushes: pub/sub messages, client-side caching invalidations, MONITOR lines.
//! A subscription command gets one confirmation per channel. Pairing is checked
//! against TCP acknowledgments, as HTTP/1's is: a reply whose first segment
//! acknowledges less than the end of the oldest waiting command answers a command the
//! capture missed, and after reply bytes were lost, a waiting command whose successor
//! the server had received (sent after the loss began) had its reply in the lost bytes.

pub mod commands;
pub mod resp;

use std::collections::VecDeque;

use reef_reassembly::{Dir, FlowCtx};
use reef_schema::{Body, Entry, Flags, Protocol, Transport};

use self::commands::PubSub;
use self::resp::{Event, Kind, Reader, Role, Value};
use crate::{Output, Probe, Seg, StreamDissector};

/// Commands waiting for replies per connection (pipelining); past this the oldest is
/// given up and its reply, when it comes, is dropped.
pub const MAX_PENDING_COMMANDS: usize = 8 * 1024;
/// Bytes of arguments shown in a summary.
pub const MAX_SUMMARY_ARGS: usize = 256;
/// Bytes of one argument shown in a summary.
pub const MAX_SUMMARY_ARG: usize = 64;
/// Bytes of a reply shown in a summary.
pub const MAX_SUMMARY_REPLY: usize = 128;
/// Commands remembered while a MULTI transaction is queued, for EXEC's summary.
pub const MAX_QUEUED_NAMES: usize = 16;

/// What a command expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    One,
    /// Confirmations still to come.
    Confirmations(u64),
    /// Unsubscribing from all channels of a kind whose number is not known (the
    /// subscriptions were not seen): confirmations until the count reaches zero or a
    /// reply of another kind comes.
    All,
}

#[derive(Debug)]
struct Pending {
    name: String,
    full: String,
    key: Option<String>,
    channel: Option<String>,
    summary: String,
    start_ts: i64,
    end_offset: u64,
    size: u64,
    flags: Flags,
    expect: Expect,
    /// The confirmation kind a subscription command gets (`subscribe`...), index
    /// into [`CONFIRMATIONS`].
    confirms: Option<usize>,
    /// Replies read so far (confirmations of a subscription).
    replies: u64,
    reply_size: u64,
    reply_flags: Flags,
    reply_end_ts: i64,
    /// For EXEC: the commands it runs.
    queued: Option<Vec<String>>,
}

pub fn make(client: Dir, ctx: &FlowCtx, out: &Output) -> Box<dyn StreamDissector> {
    Box::new(Redis::new(client, ctx, out))
}

/// Does `dir` speak RESP? A command (an array of bulk strings naming a known command,
/// or a known inline command) makes it the client; on a connection joined mid-way,
/// replies make it the server.
pub fn probe(ctx: &FlowCtx, dir: Dir, bytes: &[u8]) -> Probe {
    let Some(&first) = bytes.first() else {
        return Probe::NotYet;
    };
    let midstream = ctx.midstream[dir.index()];
    if first == b'*' || first.is_ascii_alphabetic() {
        match looks_like_command(bytes, !midstream) {
            Probe::No => {}
            p => return p.map_client(dir),
        }
    }
    if !midstream {
        return Probe::No;
    }
    // Joined mid-way: a command may start after a line break; replies make the other
    // side the client.
    let window = &bytes[..bytes.len().min(MIDSTREAM_WINDOW)];
    let mut starts = vec![0];
    let mut at = 0;
    while let Some(i) = memchr::memchr(b'\n', &window[at..]) {
        at += i + 1;
        if at < window.len() && starts.len() < 16 {
            starts.push(at);
        }
    }
    for &s in &starts {
        if s > 0
            && window[s] == b'*'
            && let Probe::Client(_) = looks_like_command(&window[s..], false)
        {
            return Probe::Client(dir);
        }
        if let Probe::Client(_) = looks_like_replies(&window[s..]) {
            return Probe::Client(dir.flip());
        }
    }
    if bytes.len() < MIDSTREAM_WINDOW {
        Probe::NotYet
    } else {
        Probe::No
    }
}

/// Commands memcached's text protocol has too (`get key\r\n`): as inline commands
/// they do not tell Redis.
const NOT_INLINE: [&[u8]; 8] = [
    b"GET", b"SET", b"APPEND", b"INCR", b"DECR", b"TOUCH", b"QUIT", b"DEL",
];
/// Longest command name taken for one when detecting.
const MAX_COMMAND_NAME: i64 = 32;
/// Bytes of a connection joined mid-way searched for a command or replies.
const MIDSTREAM_WINDOW: usize = 4096;

trait MapClient {
    fn map_client(self, dir: Dir) -> Probe;
}

impl MapClient for Probe {
    fn map_client(self, dir: Dir) -> Probe {
        match self {
            Probe::Client(_) => Probe::Client(dir),
            p => p,
        }
    }
}

fn plausible_reply_start(b: u8) -> bool {
    matches!(
        b,
        b'+' | b'-' | b':' | b'$' | b'*' | b'%' | b'~' | b'>' | b'_' | b'#'
    )
}

/// `*<n>\r\n$<m>\r\n<command>\r\n`, or a known inline command line. The command of
/// an array must be a known one unless the bytes start the connection (`any_name`):
/// there the array's shape says enough, and commands of modules (`JSON.SET`) or
/// unknown ones (which the server answers with an error) count too.
fn looks_like_command(b: &[u8], any_name: bool) -> Probe {
    if b.first() == Some(&b'*') {
        let mut at = 1;
        let Some(n) = number_line(b, &mut at) else {
            return if b.len() < 16 && is_number_prefix(&b[1..]) {
                Probe::NotYet
            } else {
                Probe::No
            };
        };
        if !(1..=1024 * 1024).contains(&n) {
            return Probe::No;
        }
        match b.get(at) {
            None => return Probe::NotYet,
            Some(b'$') => {}
            Some(_) => return Probe::No,
        }
        at += 1;
        let start = at;
        let Some(len) = number_line(b, &mut at) else {
            return if b.len() < start + 8 && is_number_prefix(&b[start..]) {
                Probe::NotYet
            } else {
                Probe::No
            };
        };
        if !(1..=MAX_COMMAND_NAME).contains(&len) {
            return Probe::No;
        }
        let len = len as usize;
        let name_byte =
            |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'|');
        let Some(word) = b.get(at..at + len) else {
            return if b[at..].iter().all(name_byte) {
                Probe::NotYet
            } else {
                Probe::No
            };
        };
        let named = if any_name {
            word[0].is_ascii_alphabetic() && word.iter().all(name_byte)
        } else {
            commands::is_known(word)
        };
        if !named {
            return Probe::No;
        }
        return match b.get(at + len..at + len + 2) {
            Some(b"\r\n") => Probe::Client(Dir::Forward),
            Some(_) => Probe::No,
            None => Probe::NotYet,
        };
    }
    // Inline: a known command alone on a line, or followed by arguments.
    let word_len = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    if word_len == b.len() {
        return if word_len <= 24 {
            Probe::NotYet
        } else {
            Probe::No
        };
    }
    let word = &b[..word_len];
    let shared = NOT_INLINE.iter().any(|w| w.eq_ignore_ascii_case(word));
    if shared || !commands::is_known(word) || !matches!(b[word_len], b' ' | b'\r' | b'\n') {
        return Probe::No;
    }
    let Some(end) = memchr::memchr(b'\n', &b[..b.len().min(1024)]) else {
        return if b.len() < 1024 {
            Probe::NotYet
        } else {
            Probe::No
        };
    };
    let line = &b[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let printable = line.iter().all(|c| (0x20..0x7f).contains(c) || *c == b'\t');
    if !printable || memchr::memmem::find(line, b" HTTP/").is_some() {
        return Probe::No;
    }
    Probe::Client(Dir::Forward)
}

fn is_number_prefix(b: &[u8]) -> bool {
    let b = b.strip_prefix(b"-").unwrap_or(b);
    b.iter().take_while(|c| c.is_ascii_digit()).count() == b.len()
        || (b.last() == Some(&b'\r') && b[..b.len() - 1].iter().all(u8::is_ascii_digit))
}

/// Reads `<digits>\r\n` at `*at`, moving past it.
fn number_line(b: &[u8], at: &mut usize) -> Option<i64> {
    let rest = b.get(*at..)?;
    let end = memchr::memchr(b'\r', &rest[..rest.len().min(24)])?;
    if rest.get(end + 1) != Some(&b'\n') {
        return None;
    }
    let n = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
    *at += end + 2;
    Some(n)
}

/// Replies from the server side of a connection joined mid-way: a few complete,
/// well-formed values from the first byte on, or one distinctive status reply.
fn looks_like_replies(b: &[u8]) -> Probe {
    const STATUS: &[&[u8]] = &[
        b"+OK\r\n",
        b"+PONG\r\n",
        b"+QUEUED\r\n",
        b"-ERR ",
        b"-WRONGTYPE ",
        b"-NOAUTH ",
        b"-MOVED ",
        b"-ASK ",
        b"-NOSCRIPT ",
        b"-LOADING ",
        b"-READONLY ",
    ];
    if STATUS.iter().any(|s| b.starts_with(s)) {
        return Probe::Client(Dir::Forward);
    }
    if !b.first().is_some_and(|f| plausible_reply_start(*f)) {
        return Probe::No;
    }
    let mut r = Reader::new(Role::Reply, false, crate::body::BodyBudget::new(0));
    let mut ev = Vec::new();
    r.feed(0, b, 0, None, 0, &mut ev);
    let values: Vec<&Value> = ev
        .iter()
        .map_while(|e| match e {
            Event::Value(v) if v.flags.is_empty() => Some(v),
            _ => None,
        })
        .collect();
    // Lines of text can look like simple strings or errors; a bulk string of the
    // length announced, or an aggregate of them, does not happen by chance.
    let strong = values.iter().any(|v| {
        v.len.is_some_and(|l| l > 0)
            && matches!(
                v.kind,
                Kind::Bulk | Kind::Array | Kind::Map | Kind::Set | Kind::Push
            )
    });
    if r.malformed == 0 && values.len() >= 2 && strong {
        Probe::Client(Dir::Forward)
    } else {
        Probe::No
    }
}

/// A Redis connection.
pub struct Redis {
    client: Dir,
    readers: [Reader; 2],
    queue: VecDeque<Pending>,
    /// Replies still to come for commands given up (timed out or over the limit):
    /// they are dropped when they arrive, so that later replies stay in step.
    swallow: u64,
    /// Reply bytes were lost since the last reply was paired; the time of the last
    /// reply data before the loss.
    reply_lost_after: Option<Option<i64>>,
    /// The client is subscribed to channels (RESP2 pushes arrive as arrays).
    subscribed: bool,
    /// Subscriptions to channels, patterns and shard channels, when every one was
    /// seen (not on a connection joined mid-way).
    subs: Option<[u64; 3]>,
    monitoring: bool,
    /// Commands queued since MULTI.
    multi: Option<Vec<String>>,
    events: Vec<Event>,
}

impl Redis {
    pub fn new(client: Dir, ctx: &FlowCtx, out: &Output) -> Redis {
        let budget = out.body_budget.clone();
        let mk = |d: Dir| {
            let role = if d == client {
                Role::Command
            } else {
                Role::Reply
            };
            Reader::new(role, ctx.midstream[d.index()], budget.clone())
        };
        Redis {
            client,
            readers: [mk(Dir::Forward), mk(Dir::Reverse)],
            queue: VecDeque::new(),
            swallow: 0,
            reply_lost_after: None,
            subscribed: false,
            subs: (!ctx.midstream[client.index()]).then_some([0; 3]),
            monitoring: false,
            multi: None,
            events: Vec::new(),
        }
    }

    fn base_entry(&self, ctx: &FlowCtx) -> Entry {
        let c = ctx.endpoints[self.client.index()];
        let s = ctx.endpoints[self.client.flip().index()];
        Entry {
            protocol: Protocol::Redis,
            transport: Transport::Tcp,
            src_ip: c.ip,
            src_port: Some(c.port),
            dst_ip: s.ip,
            dst_port: Some(s.port),
            ..Entry::default()
        }
    }

    fn handle(&mut self, ctx: &FlowCtx, dir: Dir, out: &mut Output) {
        let events = std::mem::take(&mut self.events);
        for ev in events {
            match (dir == self.client, ev) {
                (true, Event::Value(v)) => self.on_command(ctx, v, out),
                (false, Event::Value(v)) => self.on_reply(ctx, v, out),
                (false, Event::Lost { last_data_ts }) => {
                    if self.reply_lost_after.is_none() {
                        self.reply_lost_after = Some(last_data_ts);
                    }
                }
                (true, Event::Lost { .. }) => {}
            }
        }
    }

    fn on_command(&mut self, ctx: &FlowCtx, v: Value, out: &mut Output) {
        let args: Vec<&[u8]> = v.items.iter().map(|i| i.text.as_slice()).collect();
        let named = commands::name(&args);
        let summary = command_summary(&named.name, &v, &args);
        let confirms = CONFIRMATIONS
            .iter()
            .position(|c| c.eq_ignore_ascii_case(named.name.as_bytes()));
        let expect = match (commands::pubsub(&named.name), confirms) {
            (Some(PubSub::Subscribe), _) => {
                Expect::Confirmations(v.item_count.saturating_sub(1).max(1))
            }
            (Some(PubSub::Unsubscribe), Some(k)) if v.item_count <= 1 => {
                // Redis confirms each subscription dropped, or once when there was none.
                match self.subs {
                    Some(subs) => Expect::Confirmations(subs[k % 3].max(1)),
                    None => Expect::All,
                }
            }
            (Some(PubSub::Unsubscribe), _) => Expect::Confirmations(v.item_count - 1),
            _ => Expect::One,
        };
        let mut queued = None;
        match named.name.as_str() {
            "MULTI" => self.multi = Some(Vec::new()),
            "EXEC" | "DISCARD" => {
                queued = self.multi.take();
            }
            _ => {
                if let Some(m) = self.multi.as_mut()
                    && m.len() < MAX_QUEUED_NAMES
                {
                    m.push(named.full.clone());
                }
            }
        }
        if self.queue.len() >= MAX_PENDING_COMMANDS
            && let Some(old) = self.queue.pop_front()
        {
            self.swallow += remaining_replies(&old);
            self.give_up(ctx, old, Flags::NO_RESPONSE, out);
        }
        self.queue.push_back(Pending {
            name: named.name,
            full: named.full,
            key: named.key,
            channel: named.channel,
            summary,
            start_ts: v.start_ts,
            end_offset: v.end_offset,
            size: v.wire_len(),
            flags: v.flags,
            expect,
            confirms,
            replies: 0,
            reply_size: 0,
            reply_flags: Flags::empty(),
            reply_end_ts: v.start_ts,
            queued,
        });
    }

    fn on_reply(&mut self, ctx: &FlowCtx, mut v: Value, out: &mut Output) {
        let confirmation = match v.kind {
            Kind::Push | Kind::Array => v
                .item(0)
                .and_then(|k| CONFIRMATIONS.iter().position(|c| c.eq_ignore_ascii_case(k))),
            _ => None,
        };
        // An unsubscription from all ends with the first reply of another kind.
        if let Some(p) = self.queue.front()
            && p.expect == Expect::All
            && p.replies > 0
            && (confirmation.is_none() || confirmation != p.confirms)
            && let Some(p) = self.queue.pop_front()
        {
            let e = self.entry(ctx, Some(p), None, Flags::empty());
            out.entries.emit(e);
        }
        if let Some(k) = confirmation
            && (v.kind == Kind::Push || self.subscribed || self.front_is_subscription())
        {
            let count = v
                .item(2)
                .and_then(|c| std::str::from_utf8(c).ok())
                .and_then(|c| c.parse::<i64>().ok());
            if let Some(c) = count {
                self.subscribed = c > 0;
            }
            if let Some(subs) = self.subs.as_mut() {
                let n = &mut subs[k % 3];
                *n = if k < 3 { *n + 1 } else { n.saturating_sub(1) };
            }
            return if self.queue.front().is_some_and(|p| p.confirms == Some(k)) {
                self.confirm(ctx, v, count, out)
            } else {
                self.one_way(ctx, v, out)
            };
        }
        let message = match v.kind {
            Kind::Push | Kind::Array => v.item(0).is_some_and(|k| {
                [&b"message"[..], b"pmessage", b"smessage"]
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(k))
            }),
            _ => false,
        };
        if v.kind == Kind::Push || (message && self.subscribed) {
            return self.one_way(ctx, v, out);
        }
        if self.monitoring && v.kind == Kind::Simple && self.queue.is_empty() {
            return self.one_way(ctx, v, out);
        }
        if self.swallow > 0 {
            self.swallow -= 1;
            return;
        }
        let Some(idx) = self.pair(ctx, &mut v, out) else {
            let e = self.entry(ctx, None, Some(&v), Flags::NO_REQUEST);
            out.entries.emit(e);
            return;
        };
        let Some(p) = self.queue.remove(idx) else {
            return;
        };
        if p.name == "MONITOR" && v.kind == Kind::Simple {
            self.monitoring = true;
        }
        if matches!(p.name.as_str(), "RESET" | "QUIT") {
            self.monitoring = false;
            self.subscribed = false;
        }
        let e = self.entry(ctx, Some(p), Some(&v), Flags::empty());
        out.entries.emit(e);
    }

    fn front_is_subscription(&self) -> bool {
        self.queue.front().is_some_and(|p| p.confirms.is_some())
    }

    /// A subscription confirmation for the oldest waiting command.
    fn confirm(&mut self, ctx: &FlowCtx, v: Value, count: Option<i64>, out: &mut Output) {
        let Some(p) = self.queue.front_mut() else {
            return;
        };
        p.replies += 1;
        p.reply_size += v.wire_len();
        p.reply_flags |= v.flags;
        p.reply_end_ts = v.end_ts;
        let done = match &mut p.expect {
            Expect::Confirmations(n) => {
                *n = n.saturating_sub(1);
                *n == 0
            }
            Expect::All => count.is_none_or(|c| c <= 0),
            Expect::One => true,
        };
        if done && let Some(p) = self.queue.pop_front() {
            let e = self.entry(ctx, Some(p), None, Flags::empty());
            out.entries.emit(e);
        }
    }

    /// A message the server sent on its own: a pub/sub message, an invalidation, a
    /// MONITOR line.
    fn one_way(&mut self, ctx: &FlowCtx, v: Value, out: &mut Output) {
        let mut e = self.base_entry(ctx);
        let (method, channel, payload) = if v.kind == Kind::Simple {
            ("MONITOR".to_string(), None, None)
        } else {
            let k = v.item(0).map_or_else(
                || "PUSH".to_string(),
                |t| String::from_utf8_lossy(t).to_ascii_uppercase(),
            );
            // message: channel, payload; pmessage: pattern, channel, payload.
            let (ch, pl) = match k.as_str() {
                "PMESSAGE" => (2, 3),
                "MESSAGE" | "SMESSAGE" => (1, 2),
                k if CONFIRMATIONS
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(k.as_bytes())) =>
                {
                    (1, usize::MAX)
                }
                // Client-side caching: the keys whose cached values are stale.
                "INVALIDATE" => (1, usize::MAX),
                _ => (usize::MAX, usize::MAX),
            };
            (k, v.items.get(ch), v.items.get(pl))
        };
        e.timestamp = v.start_ts;
        e.redis_command = Some(method.clone());
        e.path = channel
            .filter(|c| !c.text.is_empty())
            .map(|c| String::from_utf8_lossy(&c.text).into_owned());
        e.status_code = Some(0);
        e.request_size = Some(v.wire_len());
        let mut summary = method.clone();
        if let Some(ch) = &e.path {
            summary.push(' ');
            summary.push_str(&show_arg(ch.as_bytes()));
        }
        if method == "INVALIDATE" {
            e.redis_key = e.path.clone();
            if let Some(n) = channel.and_then(|c| c.len).filter(|n| *n > 1) {
                summary.push_str(&format!(" …(+{} keys)", n - 1));
            }
        }
        match payload {
            Some(p) => {
                let max = out.limits.max_body_bytes;
                e.request_body_size = p.len.map(|l| l.max(0) as u64);
                e.request_body = Some(Body(p.text[..p.text.len().min(max)].to_vec()));
                summary.push(' ');
                summary.push_str(&show_arg(&p.text));
                if p.cut || p.text.len() > max {
                    e.flags |= Flags::REQUEST_BODY_TRUNCATED;
                }
            }
            None if v.kind == Kind::Simple => {
                summary.push(' ');
                summary.push_str(&show_capped(&v.text, MAX_SUMMARY_REPLY));
            }
            None => {
                for it in v.items.iter().skip(2).take(4) {
                    summary.push(' ');
                    summary.push_str(&show_arg(&it.text));
                }
            }
        }
        e.method = Some(method);
        e.summary = Some(summary);
        e.flags |= v.flags;
        e.incomplete = e.flags.intersects(Flags::INCOMPLETE);
        out.entries.emit(e);
    }

    /// Which waiting command a reply answers: `None` when it answers one the capture
    /// missed. Commands whose replies were lost are given up on the way.
    fn pair(&mut self, ctx: &FlowCtx, v: &mut Value, out: &mut Output) -> Option<usize> {
        let lost = self.reply_lost_after.take();
        loop {
            let q0 = self.queue.front()?;
            if v.peer_ack.is_some_and(|a| q0.end_offset > a) {
                return None;
            }
            if let Some(after) = lost
                && let Some(q1) = self.queue.get(1)
            {
                let q1_received = v.peer_ack.is_some_and(|a| q1.end_offset <= a);
                let q1_sent_after_loss = after.is_none_or(|t| q1.start_ts > t);
                if q1_received && q1_sent_after_loss {
                    if let Some(gone) = self.queue.pop_front() {
                        self.give_up(ctx, gone, Flags::NO_RESPONSE | Flags::RESPONSE_GAP, out);
                    }
                    continue;
                }
                if self.queue.len() > 1 {
                    v.flags |= Flags::PAIRING_UNCERTAIN;
                }
            }
            return Some(0);
        }
    }

    fn give_up(&mut self, ctx: &FlowCtx, p: Pending, flags: Flags, out: &mut Output) {
        let e = self.entry(ctx, Some(p), None, flags);
        out.entries.emit(e);
    }

    fn entry(
        &self,
        ctx: &FlowCtx,
        p: Option<Pending>,
        reply: Option<&Value>,
        extra: Flags,
    ) -> Entry {
        let mut e = self.base_entry(ctx);
        let mut flags = extra;
        let mut req_text = "(command not captured)".to_string();
        let mut start = None;
        let mut queued = None;
        if let Some(p) = p {
            e.timestamp = p.start_ts;
            start = Some(p.start_ts);
            e.method = Some(p.name.clone());
            e.redis_command = Some(p.full);
            e.redis_key = p.key.clone();
            e.path = p.key.or(p.channel);
            e.request_size = Some(p.size);
            flags |= p.flags;
            req_text = p.summary;
            queued = p.queued;
            if p.replies > 0 {
                // Subscription confirmations: all of them count.
                flags |= p.reply_flags;
                e.response_size = Some(p.reply_size);
                e.elapsed_time = Some((p.reply_end_ts - p.start_ts).max(0) / 1000);
                e.status_code = Some(0);
                let done = if p.name.contains("UNSUB") {
                    "unsubscribed"
                } else {
                    "subscribed"
                };
                e.summary = Some(format!("{req_text} → {done} ({} confirmations)", p.replies));
            }
        }
        match reply {
            Some(v) if e.response_size.is_none() || e.status_code.is_none() => {
                flags |= v.flags;
                if start.is_none() {
                    e.timestamp = v.start_ts;
                }
                if let Some(s) = start {
                    e.elapsed_time = Some((v.end_ts - s).max(0) / 1000);
                }
                let error = matches!(v.kind, Kind::Error | Kind::BulkError);
                e.status_code = Some(i32::from(error));
                e.response_size = Some(v.wire_len());
                if matches!(v.kind, Kind::Bulk | Kind::Verbatim) && v.body.size > 0 {
                    e.response_body_size = Some(v.body.size);
                    e.response_body = Some(Body(v.body.kept().to_vec()));
                    if v.body.cut || v.body.holed {
                        flags |= Flags::RESPONSE_BODY_TRUNCATED;
                    }
                }
                let mut r = reply_summary(v);
                if let Some(q) = &queued
                    && v.kind == Kind::Array
                {
                    r = format!("{r} for {}", q.join(", "));
                }
                e.summary = Some(format!("{req_text} → {r}"));
            }
            Some(_) => {}
            None if e.response_size.is_none() => {
                e.summary = Some(format!("{req_text} → (no reply)"))
            }
            None => {}
        }
        e.incomplete = flags.intersects(Flags::INCOMPLETE);
        e.flags = flags;
        e
    }

    fn expire(&mut self, ctx: &FlowCtx, now: i64, out: &mut Output) {
        let timeout = out.limits.response_timeout_ns;
        // Commands are in the order they were sent: the late ones are a prefix.
        while let Some(p) = self.queue.front() {
            if now - p.start_ts <= timeout || p.replies > 0 {
                break;
            }
            let Some(p) = self.queue.pop_front() else {
                break;
            };
            self.swallow += remaining_replies(&p);
            self.give_up(ctx, p, Flags::NO_RESPONSE | Flags::TIMEOUT, out);
        }
    }
}

fn remaining_replies(p: &Pending) -> u64 {
    match p.expect {
        Expect::One | Expect::All => 1,
        Expect::Confirmations(n) => n,
    }
}

/// Subscription confirmations: subscribing to channels, patterns and shard channels,
/// then unsubscribing from them, in that order (`k % 3` is the kind).
const CONFIRMATIONS: [&[u8]; 6] = [
    b"subscribe",
    b"psubscribe",
    b"ssubscribe",
    b"unsubscribe",
    b"punsubscribe",
    b"sunsubscribe",
];

fn show_capped(b: &[u8], cap: usize) -> String {
    let cut = b.len() > cap;
    let mut s = String::from_utf8_lossy(&b[..b.len().min(cap)]).into_owned();
    s.retain(|c| !c.is_control() || c == ' ');
    if cut {
        s.push('…');
    }
    s
}

/// An argument as redis-cli would echo it: bare when plain, quoted otherwise.
fn show_arg(b: &[u8]) -> String {
    let plain = !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_graphic() && !matches!(c, b'"' | b'\'' | b'\\'));
    let shown = &b[..b.len().min(MAX_SUMMARY_ARG)];
    let mut s = String::new();
    if plain {
        s.push_str(&String::from_utf8_lossy(shown));
    } else {
        s.push('"');
        for c in String::from_utf8_lossy(shown).chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                '\n' => s.push_str("\\n"),
                '\r' => s.push_str("\\r"),
                c if c.is_control() => s.push_str(&format!("\\x{:02x}", c as u32)),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    if b.len() > MAX_SUMMARY_ARG {
        s.push_str(&format!("…({} bytes)", b.len()));
    }
    s
}

fn command_summary(name: &str, v: &Value, args: &[&[u8]]) -> String {
    let mut s = name.to_string();
    let mut shown = 0usize;
    for (i, (a, it)) in args.iter().zip(&v.items).enumerate().skip(1) {
        let text = if commands::secret(name, args, i) {
            "(redacted)".to_string()
        } else if it.cut {
            let mut t = show_arg(&a[..a.len().min(MAX_SUMMARY_ARG)]);
            if let Some(l) = it.len {
                t.push_str(&format!("…({l} bytes)"));
            }
            t
        } else {
            show_arg(a)
        };
        if shown + text.len() > MAX_SUMMARY_ARGS {
            s.push_str(&format!(" …(+{} args)", v.item_count - i as u64));
            return s;
        }
        shown += text.len() + 1;
        s.push(' ');
        s.push_str(&text);
    }
    if v.item_count > v.items.len() as u64 {
        s.push_str(&format!(
            " …(+{} args)",
            v.item_count - v.items.len() as u64
        ));
    }
    s
}

fn reply_summary(v: &Value) -> String {
    let text = || show_capped(&v.text, MAX_SUMMARY_REPLY);
    let n = v.len.unwrap_or(0);
    match v.kind {
        Kind::Simple => text(),
        Kind::Error | Kind::BulkError => format!("(error) {}", text()),
        Kind::Integer => format!("(integer) {}", text()),
        Kind::Double => format!("(double) {}", text()),
        Kind::BigNumber => format!("(big number) {}", text()),
        Kind::Boolean => format!("({})", if v.text == b"t" { "true" } else { "false" }),
        Kind::Null => "(nil)".to_string(),
        Kind::Bulk | Kind::Verbatim => {
            if v.len.is_some_and(|l| l as usize > MAX_SUMMARY_REPLY) {
                format!(
                    "\"{}\" ({n} bytes)",
                    show_capped(&v.text, MAX_SUMMARY_REPLY)
                )
            } else {
                format!("\"{}\"", text())
            }
        }
        Kind::Array | Kind::Set | Kind::Push => {
            let what = match v.kind {
                Kind::Set => "set",
                Kind::Push => "push",
                _ => "array",
            };
            let count = v.len.map_or(v.item_count as i64, |l| l);
            let mut s = format!("({what} of {count})");
            if v.errors_inside > 0 {
                s.push_str(&format!(" with {} errors", v.errors_inside));
            }
            s
        }
        Kind::Map => format!("(map of {})", v.len.map_or(v.item_count as i64 / 2, |l| l)),
        Kind::Inline => text(),
    }
}

impl StreamDissector for Redis {
    fn data(&mut self, ctx: &FlowCtx, seg: Seg<'_>, out: &mut Output) {
        let max_body = out.limits.max_body_bytes;
        let mut ev = std::mem::take(&mut self.events);
        self.readers[seg.dir.index()].feed(
            seg.offset,
            seg.data,
            seg.ts,
            seg.peer_ack,
            max_body,
            &mut ev,
        );
        self.events = ev;
        self.handle(ctx, seg.dir, out);
    }

    fn gap(&mut self, ctx: &FlowCtx, dir: Dir, len: u64, _ts: i64, out: &mut Output) {
        let flag = if dir == self.client {
            Flags::REQUEST_GAP
        } else {
            Flags::RESPONSE_GAP
        };
        let mut ev = std::mem::take(&mut self.events);
        self.readers[dir.index()].gap(len, flag, &mut ev);
        self.events = ev;
        self.handle(ctx, dir, out);
    }

    fn end(&mut self, ctx: &FlowCtx, dir: Dir, _ts: i64, out: &mut Output) {
        let mut ev = std::mem::take(&mut self.events);
        self.readers[dir.index()].end(&mut ev);
        self.events = ev;
        self.handle(ctx, dir, out);
    }

    fn closed(&mut self, ctx: &FlowCtx, _ts: i64, out: &mut Output) {
        for d in [self.client, self.client.flip()] {
            let mut ev = std::mem::take(&mut self.events);
            self.readers[d.index()].end(&mut ev);
            self.events = ev;
            self.handle(ctx, d, out);
        }
        while let Some(p) = self.queue.pop_front() {
            if p.replies > 0 {
                // A subscription confirmed in part.
                let e = self.entry(ctx, Some(p), None, Flags::empty());
                out.entries.emit(e);
            } else {
                self.give_up(ctx, p, Flags::NO_RESPONSE, out);
            }
        }
    }

    fn tick(&mut self, ctx: &FlowCtx, now: i64, out: &mut Output) {
        if self
            .queue
            .front()
            .is_some_and(|p| now - p.start_ts > out.limits.response_timeout_ns)
        {
            self.expire(ctx, now, out);
        }
    }
}

#[cfg(test)]
mod tests;
