//! One direction of an MQTT connection: cuts the byte stream into control packets,
//! several per segment or one over many, streams PUBLISH payloads instead of
//! buffering them, and finds packet boundaries again after lost bytes or when the
//! capture joined the connection mid-way.

use reef_schema::Flags;

use super::packet::{self, Fixed, Header, Packet};
use crate::body::{BodyBudget, BodyCollector};

/// Bytes of a packet (after its fixed header) kept to read it; a longer packet other
/// than PUBLISH is read from its start and flagged.
pub const MAX_PACKET_BYTES: usize = 256 * 1024;
/// Bytes of a PUBLISH kept before its payload: topic (at most 64 KiB), packet id
/// and properties.
pub const MAX_PUBLISH_HEAD: usize = 80 * 1024;
/// Bytes held while looking for a packet boundary.
pub const MAX_RESYNC_BYTES: usize = 16 * 1024;
/// Candidate boundaries tried per resynchronisation attempt.
const MAX_RESYNC_TRIES: usize = 2048;

/// A packet read from the stream.
#[derive(Debug)]
pub struct Frame {
    pub fixed: Fixed,
    /// `None` when the packet's fields did not parse.
    pub packet: Option<Packet>,
    /// A PUBLISH's payload (kept up to the body limit, counted whole).
    pub payload: Option<BodyCollector>,
    pub start_offset: u64,
    pub end_offset: u64,
    pub start_ts: i64,
    pub end_ts: i64,
    pub peer_ack: Option<u64>,
    pub flags: Flags,
}

impl Frame {
    pub fn wire_len(&self) -> u64 {
        self.end_offset - self.start_offset
    }
}

#[derive(Debug)]
enum State {
    /// Reading a fixed header (at most five bytes).
    Header,
    /// Reading a packet's bytes.
    Packet(Box<InPacket>),
    /// Looking for a packet boundary; `held` starts at stream offset `from`.
    Resync { from: u64, held: Vec<u8> },
}

#[derive(Debug)]
struct InPacket {
    fixed: Fixed,
    /// Bytes after the fixed header read so far.
    got: u64,
    /// The packet's first bytes (all of it unless it is long).
    buf: Vec<u8>,
    cap: usize,
    payload: Option<BodyCollector>,
    /// Where the payload starts in `buf`, once the PUBLISH head was read.
    payload_at: Option<usize>,
    parsed: Option<Packet>,
    start_offset: u64,
    start_ts: i64,
    peer_ack: Option<u64>,
    flags: Flags,
}

pub struct Half {
    state: State,
    head: Vec<u8>,
    head_start: (u64, i64, Option<u64>),
    /// The connection speaks MQTT 5 (properties in most packets).
    pub v5: bool,
    budget: BodyBudget,
    pub stats: HalfStats,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct HalfStats {
    pub packets: u64,
    pub malformed: u64,
    pub skipped_bytes: u64,
}

impl Half {
    pub fn new(midstream: bool, budget: BodyBudget) -> Half {
        Half {
            state: if midstream {
                State::Resync {
                    from: 0,
                    held: Vec::new(),
                }
            } else {
                State::Header
            },
            head: Vec::new(),
            head_start: (0, 0, None),
            v5: false,
            budget,
            stats: HalfStats::default(),
        }
    }

    pub fn feed(
        &mut self,
        offset: u64,
        data: &[u8],
        ts: i64,
        peer_ack: Option<u64>,
        max_body: usize,
        out: &mut Vec<Frame>,
    ) {
        let mut again = self.feed_once(offset, data, ts, peer_ack, max_body, out);
        // Bytes held while resynchronising are read again from the boundary found
        // (a loop, not recursion: each round consumes bytes).
        while let Some((off, bytes)) = again.take() {
            again = self.feed_once(off, &bytes, ts, peer_ack, max_body, out);
        }
    }

