//! HTTP/1.0 and 1.1: requests paired with responses in order, with the corrections a
//! lossy capture needs.
//!
//! Pairing is by order (HTTP/1 answers requests in the order they came), checked
//! against TCP acknowledgments: a response whose first segment acknowledges less of
//! the request stream than the end of the oldest waiting request's head cannot answer
//! it (that request was lost), and after response bytes were lost, a waiting request
//! whose successor the server had already received, sent after the loss began, had its
//! response in the lost bytes. Without those checks one lost packet shifts every later
//! pair of a keep-alive connection by one.

pub mod half;
pub mod head;

use std::collections::VecDeque;

use reef_reassembly::{Dir, FlowCtx};
use reef_schema::{Body, Entry, Flags, Protocol, Transport};

use self::half::{Framing, Half, Message, Role, Sink};
use self::head::{Looks, StartLine};
use crate::body;
use crate::{Entries, Limits, Output, Probe, Seg, StreamDissector};

/// Requests waiting for a response per connection; past this the oldest is given up.
pub const MAX_PENDING_REQUESTS: usize = 128;

#[derive(Debug)]
struct Pending {
    /// What pairing needs of the request while it is still being read.
    method: String,
    start_ts: i64,
    head_end_offset: u64,
    /// The whole request, once its last byte has been read.
    req: Option<Message>,
    interim: bool,
    /// The response's head has been read; its framing followed from this request.
    responding: bool,
    response: Option<Message>,
    upgrade: bool,
    /// Emitted already (after a timeout); kept to hold its place in the order, so
    /// that its late response is not taken for the next request's.
    emitted: bool,
}

/// The pairing state both directions report to.
struct Pairing<'a> {
    queue: &'a mut VecDeque<Pending>,
    /// Response bytes were lost since the last response was paired; the time of the
    /// last response data before the loss.
    resp_lost_after: &'a mut Option<Option<i64>>,
    out: &'a mut Entries,
    ctx: &'a FlowCtx,
    client: Dir,
    limits: &'a Limits,
    /// Set when a response switched the connection to another protocol: the
    /// `Upgrade` token, or none for a CONNECT tunnel.
    switched: &'a mut Option<Option<String>>,
    stats: &'a mut HttpStats,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct HttpStats {
    pub requests: u64,
    pub responses: u64,
    pub matched: u64,
    pub unmatched_requests: u64,
    pub unmatched_responses: u64,
    /// Requests whose response was found lost in a capture gap.
    pub responses_lost: u64,
    pub interim_responses: u64,
    pub timeouts: u64,
}

struct ReqSink<'a, 'b>(&'b mut Pairing<'a>);
struct RespSink<'a, 'b>(&'b mut Pairing<'a>);

impl Sink for ReqSink<'_, '_> {
    fn on_head(&mut self, msg: &mut Message) -> Framing {
        let p = &mut *self.0;
        p.stats.requests += 1;
        let h = &msg.head.headers;
        let framing = if let Some(te) = h.get("transfer-encoding") {
            if last_coding_is_chunked(te) {
                Framing::Chunked
            } else {
                // A request body can't be delimited by closing the connection.
                msg.flags |= Flags::MALFORMED;
                Framing::NoBody
            }
        } else {
            match content_length(h.get_all("content-length")) {
                Ok(Some(n)) => Framing::Length(n),
                Ok(None) => Framing::NoBody,
                Err(n) => {
                    msg.flags |= Flags::MALFORMED;
                    n.map_or(Framing::NoBody, Framing::Length)
                }
            }
        };
        if p.queue.len() >= MAX_PENDING_REQUESTS
            && let Some(old) = p.queue.pop_front()
        {
            p.give_up(old, Flags::NO_RESPONSE);
        }
        let method = match &msg.head.start {
            StartLine::Request { method, .. } => method.clone(),
            StartLine::Response { .. } => String::new(),
        };
        p.queue.push_back(Pending {
            method,
            start_ts: msg.start_ts,
            head_end_offset: msg.head_end_offset,
            req: None,
            interim: false,
            responding: false,
            response: None,
            upgrade: false,
            emitted: false,
        });
        framing
    }

