//! MQTT 3.1, 3.1.1 and 5: control packets paired with their acknowledgments.
//!
//! One entry per exchange. CONNECT pairs with CONNACK in order; PUBLISH QoS 1,
//! SUBSCRIBE and UNSUBSCRIBE with their acknowledgment by packet id, in either
//! direction (a broker publishes to its subscribers too). A QoS 2 PUBLISH is one
//! entry for its four packets, PUBLISH → PUBREC → PUBREL → PUBCOMP, timed from the
//! PUBLISH to the PUBCOMP; when the capture missed its start, the PUBREC (or the
//! PUBREL) opens the entry, flagged `no_request`, and the rest joins it. A QoS 0
//! PUBLISH and AUTH are one-way entries. Liveness traffic is counted in
//! [`MqttStats`], not listed: a PINGREQ answered by a PINGRESP, and a DISCONNECT
//! saying all is well; a PINGREQ left unanswered and a DISCONNECT with an error
//! reason (from either side) are entries. An entry's endpoints are the
//! connection's: the MQTT client is always `src`, whichever side sent the packet;
//! the summary says when the broker did.

pub mod half;
pub mod packet;

use std::collections::VecDeque;

use reef_reassembly::{Dir, FlowCtx};
use reef_schema::{Body, Entry, Flags, Protocol, Transport};
use rustc_hash::FxHashMap;

use self::half::{Boundary, Frame, Half};
use self::packet::Body as P;
use crate::{Output, Probe, Seg, StreamDissector};

/// Exchanges waiting for their next packet per connection (in flight by packet id,
/// plus PINGREQs); past this the oldest is given up.
pub const MAX_PENDING_PACKETS: usize = 4096;
/// Packet ids of given-up packets remembered, so that a late acknowledgment is
/// dropped rather than reported without its packet.
pub const MAX_EXPIRED_IDS: usize = 1024;
/// Topic filters listed in a summary.
pub const MAX_SUMMARY_FILTERS: usize = 8;
/// Bytes of payload shown in a summary.
pub const MAX_SUMMARY_PAYLOAD: usize = 64;

pub fn make(client: Dir, ctx: &FlowCtx, out: &Output) -> Box<dyn StreamDissector> {
    Box::new(Mqtt::new(client, ctx, out))
}

/// Well-known MQTT ports, used only to tell the broker from the client on a
/// connection joined mid-way whose packets could come from either side.
const BROKER_PORTS: [u16; 2] = [1883, 8883];
/// Bytes of a connection joined mid-way searched for packets.
const MIDSTREAM_WINDOW: usize = 4096;
/// Bytes skipped looking for the first packet of a connection joined mid-way.
const MAX_PROBE_SKIP: usize = 1024;

/// Does `dir` speak MQTT? A CONNECT with its protocol name at the start of a
/// connection makes it the client; on a connection joined mid-way, a run of
/// plausible packets (at least one that could hardly be anything else) does, the
/// packet types telling the side when they can.
pub fn probe(ctx: &FlowCtx, dir: Dir, bytes: &[u8]) -> Probe {
    match packet::connect_signature(bytes) {
        Some(true) => return Probe::Client(dir),
        None => return Probe::NotYet,
        Some(false) => {}
    }
    if !ctx.midstream[dir.index()] {
        return Probe::No;
    }
    let window = &bytes[..bytes.len().min(MIDSTREAM_WINDOW)];
    // The capture may start inside a packet: the first boundary counts.
    let first = (0..window.len().min(MAX_PROBE_SKIP)).find(|&i| {
        matches!(
            half::boundary_at(&window[i..]),
            Boundary::Yes | Boundary::NeedMore
        )
    });
    let Some(mut at) = first else {
        return if bytes.len() < MAX_PROBE_SKIP {
            Probe::NotYet
        } else {
            Probe::No
        };
    };
    let mut count = 0;
    let mut strong = false;
    let mut side: Option<bool> = None; // Some(true): dir is the client
    while at < window.len() {
        let b = &window[at..];
        match half::boundary_at(b) {
            Boundary::No => return Probe::No,
            Boundary::NeedMore | Boundary::Long { .. } => break,
            Boundary::Yes => {}
        }
        let packet::Header::Fixed(f) = packet::fixed(b) else {
            return Probe::No;
        };
        strong |= packet::plausible(&f, &b[f.len..]).unwrap_or(false);
        side = side.or(match f.ptype {
            packet::CONNECT | packet::SUBSCRIBE | packet::UNSUBSCRIBE | packet::PINGREQ => {
                Some(true)
            }
            packet::CONNACK | packet::SUBACK | packet::UNSUBACK | packet::PINGRESP => Some(false),
            _ => None,
        });
        count += 1;
        at += f.len + f.remaining as usize;
    }
    let complete = at == window.len();
    if !(strong && (count >= 3 || (count >= 2 && complete))) {
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
            // Clients use ephemeral ports, higher than a server's.
            mine > theirs
        }
    });
    Probe::Client(if is_client { dir } else { dir.flip() })
}

