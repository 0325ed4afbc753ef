//! UDP: datagrams grouped into flows by their addresses and ports, each flow read by
//! the protocol its first datagrams show, within a bounded flow table.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use reef_reassembly::{Dir, Endpoint};
use rustc_hash::FxHasher;

use crate::registry::{self, UdpProtocol};
use crate::{Output, Probe};

/// UDP flows tracked at once; datagrams of further new flows are counted and dropped.
pub const MAX_UDP_FLOWS: usize = 65_536;
/// A UDP flow with no datagram for this long (capture time) is closed.
pub const UDP_IDLE_TIMEOUT_NS: i64 = 60_000_000_000;
/// Datagrams of a flow examined before deciding it is not a protocol Reef reads.
pub const MAX_UDP_DETECT_DATAGRAMS: u32 = 4;

/// One UDP datagram of a flow.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    pub dir: Dir,
    pub payload: &'a [u8],
    pub ts: i64,
}

/// What a UDP dissector sees of its flow.
#[derive(Debug, Clone)]
pub struct UdpCtx {
    pub id: u64,
    /// `endpoints[d]` sends direction `d`; `Forward` is the first sender.
    pub endpoints: [Endpoint; 2],
}

/// A protocol dissector for one UDP flow.
pub trait DatagramDissector {
    fn datagram(&mut self, ctx: &UdpCtx, d: Datagram<'_>, out: &mut Output);
    /// Capture time advanced to `now` (for timeouts).
    fn tick(&mut self, ctx: &UdpCtx, now: i64, out: &mut Output);
    /// The flow is gone: emit whatever is still pending.
    fn closed(&mut self, ctx: &UdpCtx, now: i64, out: &mut Output);
}

enum App {
    Detecting { seen: u32 },
    Dissecting(Box<dyn DatagramDissector>),
    Ignored,
}

struct Flow {
    ctx: UdpCtx,
    last_ts: i64,
    app: App,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    lo: Endpoint,
    hi: Endpoint,
}

impl Key {
    fn new(a: Endpoint, b: Endpoint) -> Key {
        if (a.ip, a.port) <= (b.ip, b.port) {
            Key { lo: a, hi: b }
        } else {
            Key { lo: b, hi: a }
        }
    }
}

/// All UDP flows of one engine.
#[derive(Default)]
pub struct UdpFlows {
    flows: HashMap<Key, Flow, BuildHasherDefault<FxHasher>>,
    next_id: u64,
}

impl UdpFlows {
    pub fn new() -> UdpFlows {
        UdpFlows::default()
    }

    pub fn live_flows(&self) -> usize {
        self.flows.len()
    }

    /// One datagram from `src` to `dst`.
    pub fn datagram(
        &mut self,
        ts: i64,
        src: Endpoint,
        dst: Endpoint,
        payload: &[u8],
        out: &mut Output,
    ) {
        if registry::UDP.is_empty() {
            return;
        }
        let key = Key::new(src, dst);
        if !self.flows.contains_key(&key) {
            if self.flows.len() >= MAX_UDP_FLOWS {
                self.expire(ts, out);
            }
            if self.flows.len() >= MAX_UDP_FLOWS {
                out.stats.udp_flows_dropped += 1;
                return;
            }
            self.next_id += 1;
            let flow = Flow {
                ctx: UdpCtx {
                    id: self.next_id,
                    endpoints: [src, dst],
                },
                last_ts: ts,
                app: App::Detecting { seen: 0 },
            };
            self.flows.insert(key, flow);
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        flow.last_ts = flow.last_ts.max(ts);
        let dir = if src == flow.ctx.endpoints[0] {
            Dir::Forward
        } else {
            Dir::Reverse
        };
        let d = Datagram { dir, payload, ts };
        let seen = match &mut flow.app {
            App::Dissecting(diss) => {
                diss.datagram(&flow.ctx, d, out);
                return;
            }
            App::Ignored => return,
            App::Detecting { seen } => {
                *seen += 1;
                *seen
            }
        };
        match detect(&flow.ctx, dir, payload) {
            Some((p, client)) => {
                *out.stats.udp_flows.entry(p.name).or_default() += 1;
                let mut diss = (p.make)(client, &flow.ctx, out);
                diss.datagram(&flow.ctx, d, out);
                flow.app = App::Dissecting(diss);
            }
            None if seen >= MAX_UDP_DETECT_DATAGRAMS => {
                out.stats.udp_flows_unknown += 1;
                flow.app = App::Ignored;
            }
            None => {}
        }
    }

    /// Runs timeouts and closes flows idle for longer than [`UDP_IDLE_TIMEOUT_NS`].
    pub fn expire(&mut self, now: i64, out: &mut Output) {
        self.flows.retain(|_, f| {
            if let App::Dissecting(d) = &mut f.app {
                if now.saturating_sub(f.last_ts) > UDP_IDLE_TIMEOUT_NS {
                    d.closed(&f.ctx, now, out);
                    return false;
                }
                d.tick(&f.ctx, now, out);
                return true;
            }
            now.saturating_sub(f.last_ts) <= UDP_IDLE_TIMEOUT_NS
        });
    }

    /// End of the capture: every flow is closed.
    pub fn finish(&mut self, out: &mut Output) {
        for (_, mut f) in self.flows.drain() {
            if let App::Dissecting(d) = &mut f.app {
                d.closed(&f.ctx, f.last_ts, out);
            }
        }
    }
}

fn detect(ctx: &UdpCtx, dir: Dir, payload: &[u8]) -> Option<(&'static UdpProtocol, Dir)> {
    registry::UDP
        .iter()
        .find_map(|p| match (p.probe)(ctx, dir, payload) {
            Probe::Client(client) => Some((p, client)),
            Probe::NotYet | Probe::No => None,
        })
}