    fn on_message(&mut self, msg: Message) {
        let p = &mut *self.0;
        // Requests finish in order: this is the oldest one still being read.
        match p.queue.iter_mut().find(|q| q.req.is_none() && !q.emitted) {
            Some(slot) => slot.req = Some(msg),
            None => {
                // Its place was given up while it was still arriving.
                p.stats.unmatched_requests += 1;
                p.out
                    .emit(p.entry(Some(msg), None, Flags::NO_RESPONSE, false));
            }
        }
        p.emit_ready();
    }

    fn on_lost(&mut self, _last_data_ts: Option<i64>) {}
}

impl Sink for RespSink<'_, '_> {
    fn on_head(&mut self, msg: &mut Message) -> Framing {
        let p = &mut *self.0;
        let status = msg.head.status().unwrap_or(0);
        if (100..200).contains(&status) && status != 101 {
            // Interim: the final response is still to come for the same request.
            p.stats.interim_responses += 1;
            if let Some(q) = p.queue.iter_mut().find(|q| !q.responding && !q.emitted) {
                q.interim = true;
            }
            msg.flags |= Flags::INTERIM_RESPONSE;
            return Framing::NoBody;
        }
        p.stats.responses += 1;
        let idx = p.pair(msg);
        let Some(idx) = idx else {
            return response_framing(msg, None, status);
        };
        let q = &mut p.queue[idx];
        q.responding = true;
        let framing = response_framing(msg, Some(&q.method), status);
        let connect = q.method.eq_ignore_ascii_case("CONNECT") && (200..300).contains(&status);
        if status == 101 || connect {
            q.upgrade = true;
            let token = (status == 101)
                .then(|| msg.head.headers.get("upgrade").map(str::to_string))
                .flatten();
            *p.switched = Some(token);
            return Framing::Tunnel;
        }
        framing
    }

    fn on_message(&mut self, msg: Message) {
        let p = &mut *self.0;
        if msg.flags.contains(Flags::INTERIM_RESPONSE) {
            return;
        }
        match p
            .queue
            .iter_mut()
            .find(|q| q.responding && q.response.is_none())
        {
            Some(q) => {
                q.response = Some(msg);
                p.emit_ready();
            }
            None => {
                p.stats.unmatched_responses += 1;
                p.out
                    .emit(p.entry(None, Some(msg), Flags::NO_REQUEST, false));
            }
        }
    }

    fn on_lost(&mut self, last_data_ts: Option<i64>) {
        let p = &mut *self.0;
        if p.resp_lost_after.is_none() {
            *p.resp_lost_after = Some(last_data_ts);
        }
    }
}

fn last_coding_is_chunked(te: &str) -> bool {
    te.rsplit(',')
        .next()
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"))
}

/// The Content-Length: `Err` carries the value used when the field was malformed or
/// repeated with different values.
fn content_length<'a>(values: impl Iterator<Item = &'a str>) -> Result<Option<u64>, Option<u64>> {
    let mut found: Option<u64> = None;
    let mut bad = false;
    for v in values {
        for part in v.split(',') {
            match part.trim().parse::<u64>() {
                Ok(n) if found.is_none_or(|f| f == n) => found = Some(n),
                _ => bad = true,
            }
        }
    }
    if bad { Err(found) } else { Ok(found) }
}

/// RFC 9112 §6.3 for responses.
fn response_framing(msg: &mut Message, method: Option<&str>, status: u16) -> Framing {
    let head_request = method.is_some_and(|m| m.eq_ignore_ascii_case("HEAD"));
    if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        return Framing::NoBody;
    }
    let h = &msg.head.headers;
    if let Some(te) = h.get("transfer-encoding") {
        return if last_coding_is_chunked(te) {
            Framing::Chunked
        } else {
            Framing::UntilClose
        };
    }
    match content_length(h.get_all("content-length")) {
        Ok(Some(n)) => Framing::Length(n),
        Ok(None) => Framing::UntilClose,
        Err(n) => {
            msg.flags |= Flags::MALFORMED;
            n.map_or(Framing::UntilClose, Framing::Length)
        }
    }
}