/// What MQTT pairing saw that did not become an entry: answered pings and normal
/// disconnects are the heartbeat of a healthy connection, counted rather than listed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MqttStats {
    /// Control packets read, both directions.
    pub packets: u64,
    /// PINGREQs answered by a PINGRESP.
    pub pings: u64,
    /// PINGRESPs whose PINGREQ was not captured (or had already timed out).
    pub pingresps_without_request: u64,
    /// DISCONNECTs saying all is well (reason 0x00, or 0x04 "with will message").
    pub disconnects: u64,
    /// Bytes skipped looking for a packet boundary (lost bytes, mid-way joins).
    pub skipped_bytes: u64,
}

/// An exchange waiting for its next packet. Keyed by the side that sent its request
/// (the publisher, for a PUBLISH) and the packet id.
#[derive(Debug)]
struct Pending {
    /// The packet that opened it; `None` when the capture missed it and the exchange
    /// is known from an acknowledgment (a PUBREC continued by PUBREL and PUBCOMP).
    first: Option<Frame>,
    /// The packets that answered or continued it, in order: one acknowledgment, or
    /// PUBREC, PUBREL, PUBCOMP for QoS 2.
    steps: Vec<Frame>,
    /// The request's sender is the client (not the broker).
    from_client: bool,
    /// The packet type that continues it (0 for a one-way packet).
    next: u8,
    flags: Flags,
}

impl Pending {
    fn opened(frame: Frame, from_client: bool, next: u8) -> Pending {
        Pending {
            first: Some(frame),
            steps: Vec::new(),
            from_client,
            next,
            flags: Flags::empty(),
        }
    }

    /// When it started, for ordering what is given up together.
    fn start(&self) -> (i64, u64) {
        self.first
            .as_ref()
            .or(self.steps.first())
            .map_or((0, 0), |f| (f.start_ts, f.start_offset))
    }

    /// When its last packet arrived, for the timeout.
    fn last_ts(&self) -> i64 {
        self.steps
            .last()
            .map(|f| f.end_ts)
            .or(self.first.as_ref().map(|f| f.start_ts))
            .unwrap_or(0)
    }
}

/// An MQTT connection.
pub struct Mqtt {
    client: Dir,
    halves: [Half; 2],
    version: Option<u8>,
    connect: Option<Pending>,
    pings: VecDeque<Pending>,
    /// Exchanges waiting by (request sender is the client, packet id).
    by_id: FxHashMap<(bool, u16), Pending>,
    /// Given-up (request sender is the client, packet id, next type) whose late
    /// packets are dropped.
    expired: VecDeque<(bool, u16, u8)>,
    /// Skipped bytes of the halves already added to the stats.
    skipped_reported: u64,
    frames: Vec<Frame>,
}

impl Mqtt {
    pub fn new(client: Dir, ctx: &FlowCtx, out: &Output) -> Mqtt {
        let mk = |d: Dir| Half::new(ctx.midstream[d.index()], out.body_budget.clone());
        Mqtt {
            client,
            halves: [mk(Dir::Forward), mk(Dir::Reverse)],
            version: None,
            connect: None,
            pings: VecDeque::new(),
            by_id: FxHashMap::default(),
            expired: VecDeque::new(),
            skipped_reported: 0,
            frames: Vec::new(),
        }
    }