    fn feed_once(
        &mut self,
        offset: u64,
        data: &[u8],
        ts: i64,
        peer_ack: Option<u64>,
        max_body: usize,
        out: &mut Vec<Frame>,
    ) -> Option<(u64, Vec<u8>)> {
        let mut pos = 0;
        while pos < data.len() {
            match &mut self.state {
                State::Header => {
                    if self.head.is_empty() {
                        self.head_start = (offset + pos as u64, ts, peer_ack);
                    }
                    self.head.push(data[pos]);
                    pos += 1;
                    match packet::fixed(&self.head) {
                        Header::Short => {}
                        Header::Invalid => {
                            self.stats.malformed += 1;
                            // The next packet may start at any of the bytes after the
                            // first one.
                            let from = self.head_start.0 + 1;
                            let held = self.head.split_off(1);
                            self.head.clear();
                            self.stats.skipped_bytes += 1;
                            self.state = State::Resync { from, held };
                        }
                        Header::Fixed(f) => {
                            self.head.clear();
                            self.begin(f, out);
                        }
                    }
                }
                State::Packet(p) => {
                    let want = p.fixed.remaining - p.got;
                    let n = (want.min((data.len() - pos) as u64)) as usize;
                    let chunk = &data[pos..pos + n];
                    p.add(chunk, self.v5, max_body);
                    pos += n;
                    if p.got == p.fixed.remaining {
                        self.finish(offset + pos as u64, ts, Flags::empty(), out);
                    }
                }
                State::Resync { from, held } => {
                    if held.is_empty() {
                        *from = offset + pos as u64;
                    }
                    let room = MAX_RESYNC_BYTES.saturating_sub(held.len());
                    let n = room.min(data.len() - pos);
                    held.extend_from_slice(&data[pos..pos + n]);
                    pos += n;
                    if let Some(at) = self.boundary() {
                        let State::Resync { from, held } =
                            std::mem::replace(&mut self.state, State::Header)
                        else {
                            return None;
                        };
                        self.stats.skipped_bytes += at as u64;
                        let mut rest = held;
                        rest.drain(..at);
                        rest.extend_from_slice(&data[pos..]);
                        return Some((from + at as u64, rest));
                    }
                    if let State::Resync { held, from } = &mut self.state
                        && held.len() >= MAX_RESYNC_BYTES
                    {
                        // No boundary in a full window: drop its first half.
                        let drop = held.len() / 2;
                        held.drain(..drop);
                        *from += drop as u64;
                        self.stats.skipped_bytes += drop as u64;
                    }
                }
            }
        }
        None
    }

    /// A packet's fixed header was read.
    fn begin(&mut self, f: Fixed, out: &mut Vec<Frame>) {
        let (start_offset, start_ts, peer_ack) = self.head_start;
        let publish = f.ptype == packet::PUBLISH;
        let mut p = Box::new(InPacket {
            fixed: f,
            got: 0,
            buf: Vec::new(),
            cap: if publish {
                MAX_PUBLISH_HEAD
            } else {
                MAX_PACKET_BYTES
            },
            payload: publish.then(|| BodyCollector::with_budget(self.budget.clone())),
            payload_at: None,
            parsed: None,
            start_offset,
            start_ts,
            peer_ack,
            flags: Flags::empty(),
        });
        if f.remaining == 0 {
            p.parsed = packet::parse(&f, &[], self.v5);
            self.state = State::Packet(p);
            let end = start_offset + f.len as u64;
            self.finish(end, start_ts, Flags::empty(), out);
            return;
        }
        self.state = State::Packet(p);
    }

    fn finish(&mut self, end_offset: u64, end_ts: i64, extra: Flags, out: &mut Vec<Frame>) {
        let State::Packet(p) = std::mem::replace(&mut self.state, State::Header) else {
            return;
        };
        let mut p = *p;
        let complete = p.got >= p.fixed.remaining;
        let parsed = match p.parsed.take() {
            Some(x) => Some(x),
            None => packet::parse(&p.fixed, &p.buf, self.v5),
        };
        let mut flags = p.flags | extra;
        let damaged = flags.intersects(Flags::REQUEST_GAP | Flags::RESPONSE_GAP | Flags::TRUNCATED);
        if parsed.is_none() && !damaged {
            flags |= Flags::MALFORMED;
            self.stats.malformed += 1;
        } else if p.buf.len() as u64 > 0
            && (p.buf.len() as u64) < p.fixed.remaining
            && p.payload.is_none()
            && complete
        {
            flags |= Flags::HEAD_TOO_LARGE;
        }
        if let Some(Packet {
            body: packet::Body::Connect { level, .. },
            ..
        }) = &parsed
        {
            self.v5 = level & 0x7f == 5;
        }
        if packet::requires_v5(&p.fixed) {
            self.v5 = true;
        }
        self.stats.packets += 1;
        out.push(Frame {
            fixed: p.fixed,
            packet: parsed,
            payload: p.payload,
            start_offset: p.start_offset,
            end_offset,
            start_ts: p.start_ts,
            end_ts,
            peer_ack: p.peer_ack,
            flags,
        });
    }