impl Pairing<'_> {
    /// Which waiting request a response whose head was just read answers.
    fn pair(&mut self, resp: &mut Message) -> Option<usize> {
        let ack = resp.peer_ack;
        let lost = self.resp_lost_after.take();
        loop {
            let first = self.queue.iter().position(|q| !q.responding)?;
            let q0 = &self.queue[first];
            // The server had not received this request's head when it sent the
            // response: the response answers a request the capture missed.
            if ack.is_some_and(|a| q0.head_end_offset > a) {
                return None;
            }
            if let Some(after) = lost
                && let Some(q1) = self.queue.get(first + 1)
            {
                let q1_received = ack.is_some_and(|a| q1.head_end_offset <= a);
                let q1_sent_after_loss = after.is_none_or(|t| q1.start_ts > t);
                if q1_received && q1_sent_after_loss && q0.req.is_some() {
                    // q0's response was in the lost bytes.
                    let gone = self.queue.remove(first)?;
                    self.stats.responses_lost += 1;
                    self.give_up(gone, Flags::NO_RESPONSE | Flags::RESPONSE_GAP);
                    continue;
                }
                if self.queue.len() > first + 1 {
                    resp.flags |= Flags::PAIRING_UNCERTAIN;
                }
            }
            return Some(first);
        }
    }

    /// Emits finished exchanges in request order.
    fn emit_ready(&mut self) {
        while let Some(front) = self.queue.front() {
            let done = (front.req.is_some() || front.emitted) && front.response.is_some();
            if !done {
                break;
            }
            let Some(q) = self.queue.pop_front() else {
                break;
            };
            if q.emitted {
                continue;
            }
            self.stats.matched += 1;
            let mut extra = Flags::empty();
            if q.interim {
                extra |= Flags::INTERIM_RESPONSE;
            }
            let upgrade = q.upgrade;
            let e = self.entry(q.req, q.response, extra, upgrade);
            self.out.emit(e);
        }
    }

    /// A request that will get no response. One still arriving is emitted when it has
    /// arrived (see `ReqSink::on_message`).
    fn give_up(&mut self, q: Pending, flags: Flags) {
        if q.emitted || q.req.is_none() {
            return;
        }
        self.stats.unmatched_requests += 1;
        let mut flags = flags;
        if q.interim {
            flags |= Flags::INTERIM_RESPONSE;
        }
        let e = self.entry(q.req, q.response, flags, false);
        self.out.emit(e);
    }

    fn entry(
        &self,
        req: Option<Message>,
        resp: Option<Message>,
        extra: Flags,
        upgrade: bool,
    ) -> Entry {
        build_entry(
            self.ctx,
            self.client,
            self.limits,
            req,
            resp,
            extra,
            upgrade,
        )
    }
}