    fn handle(&mut self, ctx: &FlowCtx, dir: Dir, out: &mut Output) {
        let frames = std::mem::take(&mut self.frames);
        let from_client = dir == self.client;
        out.stats.mqtt.packets += frames.len() as u64;
        for f in frames {
            self.on_frame(ctx, from_client, f, out);
        }
        // What one side learnt of the version holds for the other.
        let v5 = self.halves[0].v5 || self.halves[1].v5;
        for h in &mut self.halves {
            h.v5 = v5;
        }
        let skipped = self.halves[0].stats.skipped_bytes + self.halves[1].stats.skipped_bytes;
        out.stats.mqtt.skipped_bytes += skipped.saturating_sub(self.skipped_reported);
        self.skipped_reported = skipped;
    }

    fn pending_len(&self) -> usize {
        self.by_id.len() + self.pings.len()
    }

    fn on_frame(&mut self, ctx: &FlowCtx, from_client: bool, f: Frame, out: &mut Output) {
        let t = f.fixed.ptype;
        let Some(p) = f.packet.as_ref() else {
            // Unreadable: one entry, flagged, so it is not silently lost.
            return self.one_way(ctx, from_client, f, out);
        };
        match (t, &p.body) {
            (packet::CONNECT, P::Connect { level, .. }) => {
                self.version = Some(level & 0x7f);
                if let Some(old) = self.connect.take() {
                    self.give_up(ctx, old, Flags::NO_RESPONSE, out);
                }
                self.connect = Some(Pending::opened(f, from_client, packet::CONNACK));
            }
            (packet::CONNACK, _) => match self.connect.take() {
                Some(mut req) => {
                    req.steps.push(f);
                    self.emit(ctx, req, Flags::empty(), out);
                }
                None => self.orphan(ctx, from_client, f, out),
            },
            (packet::PINGREQ, _) => {
                self.make_room(ctx, out);
                self.pings
                    .push_back(Pending::opened(f, from_client, packet::PINGRESP));
            }
            // A ping answered says the broker is alive, nothing more: counted.
            (packet::PINGRESP, _) => match self.pings.pop_front() {
                Some(_) => out.stats.mqtt.pings += 1,
                None => out.stats.mqtt.pingresps_without_request += 1,
            },
            (packet::DISCONNECT, P::Reason { code: 0x00 | 0x04 }) => {
                out.stats.mqtt.disconnects += 1;
            }
            (
                packet::PUBLISH,
                P::Publish {
                    packet_id: Some(id),
                    ..
                },
            ) => {
                let qos = (f.fixed.flags >> 1) & 3;
                let next = if qos == 1 {
                    packet::PUBACK
                } else {
                    packet::PUBREC
                };
                let id = *id;
                self.wait(ctx, Pending::opened(f, from_client, next), id, out);
            }
            (packet::PUBREL, P::Ack { packet_id, .. }) => {
                let id = *packet_id;
                self.released(ctx, from_client, id, f, out);
            }
            (packet::SUBSCRIBE, P::Subscribe { packet_id, .. }) => {
                let id = *packet_id;
                let p = Pending::opened(f, from_client, packet::SUBACK);
                self.wait(ctx, p, id, out);
            }
            (packet::UNSUBSCRIBE, P::Unsubscribe { packet_id, .. }) => {
                let id = *packet_id;
                let p = Pending::opened(f, from_client, packet::UNSUBACK);
                self.wait(ctx, p, id, out);
            }
            (packet::PUBACK | packet::PUBREC | packet::PUBCOMP, P::Ack { packet_id, .. })
            | (packet::SUBACK | packet::UNSUBACK, P::SubAck { packet_id, .. }) => {
                let id = *packet_id;
                self.acked(ctx, from_client, id, f, out)
            }
            _ => self.one_way(ctx, from_client, f, out),
        }
    }