    /// `len` bytes were lost.
    pub fn gap(&mut self, len: u64, flag: Flags, out: &mut Vec<Frame>) {
        if let State::Packet(p) = &mut self.state {
            let left = p.fixed.remaining - p.got;
            if len < left && p.payload_at.is_some() {
                // Inside a PUBLISH payload: the packet's end is still known.
                p.got += len;
                p.flags |= flag;
                if let Some(c) = p.payload.as_mut() {
                    c.gap(len);
                }
                return;
            }
            if len < left {
                // Inside a packet being read: it is damaged, but its end is known.
                p.got += len;
                p.flags |= flag;
                p.buf_hole();
                return;
            }
            let end = p.start_offset + (p.fixed.len as u64) + p.fixed.remaining;
            let ts = p.start_ts;
            self.finish(end, ts, flag, out);
            // The lost bytes went past this packet's end.
            self.state = State::Resync {
                from: 0,
                held: Vec::new(),
            };
            return;
        }
        self.head.clear();
        self.state = State::Resync {
            from: 0,
            held: Vec::new(),
        };
    }

    /// The direction ended: a packet still being read is emitted, cut.
    pub fn end(&mut self, out: &mut Vec<Frame>) {
        if let State::Packet(p) = &self.state {
            let end = p.start_offset + p.fixed.len as u64 + p.got;
            let ts = p.start_ts;
            self.finish(end, ts, Flags::TRUNCATED, out);
        }
        self.head.clear();
    }

    /// Where the next packet starts in what is held, if it can be told yet: the first
    /// position that may start a packet decides. It is taken when a plausible packet
    /// ends where the held bytes end or another valid header starts; a long one still
    /// arriving is taken only right at a segment start after the loss, and only
    /// when it could hardly be something else.
    fn boundary(&self) -> Option<usize> {
        let State::Resync { held, .. } = &self.state else {
            return None;
        };
        let tries = held.len().min(MAX_RESYNC_TRIES);
        for i in 0..tries {
            match boundary_at(&held[i..]) {
                Boundary::No => continue,
                Boundary::Yes => return Some(i),
                // Acknowledgments and pings are short: a long one is not one.
                Boundary::Long { strong: false } => continue,
                Boundary::Long { strong: true } => return (i == 0).then_some(0),
                Boundary::NeedMore => return None,
            }
        }
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    No,
    Yes,
    /// A plausible packet whose end is not in the bytes yet.
    Long {
        strong: bool,
    },
    /// Too few bytes to read a fixed header and the fields that tell.
    NeedMore,
}

/// Could a packet start at `b[0]`? `Yes` when a plausible packet ends where the
/// bytes end or where another valid header starts.
pub fn boundary_at(b: &[u8]) -> Boundary {
    let f = match packet::fixed(b) {
        Header::Fixed(f) => f,
        Header::Short => return Boundary::NeedMore,
        Header::Invalid => return Boundary::No,
    };
    let end = f.len as u64 + f.remaining;
    let body = &b[f.len..(b.len() as u64).min(end) as usize];
    let Some(strong) = packet::plausible(&f, body) else {
        return if (b.len() as u64) < end && body.len() < 8 {
            Boundary::NeedMore
        } else {
            Boundary::No
        };
    };
    if (b.len() as u64) < end {
        return Boundary::Long { strong };
    }
    let next = &b[end as usize..];
    if next.is_empty() {
        return Boundary::Yes;
    }
    match packet::fixed(next) {
        Header::Invalid => Boundary::No,
        Header::Short => Boundary::Yes,
        Header::Fixed(n) => {
            let nb = &next[n.len..next.len().min(n.len + n.remaining as usize)];
            let next_end = n.len as u64 + n.remaining;
            if packet::plausible(&n, nb).is_some()
                || ((next.len() as u64) < next_end && nb.len() < 8)
            {
                Boundary::Yes
            } else {
                Boundary::No
            }
        }
    }
}

impl InPacket {
    fn add(&mut self, chunk: &[u8], v5: bool, max_body: usize) {
        self.got += chunk.len() as u64;
        let Some(payload) = self.payload.as_mut() else {
            let room = self.cap.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            return;
        };
        if self.payload_at.is_some() {
            payload.push(chunk, max_body);
            return;
        }
        let room = self.cap.saturating_sub(self.buf.len());
        let take = chunk.len().min(room);
        self.buf.extend_from_slice(&chunk[..take]);
        // Parse the head as soon as it is all there, then stream the payload.
        let whole = self.got == self.fixed.remaining;
        let full = self.buf.len() >= self.cap;
        if let Some(p) = packet::parse(&self.fixed, &self.buf, v5)
            && let packet::Body::Publish { payload_at, .. } = p.body
            && (whole || payload_at <= self.buf.len())
        {
            let at = payload_at.min(self.buf.len());
            payload.push(&self.buf[at..], max_body);
            payload.push(&chunk[take..], max_body);
            self.buf.truncate(at);
            self.payload_at = Some(at);
            self.parsed = Some(p);
        } else if full {
            // The head does not fit: the rest is counted, not read.
            self.flags |= Flags::HEAD_TOO_LARGE;
            self.payload_at = Some(self.buf.len());
            payload.push(&chunk[take..], max_body);
        }
    }

