//! Dissectors: reassembled byte streams in, entries out.
//!
//! A TCP connection starts in detection: its first bytes (never its port numbers) say
//! which protocol it speaks and which side is the client. The chosen dissector then
//! gets every byte, gap and end of the connection and emits [`Entry`] records into an
//! [`Output`]. Dissectors follow one shape: a pure parser, a state machine that turns
//! messages into transactions, named limits, and anomalies as entry flags.

pub mod amqp;
pub mod body;
mod conn;
pub mod datagram;
pub mod dns;
pub mod framing;
pub mod graphql;
pub mod grpc;
pub mod http1;
pub mod http2;
pub mod icmp;
pub mod kafka;
pub mod mongodb;
pub mod mqtt;
pub mod mysql;
pub mod postgresql;
pub mod redis;
mod registry;
mod socks;
pub mod tls;
pub mod websocket;

use std::collections::BTreeMap;

use reef_reassembly::{Dir, FlowCtx};
use reef_schema::Entry;

pub use conn::Conn;
pub use datagram::{Datagram, DatagramDissector, UdpCtx, UdpFlows};
pub use http1::HttpStats;

/// Stored body bytes per message (after decoding); longer bodies are cut and flagged.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest message head (start line and header fields).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// A request with no response after this long (capture time) is emitted as such.
pub const RESPONSE_TIMEOUT_NS: i64 = 60_000_000_000;
/// Body bytes kept by all messages in progress together; beyond it bodies are cut
/// (flagged) rather than memory grown.
pub const MAX_KEPT_BODY_BYTES_TOTAL: usize = 256 * 1024 * 1024;
/// Bytes of a connection examined before deciding it is not a protocol Reef reads.
pub const MAX_DETECT_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_kept_body_bytes_total: usize,
    pub max_head_bytes: usize,
    pub response_timeout_ns: i64,
    /// Protobuf schema for gRPC messages (`reef dissect --proto-descriptors`); without
    /// it messages are shown by their wire format.
    pub proto_schema: Option<&'static grpc::ProtoSchema>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_kept_body_bytes_total: MAX_KEPT_BODY_BYTES_TOTAL,
            max_head_bytes: MAX_HEAD_BYTES,
            response_timeout_ns: RESPONSE_TIMEOUT_NS,
            proto_schema: None,
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct DissectStats {
    pub http: HttpStats,
    pub http2: http2::Http2Stats,
    pub dns: dns::DnsStats,
    pub mqtt: mqtt::MqttStats,
    /// TCP connections by the protocol detection found.
    pub connections: BTreeMap<&'static str, u64>,
    /// TCP connections in no protocol Reef reads.
    pub connections_unknown: u64,
    /// UDP flows by the protocol detection found.
    pub udp_flows: BTreeMap<&'static str, u64>,
    /// UDP flows in no protocol Reef reads.
    pub udp_flows_unknown: u64,
    /// UDP flows not tracked because the table was full.
    pub udp_flows_dropped: u64,
    /// Connections that switched protocols (Upgrade, CONNECT).
    pub upgrades: u64,
    /// Switched connections whose new protocol is not one Reef reads.
    pub tunnels_unknown: u64,
    /// Connections through a SOCKS proxy whose tunnel was opened.
    pub socks_tunnels: u64,
    /// Body bytes not kept because [`Limits::max_kept_body_bytes_total`] was reached.
    pub body_bytes_refused: u64,
    pub http_lost_heads: u64,
    pub http_skipped_bytes: u64,
}

/// Entries emitted and not yet drained. Each gets its id here, when it is emitted,
/// so that a later entry can refer to an earlier one (a WebSocket message to its
/// upgrade request, say).
#[derive(Debug, Default)]
pub struct Entries {
    list: Vec<Entry>,
    prefix: String,
    next: u64,
}

impl Entries {
    /// Ids are `<prefix>-<n>`; the prefix must be unique per engine instance.
    pub fn new(prefix: impl Into<String>) -> Entries {
        Entries {
            list: Vec::new(),
            prefix: prefix.into(),
            next: 1,
        }
    }

    /// Adds an entry and returns its id.
    pub fn emit(&mut self, mut e: Entry) -> &str {
        e.id = format!("{}-{}", self.prefix, self.next);
        self.next += 1;
        self.list.push(e);
        self.list.last().map_or("", |e| e.id.as_str())
    }

    /// The entries emitted since the last drain, in order.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Entry> {
        self.list.drain(..)
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Entry> {
        self.list.iter()
    }
}

/// Where dissectors put their entries.
pub struct Output {
    pub entries: Entries,
    pub limits: Limits,
    pub stats: DissectStats,
    /// Body bytes kept by messages in progress, across connections.
    pub body_budget: body::BodyBudget,
}

impl Output {
    pub fn new(limits: Limits, id_prefix: impl Into<String>) -> Output {
        Output {
            entries: Entries::new(id_prefix),
            body_budget: body::BodyBudget::new(limits.max_kept_body_bytes_total),
            limits,
            stats: DissectStats::default(),
        }
    }
}

/// Bytes of one direction of a connection, as reassembly hands them on.
#[derive(Debug, Clone, Copy)]
pub struct Seg<'a> {
    pub dir: Dir,
    /// Stream offset of `data[0]`.
    pub offset: u64,
    pub data: &'a [u8],
    pub ts: i64,
    /// The segment's acknowledgment, as an offset in the other direction.
    pub peer_ack: Option<u64>,
}

/// What a protocol's first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// This protocol; the client (the side that sends requests) is this direction.
    Client(Dir),
    /// Could be this protocol; more bytes are needed.
    NotYet,
    No,
}

/// A protocol dissector for one TCP connection.
pub trait StreamDissector {
    fn data(&mut self, ctx: &FlowCtx, seg: Seg<'_>, out: &mut Output);
    /// `len` bytes of `dir` never reached the capture.
    fn gap(&mut self, ctx: &FlowCtx, dir: Dir, len: u64, ts: i64, out: &mut Output);
    /// `dir` will carry no more bytes.
    fn end(&mut self, ctx: &FlowCtx, dir: Dir, ts: i64, out: &mut Output);
    /// The connection is gone: emit whatever is still pending.
    fn closed(&mut self, ctx: &FlowCtx, ts: i64, out: &mut Output);
    /// Capture time advanced to `now` (for timeouts).
    fn tick(&mut self, ctx: &FlowCtx, now: i64, out: &mut Output);
}