fn build_entry(
    ctx: &FlowCtx,
    client: Dir,
    limits: &Limits,
    req: Option<Message>,
    resp: Option<Message>,
    extra: Flags,
    upgrade: bool,
) -> Entry {
    let c = ctx.endpoints[client.index()];
    let s = ctx.endpoints[client.flip().index()];
    let mut flags = extra;
    if upgrade {
        flags |= Flags::UPGRADE;
    }
    let mut e = Entry {
        protocol: Protocol::Http,
        transport: Transport::Tcp,
        src_ip: c.ip,
        src_port: Some(c.port),
        dst_ip: s.ip,
        dst_port: Some(s.port),
        ..Entry::default()
    };
    let mut req_reason = None;
    if let Some(r) = req {
        flags |= r.flags;
        e.timestamp = r.start_ts;
        if let StartLine::Request { method, target } = r.head.start {
            e.method = Some(method);
            e.path = Some(target);
        }
        e.http_version = Some(r.head.version);
        e.request_size = Some(r.wire_len);
        e.request_body_size = Some(r.body.size);
        let (body, f) = finish_body(r.body, &r.head.headers, limits, Role::Request);
        flags |= f;
        e.request_body = body;
        e.request_headers = Some(r.head.headers);
        req_reason = Some(r.end_ts);
    }
    if let Some(r) = resp {
        flags |= r.flags & !Flags::INTERIM_RESPONSE;
        if e.method.is_none() {
            e.timestamp = r.start_ts;
            e.http_version = Some(r.head.version.clone());
        }
        if let Some(start) = req_reason.map(|_| e.timestamp) {
            e.elapsed_time = Some((r.end_ts - start).max(0) / 1000);
        }
        let mut reason_text = String::new();
        if let StartLine::Response { status, reason } = r.head.start {
            e.status_code = Some(i32::from(status));
            reason_text = reason;
        }
        e.response_size = Some(r.wire_len);
        e.response_body_size = Some(r.body.size);
        let (body, f) = finish_body(r.body, &r.head.headers, limits, Role::Response);
        flags |= f;
        e.response_body = body;
        e.response_headers = Some(r.head.headers);
        e.summary = Some(summary(&e, Some(&reason_text)));
    } else {
        e.summary = Some(summary(&e, None));
    }
    e.incomplete = flags.intersects(Flags::INCOMPLETE);
    e.flags = flags;
    crate::graphql::enrich(&mut e);
    e
}

fn summary(e: &Entry, reason: Option<&str>) -> String {
    let req = match (&e.method, &e.path) {
        (Some(m), Some(p)) => format!("{m} {p}"),
        _ => "(request not captured)".to_string(),
    };
    match (e.status_code, reason) {
        (Some(s), Some(r)) if !r.is_empty() => format!("{req} → {s} {r}"),
        (Some(s), _) => format!("{req} → {s}"),
        _ => format!("{req} → (no response)"),
    }
}