    /// Bytes of the packet's fields were lost: what was read is kept, nothing after.
    fn buf_hole(&mut self) {
        self.cap = self.buf.len();
        if self.payload.is_some() && self.payload_at.is_none() {
            self.payload_at = Some(self.buf.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(midstream: bool, chunks: &[&[u8]]) -> Vec<Frame> {
        let mut h = Half::new(midstream, BodyBudget::new(1 << 20));
        let mut out = Vec::new();
        let mut off = 0;
        for c in chunks {
            h.feed(off, c, 1, None, 1000, &mut out);
            off += c.len() as u64;
        }
        out
    }

    #[test]
    fn several_packets_per_segment_and_one_over_many() {
        let mut data = Vec::new();
        data.extend_from_slice(b"\xc0\x00");
        data.extend_from_slice(b"\x30\x0a\x00\x03a/bhello");
        let big = vec![b'x'; 5000];
        let rl = 5 + big.len();
        data.extend_from_slice(&[0x30, (rl & 0x7f) as u8 | 0x80, (rl >> 7) as u8]);
        data.extend_from_slice(b"\x00\x03c/d");
        data.extend_from_slice(&big);
        data.extend_from_slice(b"\xe0\x00");
        for cut in [1usize, 3, 7, 100, data.len()] {
            let chunks: Vec<&[u8]> = data.chunks(cut).collect();
            let f = frames(false, &chunks);
            assert_eq!(f.len(), 4, "cut {cut}");
            assert_eq!(f[1].payload.as_ref().unwrap().kept(), b"hello");
            let p = f[2].payload.as_ref().unwrap();
            assert_eq!(p.size, 5000);
            assert_eq!(p.kept().len(), 1000);
            assert_eq!(f[2].wire_len(), 3 + rl as u64);
            assert!(f.iter().all(|x| x.flags.is_empty() && x.packet.is_some()));
        }
    }

    #[test]
    fn midstream_finds_the_first_boundary() {
        // The capture starts inside a payload.
        let data = b"tail of a payload\x30\x0a\x00\x03a/bhello\x40\x02\x00\x01";
        let f = frames(true, &[data]);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].fixed.ptype, packet::PUBLISH);
        assert_eq!(f[0].start_offset, 17);
        assert_eq!(f[1].fixed.ptype, packet::PUBACK);
    }

    #[test]
    fn gap_inside_a_payload_keeps_framing() {
        let mut h = Half::new(false, BodyBudget::new(1 << 20));
        let mut out = Vec::new();
        h.feed(0, b"\x30\x14\x00\x03a/bhell", 1, None, 1000, &mut out);
        h.gap(8, Flags::REQUEST_GAP, &mut out);
        h.feed(19, b"xxx\xc0\x00", 2, None, 1000, &mut out);
        assert_eq!(out.len(), 2);
        assert!(out[0].flags.contains(Flags::REQUEST_GAP));
        assert_eq!(out[0].payload.as_ref().unwrap().size, 15);
        assert_eq!(out[1].fixed.ptype, packet::PINGREQ);
    }

    #[test]
    fn gap_across_packets_resyncs() {
        let mut h = Half::new(false, BodyBudget::new(1 << 20));
        let mut out = Vec::new();
        h.feed(0, b"\x30\x0a\x00\x03a/b", 1, None, 1000, &mut out);
        h.gap(30, Flags::REQUEST_GAP, &mut out);
        h.feed(
            37,
            b"ab\x82\x08\x00\x01\x00\x03a/b\x01",
            2,
            None,
            1000,
            &mut out,
        );
        assert_eq!(out.len(), 2);
        assert!(out[0].flags.contains(Flags::REQUEST_GAP));
        assert_eq!(out[1].fixed.ptype, packet::SUBSCRIBE);
        assert_eq!(out[1].start_offset, 39);
    }

    #[test]
    fn invalid_header_resyncs() {
        let f = frames(false, &[b"\x00\x00\x00\xc0\x00\xd0\x00"]);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].fixed.ptype, packet::PINGREQ);
    }
}
