//! One TCP connection's application state: detection, then its protocol's dissector.

use reef_reassembly::{Dir, FlowCtx, StreamEvent};

use crate::registry::{self, Verdict};
use crate::{MAX_DETECT_BYTES, Output, Seg, StreamDissector, socks};

/// Bytes held back while a direction's protocol is not known yet.
struct Held {
    offset: u64,
    ts: i64,
    peer_ack: Option<u64>,
    bytes: Vec<u8>,
}

impl Held {
    fn seg(&self, dir: Dir) -> Seg<'_> {
        Seg {
            dir,
            offset: self.offset,
            data: &self.bytes,
            ts: self.ts,
            peer_ack: self.peer_ack,
        }
    }
}

#[derive(Default)]
enum State {
    #[default]
    Detecting,
    Dissecting(Box<dyn StreamDissector>),
    /// A SOCKS proxy handshake; the tunnelled protocol is detected after it.
    Socks(Box<socks::Socks>),
    /// Not a protocol Reef reads: bytes are ignored.
    Ignored,
}

/// The application state of one TCP connection (or of a tunnel inside one).
#[derive(Default)]
pub struct Conn {
    state: State,
    /// What detection has seen, per direction.
    held: Option<Box<[Option<Held>; 2]>>,
    /// The bytes of a tunnel inside another connection, not a connection of its own.
    tunnel: bool,
    /// The protocol detection found.
    protocol: Option<&'static str>,
}

impl Conn {
    /// Detection for the bytes after a CONNECT or an unknown Upgrade.
    pub fn tunnel() -> Conn {
        Conn {
            tunnel: true,
            ..Conn::default()
        }
    }

    /// The protocol detection found, if any.
    pub fn protocol(&self) -> Option<&'static str> {
        self.protocol
    }

    fn count_unknown(&self, out: &mut Output) {
        if self.tunnel {
            out.stats.tunnels_unknown += 1;
        } else {
            out.stats.connections_unknown += 1;
        }
    }

    /// Handles one reassembly event.
    pub fn on_event(&mut self, ctx: &FlowCtx, ev: StreamEvent<'_>, out: &mut Output) {
        match ev {
            StreamEvent::Data {
                dir,
                offset,
                data,
                ts,
                peer_ack,
            } => self.data(
                ctx,
                Seg {
                    dir,
                    offset,
                    data,
                    ts,
                    peer_ack,
                },
                out,
            ),
            StreamEvent::Gap { dir, len, ts, .. } => {
                StreamDissector::gap(self, ctx, dir, len, ts, out)
            }
            StreamEvent::End { dir, ts, .. } => StreamDissector::end(self, ctx, dir, ts, out),
            StreamEvent::Closed { ts, .. } => StreamDissector::closed(self, ctx, ts, out),
        }
    }

    /// Capture time advanced.
    pub fn tick(&mut self, ctx: &FlowCtx, now: i64, out: &mut Output) {
        StreamDissector::tick(self, ctx, now, out);
    }

    fn detect(&mut self, ctx: &FlowCtx, seg: Seg<'_>, out: &mut Output) {
        let i = seg.dir.index();
        if self.held.is_none()
            && !ctx.midstream[i]
            && seg.offset == 0
            && socks::looks_like_greeting(seg.data)
        {
            let mut s = Box::new(socks::Socks::new(seg.dir, seg.data));
            if let socks::Progress::NotSocks = s.feed(seg.dir, seg.offset, seg.data, seg.ts) {
                self.give_up(out);
            } else {
                self.state = State::Socks(s);
            }
            return;
        }
        let held = self.held.get_or_insert_default();
        let verdict = match &mut held[i] {
            Some(h) => {
                let room = MAX_DETECT_BYTES.saturating_sub(h.bytes.len());
                h.bytes
                    .extend_from_slice(&seg.data[..seg.data.len().min(room)]);
                registry::detect_tcp(ctx, seg.dir, &h.bytes)
            }
            None => registry::detect_tcp(ctx, seg.dir, seg.data),
        };
        match verdict {
            Verdict::Found(protocol, client) => {
                *out.stats.connections.entry(protocol.name).or_default() += 1;
                self.protocol = Some(protocol.name);
                let mut d = (protocol.make)(client, ctx, out);
                // Replay what detection held back, the other direction's first.
                let held = self.held.take().map(|h| *h).unwrap_or_default();
                let o = seg.dir.flip();
                if let Some(h) = &held[o.index()] {
                    d.data(ctx, h.seg(o), out);
                }
                match &held[i] {
                    Some(h) => d.data(ctx, h.seg(seg.dir), out),
                    None => d.data(ctx, seg, out),
                }
                self.state = State::Dissecting(d);
            }
            Verdict::NotYet => {
                let h = held[i].get_or_insert_with(|| Held {
                    offset: seg.offset,
                    ts: seg.ts,
                    peer_ack: seg.peer_ack,
                    bytes: seg.data[..seg.data.len().min(MAX_DETECT_BYTES)].to_vec(),
                });
                if h.bytes.len() >= MAX_DETECT_BYTES {
                    self.give_up(out);
                }
            }
            Verdict::Unknown => self.give_up(out),
        }
    }

    fn give_up(&mut self, out: &mut Output) {
        self.count_unknown(out);
        self.state = State::Ignored;
        self.held = None;
    }
}