fn finish_body(
    mut b: body::BodyCollector,
    headers: &reef_schema::Headers,
    limits: &Limits,
    role: Role,
) -> (Option<Body>, Flags) {
    let mut flags = Flags::empty();
    if b.size == 0 && b.kept().is_empty() {
        return (None, flags);
    }
    let cut_flag = match role {
        Role::Request => Flags::REQUEST_BODY_TRUNCATED,
        Role::Response => Flags::RESPONSE_BODY_TRUNCATED,
    };
    if b.cut || b.holed {
        flags |= cut_flag;
    }
    let complete = !b.cut && !b.holed;
    let kept = b.take_kept();
    let bytes = match headers.get("content-encoding") {
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

/// Does `dir` speak HTTP/1? A request line makes it the client, a status line the
/// server; a connection joined mid-way may show a message start further in.
pub fn probe(ctx: &FlowCtx, dir: Dir, bytes: &[u8]) -> Probe {
    match head::looks_like_request(bytes) {
        Looks::Yes => return Probe::Client(dir),
        Looks::Maybe if bytes.len() < head::MAX_SIGNATURE_LINE => return Probe::NotYet,
        _ => {}
    }
    match head::looks_like_response(bytes) {
        Looks::Yes => return Probe::Client(dir.flip()),
        Looks::Maybe => return Probe::NotYet,
        Looks::No => {}
    }
    if ctx.midstream[dir.index()] {
        if half::find_message_start(Role::Request, bytes, true).is_some() {
            return Probe::Client(dir);
        }
        if half::find_message_start(Role::Response, bytes, true).is_some() {
            return Probe::Client(dir.flip());
        }
        if bytes.len() < crate::MAX_DETECT_BYTES {
            return Probe::NotYet;
        }
    }
    Probe::No
}

pub fn make(client: Dir, ctx: &FlowCtx, out: &Output) -> Box<dyn StreamDissector> {
    Box::new(Http1::new(client, ctx, out.body_budget.clone()))
}

/// An HTTP/1 connection.
pub struct Http1 {
    client: Dir,
    requests: Half,
    responses: Half,
    queue: VecDeque<Pending>,
    resp_lost_after: Option<Option<i64>>,
    switched: Option<Option<String>>,
    /// After a switch of protocols: the dissector of what follows, and where its bytes
    /// begin in each direction.
    inner: Option<Box<dyn StreamDissector>>,
    inner_from: [u64; 2],
    pub stats: HttpStats,
}

impl Http1 {
    pub fn new(client: Dir, ctx: &FlowCtx, budget: body::BodyBudget) -> Http1 {
        Http1 {
            client,
            requests: Half::new(Role::Request, ctx.midstream[client.index()], budget.clone()),
            responses: Half::new(Role::Response, ctx.midstream[client.flip().index()], budget),
            queue: VecDeque::new(),
            resp_lost_after: None,
            switched: None,
            inner: None,
            inner_from: [0, 0],
            stats: HttpStats::default(),
        }
    }

    fn split<'a>(
        &'a mut self,
        ctx: &'a FlowCtx,
        limits: &'a Limits,
        out: &'a mut Entries,
    ) -> (&'a mut Half, &'a mut Half, Pairing<'a>) {
        let Http1 {
            client,
            requests,
            responses,
            queue,
            resp_lost_after,
            switched,
            stats,
            ..
        } = self;
        (
            requests,
            responses,
            Pairing {
                queue,
                resp_lost_after,
                out,
                ctx,
                client: *client,
                limits,
                switched,
                stats,
            },
        )
    }

    /// Requests waiting longer than the response timeout are emitted now, flagged; they
    /// keep their place so that a late response is not paired with the next request.
    fn expire(&mut self, now: i64, ctx: &FlowCtx, limits: &Limits, out: &mut Entries) {
        let (_, _, p) = self.split(ctx, limits, out);
        for i in 0..p.queue.len() {
            let q = &mut p.queue[i];
            // A response that has begun is not late; it is still arriving.
            if q.emitted || q.responding || now - q.start_ts <= limits.response_timeout_ns {
                continue;
            }
            let Some(req) = q.req.take() else {
                continue; // still arriving: not waiting for a response yet
            };
            q.emitted = true;
            let mut flags = Flags::NO_RESPONSE | Flags::TIMEOUT;
            if q.interim {
                flags |= Flags::INTERIM_RESPONSE;
            }
            p.stats.timeouts += 1;
            let e = p.entry(Some(req), None, flags, false);
            p.out.emit(e);
        }
    }

    fn waiting_too_long(&self, now: i64, limits: &Limits) -> bool {
        self.queue.iter().any(|q| {
            !q.emitted
                && !q.responding
                && q.req.is_some()
                && now - q.start_ts > limits.response_timeout_ns
        })
    }
}

/// The part of `seg` at or after stream offset `from`.
fn from_offset(seg: Seg<'_>, from: u64) -> Option<Seg<'_>> {
    let end = seg.offset + seg.data.len() as u64;
    if end <= from {
        return None;
    }
    let skip = from.saturating_sub(seg.offset) as usize;
    Some(Seg {
        offset: seg.offset + skip as u64,
        data: &seg.data[skip..],
        ..seg
    })
}

impl Http1 {
    /// A response switched protocols: both directions stop being HTTP/1 where they
    /// are, and what follows goes to the dissector registered for the upgrade (or to
    /// fresh detection).
    fn open_tunnel(&mut self, token: Option<String>, ctx: &FlowCtx, out: &mut Output) {
        out.stats.upgrades += 1;
        self.requests.into_tunnel();
        self.responses.into_tunnel();
        let c = self.client.index();
        self.inner_from[c] = self.requests.tunnel_start().unwrap_or(u64::MAX);
        self.inner_from[1 - c] = self.responses.tunnel_start().unwrap_or(u64::MAX);
        self.inner = Some(crate::registry::after_upgrade(
            token.as_deref(),
            self.client,
            ctx,
            out,
        ));
    }
}

impl StreamDissector for Http1 {
    fn data(&mut self, ctx: &FlowCtx, seg: Seg<'_>, out: &mut Output) {
        if let Some(inner) = self.inner.as_mut() {
            if let Some(rest) = from_offset(seg, self.inner_from[seg.dir.index()]) {
                inner.data(ctx, rest, out);
            }
            return;
        }
        let client = self.client;
        let limits = out.limits;
        let (requests, responses, mut p) = self.split(ctx, &limits, &mut out.entries);
        let Seg {
            dir,
            offset,
            data,
            ts,
            peer_ack,
        } = seg;
        if dir == client {
            requests.feed(offset, data, ts, peer_ack, &limits, &mut ReqSink(&mut p));
        } else {
            responses.feed(offset, data, ts, peer_ack, &limits, &mut RespSink(&mut p));
        }
        if let Some(token) = self.switched.take() {
            self.open_tunnel(token, ctx, out);
            if let (Some(inner), Some(rest)) = (
                self.inner.as_mut(),
                from_offset(seg, self.inner_from[dir.index()]),
            ) {
                inner.data(ctx, rest, out);
            }
        }
    }

    fn gap(&mut self, ctx: &FlowCtx, dir: Dir, len: u64, ts: i64, out: &mut Output) {
        if let Some(inner) = self.inner.as_mut() {
            inner.gap(ctx, dir, len, ts, out);
            return;
        }
        let client = self.client;
        let limits = out.limits;
        let (requests, responses, mut p) = self.split(ctx, &limits, &mut out.entries);
        if dir == client {
            requests.gap(len, ts, &mut ReqSink(&mut p));
        } else {
            responses.gap(len, ts, &mut RespSink(&mut p));
        }
    }

    fn end(&mut self, ctx: &FlowCtx, dir: Dir, ts: i64, out: &mut Output) {
        let client = self.client;
        let limits = out.limits;
        let (requests, responses, mut p) = self.split(ctx, &limits, &mut out.entries);
        if dir == client {
            requests.end(ts, &mut ReqSink(&mut p));
        } else {
            responses.end(ts, &mut RespSink(&mut p));
        }
        if let Some(inner) = self.inner.as_mut() {
            inner.end(ctx, dir, ts, out);
        }
    }

    fn closed(&mut self, ctx: &FlowCtx, ts: i64, out: &mut Output) {
        if let Some(inner) = self.inner.as_mut() {
            inner.closed(ctx, ts, out);
        }
        let limits = out.limits;
        let (_, _, mut p) = self.split(ctx, &limits, &mut out.entries);
        // Both directions have ended, so every request has been read as far as it
        // went; whatever still waits got no response.
        while let Some(q) = p.queue.pop_front() {
            if q.emitted {
                continue;
            }
            if q.req.is_some() && q.response.is_some() {
                p.stats.matched += 1;
                let e = p.entry(q.req, q.response, Flags::empty(), q.upgrade);
                p.out.emit(e);
            } else {
                p.give_up(q, Flags::NO_RESPONSE);
            }
        }
        out.stats.http.merge(&self.stats);
        out.stats.http_lost_heads +=
            self.requests.stats.lost_heads + self.responses.stats.lost_heads;
        out.stats.http_skipped_bytes +=
            self.requests.stats.skipped_bytes + self.responses.stats.skipped_bytes;
    }

    fn tick(&mut self, ctx: &FlowCtx, now: i64, out: &mut Output) {
        if let Some(inner) = self.inner.as_mut() {
            inner.tick(ctx, now, out);
        }
        let limits = out.limits;
        if self.waiting_too_long(now, &limits) {
            self.expire(now, ctx, &limits, &mut out.entries);
        }
    }
}

impl HttpStats {
    fn merge(&mut self, o: &HttpStats) {
        self.requests += o.requests;
        self.responses += o.responses;
        self.matched += o.matched;
        self.unmatched_requests += o.unmatched_requests;
        self.unmatched_responses += o.unmatched_responses;
        self.responses_lost += o.responses_lost;
        self.interim_responses += o.interim_responses;
        self.timeouts += o.timeouts;
    }
}

#[cfg(test)]
mod tests;