    /// Gives up the oldest waiting exchange when too many wait.
    fn make_room(&mut self, ctx: &FlowCtx, out: &mut Output) {
        if self.pending_len() < MAX_PENDING_PACKETS {
            return;
        }
        let oldest = self
            .by_id
            .iter()
            .min_by_key(|(_, p)| p.start())
            .map(|(k, p)| (*k, p.start()));
        let ping = self.pings.front().map(Pending::start);
        match (oldest, ping) {
            (Some((k, t)), p) if p.is_none_or(|p| t <= p) => {
                if let Some(old) = self.by_id.remove(&k) {
                    self.remember_expired(k, old.next);
                    self.give_up(ctx, old, Flags::NO_RESPONSE, out);
                }
            }
            _ => {
                if let Some(old) = self.pings.pop_front() {
                    self.give_up(ctx, old, Flags::NO_RESPONSE, out);
                }
            }
        }
    }

    fn remember_expired(&mut self, key: (bool, u16), next: u8) {
        if self.expired.len() >= MAX_EXPIRED_IDS {
            self.expired.pop_front();
        }
        self.expired.push_back((key.0, key.1, next));
    }

    /// Drops a late packet of a given-up exchange; the packet that would follow it is
    /// dropped in turn.
    fn late(&mut self, key: (bool, u16), t: u8, f: &Frame) -> bool {
        let Some(i) = self
            .expired
            .iter()
            .position(|&(c, i, n)| (c, i) == key && n == t)
        else {
            return false;
        };
        self.expired.remove(i);
        match t {
            packet::PUBREC if !failed(f) => self.remember_expired(key, packet::PUBREL),
            packet::PUBREL => self.remember_expired(key, packet::PUBCOMP),
            _ => {}
        }
        true
    }

    fn wait(&mut self, ctx: &FlowCtx, p: Pending, id: u16, out: &mut Output) {
        self.make_room(ctx, out);
        if let Some(old) = self.by_id.insert((p.from_client, id), p) {
            // The id was reused before its exchange ended (a resend after a reconnect,
            // or a lost acknowledgment): the first one got no answer.
            self.give_up(ctx, old, Flags::NO_RESPONSE, out);
        }
    }

    /// A PUBREL: the second half of a QoS 2 exchange, sent by the publisher.
    fn released(&mut self, ctx: &FlowCtx, from_client: bool, id: u16, f: Frame, out: &mut Output) {
        let key = (from_client, id);
        if let Some(p) = self.by_id.get_mut(&key)
            && p.next == packet::PUBREL
        {
            p.steps.push(f);
            p.next = packet::PUBCOMP;
            return;
        }
        if self.late(key, packet::PUBREL, &f) {
            return;
        }
        // Its PUBLISH was not captured (the capture joined mid-way, or lost it): an
        // exchange of its own, waiting for the PUBCOMP.
        let mut p = Pending::opened(f, from_client, packet::PUBCOMP);
        p.flags = Flags::NO_REQUEST;
        self.wait(ctx, p, id, out);
    }

    /// An acknowledgment, sent by the side that did not send the request.
    fn acked(&mut self, ctx: &FlowCtx, from_client: bool, id: u16, f: Frame, out: &mut Output) {
        let t = f.fixed.ptype;
        let key = (!from_client, id);
        // A PUBREC that accepts the message is followed by PUBREL and PUBCOMP.
        let goes_on = t == packet::PUBREC && !failed(&f);
        if let Some(p) = self.by_id.get_mut(&key)
            && p.next == t
        {
            p.steps.push(f);
            if goes_on {
                p.next = packet::PUBREL;
            } else if let Some(p) = self.by_id.remove(&key) {
                self.emit(ctx, p, Flags::empty(), out);
            }
            return;
        }
        if self.late(key, t, &f) {
            return;
        }
        if goes_on {
            let p = Pending {
                first: None,
                steps: vec![f],
                from_client: !from_client,
                next: packet::PUBREL,
                flags: Flags::NO_REQUEST,
            };
            return self.wait(ctx, p, id, out);
        }
        self.orphan(ctx, from_client, f, out);
    }