/// A connection is itself a dissector: that is how the bytes of a tunnel (CONNECT, an
/// unknown Upgrade) get detected afresh.
impl StreamDissector for Conn {
    fn data(&mut self, ctx: &FlowCtx, seg: Seg<'_>, out: &mut Output) {
        match &mut self.state {
            State::Dissecting(d) => d.data(ctx, seg, out),
            State::Ignored => {}
            State::Detecting => self.detect(ctx, seg, out),
            State::Socks(s) => match s.feed(seg.dir, seg.offset, seg.data, seg.ts) {
                socks::Progress::More => {}
                socks::Progress::NotSocks => self.give_up(out),
                socks::Progress::Open(tunnel) => {
                    out.stats.socks_tunnels += 1;
                    self.state = State::Detecting;
                    // The client's bytes first: detection wants the request side.
                    let c = tunnel.client;
                    for dir in [c, c.flip()] {
                        let (offset, bytes, ts) = &tunnel.rest[dir.index()];
                        if !bytes.is_empty() {
                            let seg = Seg {
                                dir,
                                offset: *offset,
                                data: bytes,
                                ts: *ts,
                                peer_ack: None,
                            };
                            self.data(ctx, seg, out);
                        }
                    }
                }
            },
        }
    }

    fn gap(&mut self, ctx: &FlowCtx, dir: Dir, len: u64, ts: i64, out: &mut Output) {
        match &mut self.state {
            State::Dissecting(d) => d.gap(ctx, dir, len, ts, out),
            State::Ignored => {}
            State::Socks(_) => self.give_up(out),
            State::Detecting => {
                // Bytes before the gap can't start a message that continues after it.
                if let Some(held) = self.held.as_mut() {
                    held[dir.index()] = None;
                }
            }
        }
    }

    fn end(&mut self, ctx: &FlowCtx, dir: Dir, ts: i64, out: &mut Output) {
        if let State::Dissecting(d) = &mut self.state {
            d.end(ctx, dir, ts, out);
        }
    }

    fn closed(&mut self, ctx: &FlowCtx, ts: i64, out: &mut Output) {
        match &mut self.state {
            State::Dissecting(d) => d.closed(ctx, ts, out),
            State::Detecting | State::Socks(_) => self.count_unknown(out),
            State::Ignored => {}
        }
        self.held = None;
    }

    fn tick(&mut self, ctx: &FlowCtx, now: i64, out: &mut Output) {
        if let State::Dissecting(d) = &mut self.state {
            d.tick(ctx, now, out);
        }
    }
}
