//! DNS over UDP and TCP, with mDNS and LLMNR (the same wire format) labelled.
//!
//! `wire` is the pure parser (hand-written: the crates either parse all-or-nothing,
//! which a damaged capture needs otherwise, or pull in heavy trees), `pairing` the
//! state machine pairing queries with responses by 5-tuple and id, `udp` and `tcp`
//! the transports. Detection is by content: a header whose counts the length can hold
//! and a first question that parses. Port numbers are used only to label mDNS and
//! LLMNR and to accept a question-less mDNS announcement.

mod pairing;
mod tcp;
mod udp;
pub mod wire;

#[cfg(test)]
mod tests;

use reef_reassembly::{Dir, FlowCtx};

use self::wire::Looks;
use crate::datagram::{DatagramDissector, UdpCtx};
use crate::{Output, Probe, StreamDissector};

pub use self::pairing::duration as duration_text;
pub use self::pairing::{
    MAX_ANSWERED_REMEMBERED, MAX_ANSWERS_IN_SUMMARY, MAX_PENDING_QUERIES, MAX_RETRANSMISSIONS_KEPT,
    RETRANSMIT_WINDOW_NS,
};
pub use self::tcp::{DnsTcp, MAX_RESYNC_BYTES, MAX_TCP_MESSAGE_KEPT};
pub use self::udp::DnsUdp;

/// What DNS pairing saw that did not become an entry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DnsStats {
    /// Unicast responses whose query is not in the capture (it started late, or saw
    /// one direction only).
    pub responses_without_query: u64,
    /// Second and later responses to a query already answered.
    pub duplicate_responses: u64,
    /// Of those, the ones whose answers differ from the first's (each is an entry too).
    pub duplicate_responses_differing: u64,
}

/// A first TCP message longer than this may be accepted before it is whole, when its
/// header and first question already parse (detection holds at most
/// [`crate::MAX_DETECT_BYTES`]).
pub const TCP_PROBE_PARTIAL_BYTES: usize = 512;

/// Ports of DNS, mDNS and LLMNR: only consulted to accept a message without a question.
const DNS_PORTS: [u16; 3] = [53, 5353, 5355];

fn client_of(dir: Dir, response: bool) -> Probe {
    Probe::Client(if response { dir.flip() } else { dir })
}

pub fn probe_udp(ctx: &UdpCtx, dir: Dir, payload: &[u8]) -> Probe {
    match wire::looks_like_dns(payload, payload.len()) {
        Looks::Dns {
            response,
            questions,
        } => {
            let hinted = ctx.endpoints.iter().any(|e| DNS_PORTS.contains(&e.port));
            if questions == 0 && !hinted {
                return Probe::No;
            }
            client_of(dir, response)
        }
        Looks::Incomplete | Looks::No => Probe::No,
    }
}

pub fn make_udp(_client: Dir, ctx: &UdpCtx, _out: &Output) -> Box<dyn DatagramDissector> {
    Box::new(DnsUdp::new(ctx))
}

pub fn probe_tcp(_ctx: &FlowCtx, dir: Dir, bytes: &[u8]) -> Probe {
    let Some(len) = bytes
        .get(..2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    else {
        return Probe::NotYet;
    };
    if len < wire::HEADER_LEN {
        return Probe::No;
    }
    let body = &bytes[2..];
    let whole = body.len() >= len;
    match wire::looks_like_dns(body, len) {
        Looks::Dns {
            response,
            questions,
        } if questions > 0 && (whole || body.len() >= TCP_PROBE_PARTIAL_BYTES) => {
            client_of(dir, response)
        }
        Looks::Dns { questions, .. } if questions > 0 => Probe::NotYet,
        Looks::Incomplete => Probe::NotYet,
        _ => Probe::No,
    }
}

pub fn make_tcp(client: Dir, ctx: &FlowCtx, _out: &Output) -> Box<dyn StreamDissector> {
    Box::new(DnsTcp::new(client, ctx))
}
