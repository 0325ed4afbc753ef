//! DNS over TCP (RFC 7766): each message behind a 2-byte length, several per
//! connection and per segment, pipelined and answered in any order.
//!
//! The length prefix keeps framing through loss as long as the loss ends inside the
//! message it hit: that message is flagged and the next one is read where it starts.
//! Loss that swallows a message boundary leaves the framing unknown; reading resumes
//! at the next place where a length is followed by a header and a question that parse.

use reef_reassembly::{Dir, FlowCtx};
use reef_schema::{Flags, Transport};

use super::pairing::{Link, Transactions, Wire};
use super::wire::{self, HEADER_LEN, Looks};
use crate::{Output, Seg, StreamDissector};

/// Bytes of one message kept to be parsed; the rest of a longer message (zone
/// transfers) is counted and skipped, its first records still shown.
pub const MAX_TCP_MESSAGE_KEPT: usize = 16 * 1024;
/// Bytes held while looking for a message start after lost bytes.
pub const MAX_RESYNC_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `buf` holds the start of the next message (maybe nothing yet).
    Aligned,
    /// `buf` holds the kept start of a message of `total` bytes (prefix included);
    /// `remaining` more of its bytes are still to come and are not kept.
    Tail {
        remaining: u64,
        total: usize,
        damaged: bool,
    },
    /// Framing lost: `buf` holds bytes searched for a message start.
    Lost,
}

/// How a message's bytes came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Whole,
    /// Longer than [`MAX_TCP_MESSAGE_KEPT`]: only its start was kept.
    Kept,
    /// Bytes of it were lost.
    Damaged,
    /// The stream ended inside it.
    Cut,
}

struct Half {
    state: State,
    buf: Vec<u8>,
    /// Time of the first byte of the message in `buf`.
    start_ts: i64,
}

impl Half {
    fn new(midstream: bool) -> Half {
        Half {
            state: if midstream {
                State::Lost
            } else {
                State::Aligned
            },
            buf: Vec::new(),
            start_ts: 0,
        }
    }
}

/// What one direction produced: whole (or damaged) messages in order.
struct Sink<'a> {
    dir: Dir,
    tx: &'a mut Transactions,
    link: &'a Link,
    out: &'a mut Output,
}

impl Sink<'_> {
    fn deliver(&mut self, bytes: &[u8], total: usize, start_ts: i64, end_ts: i64, ending: Ending) {
        let Some(msg) = wire::parse(bytes) else {
            return;
        };
        if msg.header.qdcount > 0 && msg.questions.is_empty() && ending == Ending::Whole {
            // Not a message that anything can be said of.
            return;
        }
        let mut flags = Flags::empty();
        match ending {
            Ending::Whole => {
                if msg.malformed || msg.cut || msg.end != bytes.len() {
                    flags |= Flags::MALFORMED;
                }
            }
            Ending::Kept => {
                if msg.malformed {
                    flags |= Flags::MALFORMED;
                }
            }
            Ending::Damaged => {
                flags |= if msg.header.is_response() {
                    Flags::RESPONSE_GAP
                } else {
                    Flags::REQUEST_GAP
                };
            }
            Ending::Cut => flags |= Flags::TRUNCATED,
        }
        let wire = Wire {
            start_ts,
            end_ts,
            size: total as u64,
            flags,
        };
        self.tx.message(self.link, self.dir, wire, msg, self.out);
    }
}

fn prefix_len(b: &[u8]) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([*b.first()?, *b.get(1)?])))
}

impl Half {
    fn data(&mut self, data: &[u8], ts: i64, expect_response: bool, sink: &mut Sink<'_>) {
        let mut d = data;
        loop {
            match self.state {
                State::Tail {
                    remaining,
                    total,
                    damaged,
                } => {
                    let n = remaining.min(d.len() as u64);
                    d = &d[n as usize..];
                    if remaining > n {
                        self.state = State::Tail {
                            remaining: remaining - n,
                            total,
                            damaged,
                        };
                        return;
                    }
                    let ending = if damaged {
                        Ending::Damaged
                    } else {
                        Ending::Kept
                    };
                    sink.deliver(
                        self.buf.get(2..).unwrap_or_default(),
                        total,
                        self.start_ts,
                        ts,
                        ending,
                    );
                    self.buf.clear();
                    self.state = State::Aligned;
                    if d.is_empty() {
                        return;
                    }
                }
                State::Lost => {
                    self.buf.extend_from_slice(d);
                    if !self.resync(expect_response) {
                        return;
                    }
                    self.state = State::Aligned;
                    self.start_ts = ts;
                    self.frame(ts, sink);
                    return;
                }
                State::Aligned => {
                    if self.buf.is_empty() {
                        self.start_ts = ts;
                    }
                    self.buf.extend_from_slice(d);
                    self.frame(ts, sink);
                    return;
                }
            }
        }
    }