    /// An acknowledgment whose packet was not seen.
    fn orphan(&mut self, ctx: &FlowCtx, from_client: bool, f: Frame, out: &mut Output) {
        let p = Pending {
            first: None,
            steps: vec![f],
            from_client: !from_client,
            next: 0,
            flags: Flags::NO_REQUEST,
        };
        self.emit(ctx, p, Flags::empty(), out);
    }

    fn one_way(&mut self, ctx: &FlowCtx, from_client: bool, f: Frame, out: &mut Output) {
        self.emit(ctx, Pending::opened(f, from_client, 0), Flags::empty(), out);
    }

    fn give_up(&mut self, ctx: &FlowCtx, p: Pending, flags: Flags, out: &mut Output) {
        self.emit(ctx, p, flags, out);
    }

    fn emit(&mut self, ctx: &FlowCtx, p: Pending, flags: Flags, out: &mut Output) {
        let e = self.entry(ctx, p, flags);
        out.entries.emit(e);
    }

    /// The entry of an exchange; `extra` says why it ends here if it is not complete.
    fn entry(&self, ctx: &FlowCtx, p: Pending, extra: Flags) -> Entry {
        let c = ctx.endpoints[self.client.index()];
        let s = ctx.endpoints[self.client.flip().index()];
        let mut e = Entry {
            protocol: Protocol::Mqtt,
            transport: Transport::Tcp,
            src_ip: c.ip,
            src_port: Some(c.port),
            dst_ip: s.ip,
            dst_port: Some(s.port),
            ..Entry::default()
        };
        let Pending {
            first,
            steps,
            from_client,
            next,
            flags: own,
        } = p;
        let mut flags = own | extra;
        let Some(head) = first.as_ref().or(steps.first()) else {
            return e;
        };
        let (start, head_type) = (head.start_ts, head.fixed.ptype);
        e.timestamp = start;
        e.method = Some(packet::type_name(head_type).to_string());
        e.mqtt_packet_id = packet_id(head).map(u32::from);
        if matches!(head_type, packet::PUBREC | packet::PUBREL) {
            // Only QoS 2 has these.
            e.mqtt_qos = Some(2);
        }
        // Two packets or more: the time from the first to the end of the last.
        let paired = steps.len() + usize::from(first.is_some()) >= 2;
        // The publisher sends PUBLISH and PUBREL, the receiver the acknowledgments.
        let mut request_size = None;
        let mut response_size = None;
        let mut summary = match first {
            Some(mut f) => {
                flags |= f.flags;
                request_size = Some(f.wire_len());
                let mut s = self.describe(&f, from_client, &mut e);
                if let Some(mut payload) = f.payload.take() {
                    e.request_body_size = Some(payload.size);
                    if payload.cut || payload.holed {
                        flags |= Flags::REQUEST_BODY_TRUNCATED;
                    }
                    let kept = payload.take_kept();
                    s.push_str(&format!(" [{} bytes", payload.size));
                    if !kept.is_empty() {
                        s.push_str(": ");
                        s.push_str(&preview(&kept));
                    }
                    s.push(']');
                    e.request_body = Some(Body(kept));
                }
                if own.contains(Flags::NO_REQUEST) {
                    s.push_str(" (PUBLISH not captured)");
                }
                let code = match f.packet.as_ref().map(|p| &p.body) {
                    // DISCONNECT and AUTH carry a reason code; a QoS 0 PUBLISH has none.
                    Some(P::Reason { code }) => {
                        s.push_str(&format!(" ({})", reason_name(*code)));
                        Some(*code)
                    }
                    Some(P::Ack { code, .. }) => {
                        let (_, text) = self.outcome(&f);
                        if !text.is_empty() {
                            s.push_str(&format!(" ({text})"));
                        }
                        Some(*code)
                    }
                    _ => None,
                };
                e.status_code = code.map(i32::from);
                s
            }
            None => format!("({} not captured)", packet::type_name(asked_by(head_type))),
        };
        for f in &steps {
            flags |= f.flags;
            let size = if f.fixed.ptype == packet::PUBREL {
                &mut request_size
            } else {
                &mut response_size
            };
            *size = Some(size.unwrap_or(0) + f.wire_len());
            let (code, text) = self.outcome(f);
            // The first code that says something other than success tells.
            if let Some(code) = code
                && e.status_code.is_none_or(|c| c == 0)
            {
                e.status_code = Some(i32::from(code));
            }
            summary.push_str(" → ");
            summary.push_str(packet::type_name(f.fixed.ptype));
            if !text.is_empty() {
                summary.push(' ');
                summary.push_str(&text);
            }
        }
        if next != 0 && !extra.is_empty() {
            summary.push_str(&format!(" → (no {})", packet::type_name(next)));
            if response_size.is_some() {
                // Answered, then cut (a QoS 2 handshake that stopped after its
                // PUBREC): the exchange is truncated, not unanswered.
                flags = (flags & !Flags::NO_RESPONSE) | Flags::TRUNCATED;
            }
        }
        if let Some(last) = steps.last()
            && paired
        {
            e.elapsed_time = Some((last.end_ts - start).max(0) / 1000);
        }
        e.request_size = request_size;
        e.response_size = response_size;
        e.summary = Some(summary);
        e.incomplete = flags.intersects(Flags::INCOMPLETE);
        e.flags = flags;
        e
    }

