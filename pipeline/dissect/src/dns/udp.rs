//! DNS over UDP: one message per datagram (reassembled from IP fragments already).

use reef_schema::{Flags, Transport};

use super::pairing::{Link, Transactions, Wire};
use super::wire;
use crate::Output;
use crate::datagram::{Datagram, DatagramDissector, UdpCtx};

/// A DNS flow: one 5-tuple.
pub struct DnsUdp {
    tx: Transactions,
    link: Link,
}

impl DnsUdp {
    pub fn new(ctx: &UdpCtx) -> DnsUdp {
        DnsUdp {
            tx: Transactions::default(),
            link: Link::new(ctx.endpoints, Transport::Udp),
        }
    }
}

impl DatagramDissector for DnsUdp {
    fn datagram(&mut self, _ctx: &UdpCtx, d: Datagram<'_>, out: &mut Output) {
        let Some(msg) = wire::parse(d.payload) else {
            return;
        };
        if msg.header.qdcount > 0 && msg.questions.is_empty() {
            // Not even a question: nothing to pair or show.
            return;
        }
        let mut flags = Flags::empty();
        if msg.malformed || msg.cut || msg.end != d.payload.len() {
            flags |= Flags::MALFORMED;
        }
        let wire = Wire {
            start_ts: d.ts,
            end_ts: d.ts,
            size: d.payload.len() as u64,
            flags,
        };
        self.tx.message(&self.link, d.dir, wire, msg, out);
    }

    fn tick(&mut self, _ctx: &UdpCtx, now: i64, out: &mut Output) {
        self.tx.tick(&self.link, now, out);
    }

    fn closed(&mut self, _ctx: &UdpCtx, now: i64, out: &mut Output) {
        self.tx.close(&self.link, now, out);
    }
}