    /// Delivers the whole messages at the front of `buf`.
    fn frame(&mut self, ts: i64, sink: &mut Sink<'_>) {
        let mut at = 0;
        while let Some(len) = prefix_len(&self.buf[at..]) {
            let total = 2 + len;
            let have = self.buf.len() - at;
            if have >= total {
                sink.deliver(
                    &self.buf[at + 2..at + total],
                    total,
                    self.start_ts,
                    ts,
                    Ending::Whole,
                );
                at += total;
                // What follows arrived in this segment.
                self.start_ts = ts;
                continue;
            }
            if have > MAX_TCP_MESSAGE_KEPT + 2 {
                self.buf.drain(..at);
                self.buf.truncate(MAX_TCP_MESSAGE_KEPT + 2);
                self.state = State::Tail {
                    remaining: (total - have) as u64,
                    total,
                    damaged: false,
                };
                return;
            }
            break;
        }
        self.buf.drain(..at);
    }

    /// Looks for a message start in `buf`; on success `buf` begins with it.
    fn resync(&mut self, expect_response: bool) -> bool {
        let mut i = 0;
        let found = loop {
            let rest = &self.buf[i..];
            if rest.len() < 2 + HEADER_LEN {
                break false;
            }
            let len = prefix_len(rest).unwrap_or(0);
            let looks = if len < HEADER_LEN {
                Looks::No
            } else {
                wire::looks_like_dns(&rest[2..], len)
            };
            match looks {
                Looks::Dns { response, .. } if response == expect_response => break true,
                Looks::Incomplete => break false,
                _ => i += 1,
            }
        };
        self.buf.drain(..i);
        if !found && self.buf.len() > MAX_RESYNC_BYTES {
            let cut = self.buf.len() - MAX_RESYNC_BYTES;
            self.buf.drain(..cut);
        }
        found
    }

    fn gap(&mut self, len: u64, ts: i64, sink: &mut Sink<'_>) {
        let (remaining, total) = match self.state {
            State::Lost => {
                self.buf.clear();
                return;
            }
            State::Aligned => match prefix_len(&self.buf) {
                Some(l) => ((2 + l).saturating_sub(self.buf.len()) as u64, 2 + l),
                None => {
                    self.buf.clear();
                    self.state = State::Lost;
                    return;
                }
            },
            State::Tail {
                remaining, total, ..
            } => (remaining, total),
        };
        if len < remaining {
            self.buf.truncate(MAX_TCP_MESSAGE_KEPT + 2);
            self.state = State::Tail {
                remaining: remaining - len,
                total,
                damaged: true,
            };
            return;
        }
        sink.deliver(
            self.buf.get(2..).unwrap_or_default(),
            total,
            self.start_ts,
            ts,
            Ending::Damaged,
        );
        self.buf.clear();
        self.state = if len == remaining {
            State::Aligned
        } else {
            State::Lost
        };
    }

    /// The stream ended: a message begun and not finished is cut.
    fn end(&mut self, ts: i64, sink: &mut Sink<'_>) {
        let total = match self.state {
            State::Lost => 0,
            State::Aligned => prefix_len(&self.buf).map_or(0, |l| l + 2),
            State::Tail { total, .. } => total,
        };
        if total > 0 {
            sink.deliver(
                self.buf.get(2..).unwrap_or_default(),
                total,
                self.start_ts,
                ts,
                Ending::Cut,
            );
        }
        self.buf = Vec::new();
        self.state = State::Lost;
    }
}

/// A DNS-over-TCP connection.
pub struct DnsTcp {
    client: Dir,
    halves: [Half; 2],
    tx: Transactions,
    link: Link,
}

impl DnsTcp {
    pub fn new(client: Dir, ctx: &FlowCtx) -> DnsTcp {
        DnsTcp {
            client,
            halves: [Half::new(ctx.midstream[0]), Half::new(ctx.midstream[1])],
            tx: Transactions::default(),
            link: Link::new(ctx.endpoints, Transport::Tcp),
        }
    }
}

impl StreamDissector for DnsTcp {
    fn data(&mut self, _ctx: &FlowCtx, seg: Seg<'_>, out: &mut Output) {
        let DnsTcp {
            client,
            halves,
            tx,
            link,
        } = self;
        let mut sink = Sink {
            dir: seg.dir,
            tx,
            link,
            out,
        };
        halves[seg.dir.index()].data(seg.data, seg.ts, seg.dir != *client, &mut sink);
    }

    fn gap(&mut self, _ctx: &FlowCtx, dir: Dir, len: u64, ts: i64, out: &mut Output) {
        let DnsTcp {
            halves, tx, link, ..
        } = self;
        let mut sink = Sink { dir, tx, link, out };
        halves[dir.index()].gap(len, ts, &mut sink);
    }

    fn end(&mut self, _ctx: &FlowCtx, dir: Dir, ts: i64, out: &mut Output) {
        let DnsTcp {
            halves, tx, link, ..
        } = self;
        let mut sink = Sink { dir, tx, link, out };
        halves[dir.index()].end(ts, &mut sink);
    }

    fn closed(&mut self, _ctx: &FlowCtx, ts: i64, out: &mut Output) {
        for dir in [Dir::Forward, Dir::Reverse] {
            let DnsTcp {
                halves, tx, link, ..
            } = self;
            let mut sink = Sink { dir, tx, link, out };
            halves[dir.index()].end(ts, &mut sink);
        }
        self.tx.close(&self.link, ts, out);
    }

    fn tick(&mut self, _ctx: &FlowCtx, now: i64, out: &mut Output) {
        self.tx.tick(&self.link, now, out);
    }
}