    /// The request side of the summary, and the columns it fills.
    fn describe(&self, f: &Frame, from_client: bool, e: &mut Entry) -> String {
        let name = packet::type_name(f.fixed.ptype);
        let by = if from_client { "" } else { "(broker) " };
        let Some(p) = f.packet.as_ref() else {
            return format!("{by}{name} (malformed)");
        };
        match &p.body {
            P::Connect {
                protocol,
                level,
                clean,
                keep_alive,
                client_id,
                username,
                will_topic,
            } => {
                let version = match level & 0x7f {
                    3 => "3.1".to_string(),
                    4 => "3.1.1".to_string(),
                    5 => "5".to_string(),
                    other => format!("level {other}"),
                };
                let mut s = format!("{by}CONNECT {protocol} {version} client_id={client_id:?}");
                s.push_str(&format!(" keep_alive={keep_alive}"));
                if *clean {
                    s.push_str(" clean");
                }
                if let Some(u) = username {
                    s.push_str(&format!(" user={u:?}"));
                }
                if let Some(w) = will_topic {
                    s.push_str(&format!(" will={w:?}"));
                }
                s
            }
            P::Publish { topic, .. } => {
                let qos = (f.fixed.flags >> 1) & 3;
                e.path = Some(topic.clone());
                e.mqtt_topic = Some(topic.clone());
                e.mqtt_qos = Some(i32::from(qos));
                let mut s = format!("{by}PUBLISH {topic} qos={qos}");
                if f.fixed.flags & 1 != 0 {
                    s.push_str(" retain");
                }
                if f.fixed.flags & 8 != 0 {
                    s.push_str(" dup");
                }
                if let Some(ct) = &p.props.content_type {
                    s.push_str(&format!(" content_type={ct:?}"));
                }
                s
            }
            P::Subscribe { filters, .. } => {
                if let Some((t, q)) = filters.first() {
                    e.path = Some(t.clone());
                    e.mqtt_topic = Some(t.clone());
                    e.mqtt_qos = Some(i32::from(*q));
                }
                let list: Vec<String> = filters
                    .iter()
                    .take(MAX_SUMMARY_FILTERS)
                    .map(|(t, q)| format!("{t} (qos {q})"))
                    .collect();
                let more = filters.len().saturating_sub(MAX_SUMMARY_FILTERS);
                let mut s = format!("{by}SUBSCRIBE {}", list.join(", "));
                if more > 0 {
                    s.push_str(&format!(" …(+{more})"));
                }
                s
            }
            P::Unsubscribe { filters, .. } => {
                if let Some(t) = filters.first() {
                    e.path = Some(t.clone());
                    e.mqtt_topic = Some(t.clone());
                }
                let list: Vec<&str> = filters
                    .iter()
                    .take(MAX_SUMMARY_FILTERS)
                    .map(String::as_str)
                    .collect();
                format!("{by}UNSUBSCRIBE {}", list.join(", "))
            }
            P::Ack { packet_id, .. } => format!("{by}{name} id={packet_id}"),
            _ => format!("{by}{name}"),
        }
    }

    /// The acknowledgment's reason code and a few words on it.
    fn outcome(&self, f: &Frame) -> (Option<u8>, String) {
        let v5 = self.version == Some(5) || self.halves[0].v5;
        let Some(p) = f.packet.as_ref() else {
            return (None, "(malformed)".to_string());
        };
        let reason = p.props.reason_string.as_deref();
        let with_reason = |s: String| match reason {
            Some(r) => format!("{s}: {r}"),
            None => s,
        };
        match &p.body {
            P::Connack {
                session_present,
                code,
            } => {
                let mut s = if v5 {
                    format!("{code} {}", reason_name(*code))
                } else {
                    format!("{code} {}", connack_name(*code))
                };
                if *session_present {
                    s.push_str(" (session present)");
                }
                (Some(*code), with_reason(s))
            }
            P::Ack { code, .. } => (
                Some(*code),
                with_reason(if *code == 0 {
                    String::new()
                } else {
                    format!("{code} {}", reason_name(*code))
                }),
            ),
            P::SubAck { codes, .. } => {
                let failed = codes.iter().copied().find(|c| *c >= 0x80);
                let list: Vec<String> = codes
                    .iter()
                    .take(MAX_SUMMARY_FILTERS)
                    .map(|c| match c {
                        0..=2 if f.fixed.ptype == packet::SUBACK => format!("qos {c}"),
                        c => format!("{c}"),
                    })
                    .collect();
                (Some(failed.unwrap_or(0)), with_reason(list.join(", ")))
            }
            _ => (None, String::new()),
        }
    }
}

/// The packet type an acknowledgment answers.
fn asked_by(t: u8) -> u8 {
    match t {
        packet::CONNACK => packet::CONNECT,
        packet::PUBACK | packet::PUBREC => packet::PUBLISH,
        packet::PUBCOMP => packet::PUBREL,
        packet::SUBACK => packet::SUBSCRIBE,
        packet::UNSUBACK => packet::UNSUBSCRIBE,
        packet::PINGRESP => packet::PINGREQ,
        other => other,
    }
}

/// An acknowledgment whose reason code is an error (MQTT 5): it ends the exchange.
fn failed(f: &Frame) -> bool {
    matches!(f.packet.as_ref().map(|p| &p.body), Some(P::Ack { code, .. }) if *code >= 0x80)
}

fn packet_id(f: &Frame) -> Option<u16> {
    match f.packet.as_ref().map(|p| &p.body) {
        Some(P::Publish { packet_id, .. }) => *packet_id,
        Some(
            P::Ack { packet_id, .. }
            | P::Subscribe { packet_id, .. }
            | P::SubAck { packet_id, .. }
            | P::Unsubscribe { packet_id, .. },
        ) => Some(*packet_id),
        _ => None,
    }
}

fn preview(b: &[u8]) -> String {
    let shown = &b[..b.len().min(MAX_SUMMARY_PAYLOAD)];
    let text = std::str::from_utf8(shown)
        .ok()
        .filter(|s| s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t'));
    match text {
        Some(t) => {
            let mut s = t.replace('\n', " ");
            if b.len() > MAX_SUMMARY_PAYLOAD {
                s.push('…');
            }
            s
        }
        None => "(binary)".to_string(),
    }
}

/// MQTT 3.1.1 CONNACK return codes.
fn connack_name(code: u8) -> &'static str {
    match code {
        0 => "accepted",
        1 => "unacceptable protocol version",
        2 => "identifier rejected",
        3 => "server unavailable",
        4 => "bad user name or password",
        5 => "not authorized",
        _ => "unknown",
    }
}

/// MQTT 5 reason codes.
fn reason_name(code: u8) -> &'static str {
    match code {
        0x00 => "success",
        0x04 => "disconnect with will message",
        0x10 => "no matching subscribers",
        0x11 => "no subscription existed",
        0x18 => "continue authentication",
        0x19 => "re-authenticate",
        0x80 => "unspecified error",
        0x81 => "malformed packet",
        0x82 => "protocol error",
        0x83 => "implementation specific error",
        0x84 => "unsupported protocol version",
        0x85 => "client identifier not valid",
        0x86 => "bad user name or password",
        0x87 => "not authorized",
        0x88 => "server unavailable",
        0x89 => "server busy",
        0x8a => "banned",
        0x8b => "server shutting down",
        0x8c => "bad authentication method",
        0x8d => "keep alive timeout",
        0x8e => "session taken over",
        0x8f => "topic filter invalid",
        0x90 => "topic name invalid",
        0x91 => "packet identifier in use",
        0x92 => "packet identifier not found",
        0x93 => "receive maximum exceeded",
        0x94 => "topic alias invalid",
        0x95 => "packet too large",
        0x96 => "message rate too high",
        0x97 => "quota exceeded",
        0x98 => "administrative action",
        0x99 => "payload format invalid",
        0x9a => "retain not supported",
        0x9b => "qos not supported",
        0x9c => "use another server",
        0x9d => "server moved",
        0x9e => "shared subscriptions not supported",
        0x9f => "connection rate exceeded",
        0xa0 => "maximum connect time",
        0xa1 => "subscription identifiers not supported",
        0xa2 => "wildcard subscriptions not supported",
        _ => "unknown",
    }
}

impl StreamDissector for Mqtt {
    fn data(&mut self, ctx: &FlowCtx, seg: Seg<'_>, out: &mut Output) {
        let max_body = out.limits.max_body_bytes;
        let mut frames = std::mem::take(&mut self.frames);
        self.halves[seg.dir.index()].feed(
            seg.offset,
            seg.data,
            seg.ts,
            seg.peer_ack,
            max_body,
            &mut frames,
        );
        self.frames = frames;
        self.handle(ctx, seg.dir, out);
    }

    fn gap(&mut self, ctx: &FlowCtx, dir: Dir, len: u64, _ts: i64, out: &mut Output) {
        let flag = if dir == self.client {
            Flags::REQUEST_GAP
        } else {
            Flags::RESPONSE_GAP
        };
        let mut frames = std::mem::take(&mut self.frames);
        self.halves[dir.index()].gap(len, flag, &mut frames);
        self.frames = frames;
        self.handle(ctx, dir, out);
    }

    fn end(&mut self, ctx: &FlowCtx, dir: Dir, _ts: i64, out: &mut Output) {
        let mut frames = std::mem::take(&mut self.frames);
        self.halves[dir.index()].end(&mut frames);
        self.frames = frames;
        self.handle(ctx, dir, out);
    }

    fn closed(&mut self, ctx: &FlowCtx, _ts: i64, out: &mut Output) {
        for d in [self.client, self.client.flip()] {
            self.end(ctx, d, 0, out);
        }
        let mut left: Vec<Pending> = self.by_id.drain().map(|(_, p)| p).collect();
        left.extend(self.connect.take());
        left.extend(self.pings.drain(..));
        left.sort_by_key(Pending::start);
        for p in left {
            self.give_up(ctx, p, Flags::NO_RESPONSE, out);
        }
    }

    fn tick(&mut self, ctx: &FlowCtx, now: i64, out: &mut Output) {
        let timeout = out.limits.response_timeout_ns;
        let late = |p: &Pending| now - p.last_ts() > timeout;
        let mut gone: Vec<Pending> = Vec::new();
        if self.by_id.values().any(late) {
            let keys: Vec<_> = self
                .by_id
                .iter()
                .filter(|(_, p)| late(p))
                .map(|(k, _)| *k)
                .collect();
            for k in keys {
                if let Some(p) = self.by_id.remove(&k) {
                    self.remember_expired(k, p.next);
                    gone.push(p);
                }
            }
        }
        if self.connect.as_ref().is_some_and(late) {
            gone.extend(self.connect.take());
        }
        while self.pings.front().is_some_and(late) {
            gone.extend(self.pings.pop_front());
        }
        gone.sort_by_key(Pending::start);
        for p in gone {
            self.give_up(ctx, p, Flags::NO_RESPONSE | Flags::TIMEOUT, out);
        }
    }
}

#[cfg(test)]
mod tests;
