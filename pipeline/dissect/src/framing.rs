//! Message boundaries of binary protocols whose messages announce their own length
//! (Kafka, PostgreSQL, MySQL, MongoDB): one [`Framer`] per direction cuts the byte
//! stream into messages and hands each to the protocol's [`Handler`].
//!
//! A message that lies whole inside a segment is handed on without a copy. A longer
//! one keeps its first bytes (up to the framer's keep limit, counted against the
//! shared body budget) and counts the rest. Lost bytes never glue two messages: a
//! gap inside a message flags it, a gap across a boundary loses sync, and the framer
//! then asks the protocol where the next plausible message starts.

use std::collections::VecDeque;

use reef_reassembly::Dir;

use crate::body::{BodyBudget, BodyCollector};
use crate::{Output, Seg};

/// Bytes held for an incomplete message head, or searched for a message start after
/// lost bytes, before older ones are dropped.
pub const MAX_PENDING_BYTES: usize = 64 * 1024;
/// Segment start times remembered per direction (message start times come from them).
const MAX_MARKS: usize = 64;

/// What a message head says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// The message is this many bytes long, head included.
    Len(u64),
    /// More bytes are needed to tell.
    More,
    /// Not a message start: sync is lost.
    Bad,
}

/// Where a search for a message start got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resync {
    /// A message plausibly starts at this offset of the window.
    At(usize),
    /// No message starts in the first this many bytes; the rest needs more bytes to
    /// tell.
    Skip(usize),
}

/// One message, as complete as the capture has it.
#[derive(Debug, Clone, Copy)]
pub struct Msg<'a> {
    /// The message from its first byte: all of it, or its start when it was longer
    /// than the keep limit or bytes of it were lost (`cut`).
    pub bytes: &'a [u8],
    /// Bytes on the wire.
    pub len: u64,
    /// Stream offset of the first byte.
    pub offset: u64,
    pub start_ts: i64,
    pub end_ts: i64,
    /// The acknowledgment carried by the segment with the first byte.
    pub peer_ack: Option<u64>,
    /// Bytes of the message were lost in the capture.
    pub gap: bool,
    /// The stream ended before the message did.
    pub truncated: bool,
    /// `bytes` is a prefix of the message.
    pub cut: bool,
}

impl Msg<'_> {
    pub fn end_offset(&self) -> u64 {
        self.offset + self.len
    }
}

/// A protocol's side of framing.
pub trait Handler {
    /// The length of the message whose first bytes are `head`.
    fn frame(&mut self, dir: Dir, head: &[u8]) -> Frame;
    /// After lost bytes: where the next message plausibly starts in `window`.
    fn resync(&mut self, dir: Dir, window: &[u8]) -> Resync;
    fn message(&mut self, dir: Dir, msg: Msg<'_>, out: &mut Output);
    /// Message boundaries in `dir` were lost (a gap, or bytes that are no message);
    /// `ts` is when the direction last carried data before the loss.
    fn lost(&mut self, dir: Dir, ts: i64, out: &mut Output);
}

/// Scans `window` for a message start: `check` says, for the bytes from an offset,
/// whether a message starts there (`Some(true)`), not (`Some(false)`) or more bytes
/// are needed (`None`).
pub fn scan(window: &[u8], mut check: impl FnMut(&[u8]) -> Option<bool>) -> Resync {
    for i in 0..window.len() {
        match check(&window[i..]) {
            Some(true) => return Resync::At(i),
            Some(false) => {}
            None => return Resync::Skip(i),
        }
    }
    Resync::Skip(window.len())
}

#[derive(Debug)]
struct Body {
    total: u64,
    have: u64,
    offset: u64,
    start_ts: i64,
    peer_ack: Option<u64>,
    kept: BodyCollector,
    gap: bool,
}

#[derive(Debug)]
enum State {
    /// No byte seen yet: whether the first one starts a message is known then.
    Unstarted,
    Head,
    Body(Body),
    Resync,
}

/// One direction's message boundaries.
#[derive(Debug)]
pub struct Framer {
    dir: Dir,
    state: State,
    /// Bytes of an incomplete head (or of a search for one), from stream offset
    /// `pend_offset`.
    pend: Vec<u8>,
    pend_offset: u64,
    /// Stream offsets where segments started, with their time and acknowledgment.
    marks: VecDeque<(u64, i64, Option<u64>)>,
    /// Bytes of a long message kept for the handler.
    keep: usize,
    budget: BodyBudget,
    last_ts: i64,
    /// Bytes skipped looking for a message start.
    pub skipped: u64,
    /// Times sync was lost.
    pub losses: u64,
}

impl Framer {
    /// A framer for `dir` keeping up to `keep` bytes of a message longer than a
    /// segment.
    pub fn new(dir: Dir, keep: usize, budget: BodyBudget) -> Framer {
        Framer {
            dir,
            state: State::Unstarted,
            pend: Vec::new(),
            pend_offset: 0,
            marks: VecDeque::new(),
            keep,
            budget,
            last_ts: 0,
            skipped: 0,
            losses: 0,
        }
    }

    /// True between messages (nothing of a message read yet).
    pub fn idle(&self) -> bool {
        matches!(self.state, State::Head | State::Unstarted) && self.pend.is_empty()
    }

    /// True while looking for a message start after lost bytes.
    pub fn lost_sync(&self) -> bool {
        matches!(self.state, State::Resync)
    }

    /// Declares the boundaries lost from here on (the protocol changed its mind about
    /// the bytes).
    pub fn lose_sync(&mut self) {
        self.pend.clear();
        self.state = State::Resync;
    }

    fn mark(&mut self, offset: u64, ts: i64, ack: Option<u64>) {
        if let Some(last) = self.marks.back_mut()
            && last.0 == offset
        {
            *last = (offset, ts, ack);
            return;
        }
        if self.marks.len() >= MAX_MARKS {
            // The oldest says when what is held started; drop the one after it.
            self.marks.remove(1);
        }
        self.marks.push_back((offset, ts, ack));
    }

    fn at(&self, offset: u64) -> (i64, Option<u64>) {
        self.marks
            .iter()
            .rev()
            .find(|m| m.0 <= offset)
            .or(self.marks.front())
            .map_or((self.last_ts, None), |m| (m.1, m.2))
    }

    /// Forgets marks before `offset`, keeping the one that covers it.
    fn prune(&mut self, offset: u64) {
        while self.marks.len() > 1 && self.marks[1].0 <= offset {
            self.marks.pop_front();
        }
    }

    /// The bytes of a segment. `midstream`: the direction started somewhere inside
    /// the conversation (its first byte need not start a message); read at the first
    /// segment only.
    pub fn push(&mut self, seg: Seg<'_>, midstream: bool, h: &mut impl Handler, out: &mut Output) {
        if let State::Unstarted = self.state {
            self.state = if midstream {
                State::Resync
            } else {
                State::Head
            };
        }
        self.mark(seg.offset, seg.ts, seg.peer_ack);
        self.last_ts = seg.ts;
        let mut data = seg.data;
        let mut off = seg.offset;
        while !data.is_empty() {
            if let State::Body(b) = &mut self.state {
                let n = (b.total - b.have).min(data.len() as u64) as usize;
                if !b.gap {
                    b.kept.push(&data[..n], self.keep);
                }
                b.have += n as u64;
                data = &data[n..];
                off += n as u64;
                if b.have == b.total {
                    self.finish_body(seg.ts, false, h, out);
                }
                continue;
            }
            if self.pend.is_empty() {
                let used = self.scan_from(data, off, seg.ts, h, out);
                if used < data.len() && !matches!(self.state, State::Body(_)) {
                    self.pend_offset = off + used as u64;
                    let rest = &data[used..];
                    let start = rest.len().saturating_sub(MAX_PENDING_BYTES);
                    self.skipped += start as u64;
                    self.pend_offset += start as u64;
                    self.pend.extend_from_slice(&rest[start..]);
                    break;
                }
                data = &data[used..];
                off += used as u64;
            } else {
                let room = MAX_PENDING_BYTES.saturating_sub(self.pend.len()).max(1);
                let take = room.min(data.len());
                self.pend.extend_from_slice(&data[..take]);
                data = &data[take..];
                off += take as u64;
                let pend = std::mem::take(&mut self.pend);
                let used = self.scan_from(&pend, self.pend_offset, seg.ts, h, out);
                if matches!(self.state, State::Body(_)) {
                    // The message being read took all of what was held.
                    continue;
                }
                self.pend = pend;
                self.pend.drain(..used);
                self.pend_offset += used as u64;
                if self.pend.len() >= MAX_PENDING_BYTES {
                    // Nothing decided in a full window: give up its older half.
                    let drop = self.pend.len() / 2;
                    self.pend.drain(..drop);
                    self.pend_offset += drop as u64;
                    self.skipped += drop as u64;
                    if matches!(self.state, State::Head) {
                        self.state = State::Resync;
                        self.losses += 1;
                        h.lost(self.dir, seg.ts, out);
                    }
                }
            }
        }
        let keep_from = match &self.state {
            State::Body(b) => b.offset,
            _ if !self.pend.is_empty() => self.pend_offset,
            _ => off,
        };
        self.prune(keep_from);
    }

    /// Reads messages from `src` (at stream offset `off`); returns the bytes used. A
    /// message longer than `src` becomes the message being read (all of `src` used).
    fn scan_from(
        &mut self,
        src: &[u8],
        off: u64,
        ts: i64,
        h: &mut impl Handler,
        out: &mut Output,
    ) -> usize {
        let mut p = 0;
        while p < src.len() {
            match self.state {
                State::Body(_) | State::Unstarted => return p,
                State::Resync => match h.resync(self.dir, &src[p..]) {
                    Resync::At(i) => {
                        self.skipped += i as u64;
                        p += i;
                        self.state = State::Head;
                    }
                    Resync::Skip(n) => {
                        let n = n.min(src.len() - p);
                        self.skipped += n as u64;
                        return p + n;
                    }
                },
                State::Head => match h.frame(self.dir, &src[p..]) {
                    Frame::Len(0) => {
                        // A handler bug must not loop forever.
                        self.state = State::Resync;
                    }
                    Frame::Len(n) => {
                        let at = off + p as u64;
                        let (start_ts, peer_ack) = self.at(at);
                        if n <= (src.len() - p) as u64 {
                            let n = n as usize;
                            let msg = Msg {
                                bytes: &src[p..p + n],
                                len: n as u64,
                                offset: at,
                                start_ts,
                                end_ts: ts,
                                peer_ack,
                                gap: false,
                                truncated: false,
                                cut: false,
                            };
                            p += n;
                            h.message(self.dir, msg, out);
                        } else {
                            let mut kept = BodyCollector::with_budget(self.budget.clone());
                            kept.push(&src[p..], self.keep);
                            self.state = State::Body(Body {
                                total: n,
                                have: (src.len() - p) as u64,
                                offset: at,
                                start_ts,
                                peer_ack,
                                kept,
                                gap: false,
                            });
                            return src.len();
                        }
                    }
                    Frame::More => return p,
                    Frame::Bad => {
                        // Past this byte at least, or the search finds it again.
                        self.skipped += 1;
                        p += 1;
                        self.state = State::Resync;
                        self.losses += 1;
                        h.lost(self.dir, ts, out);
                    }
                },
            }
        }
        p
    }

    fn finish_body(
        &mut self,
        end_ts: i64,
        truncated: bool,
        h: &mut impl Handler,
        out: &mut Output,
    ) {
        let State::Body(mut b) = std::mem::replace(&mut self.state, State::Head) else {
            return;
        };
        let kept = b.kept.take_kept();
        let msg = Msg {
            cut: (kept.len() as u64) < b.total,
            bytes: &kept,
            len: b.total,
            offset: b.offset,
            start_ts: b.start_ts,
            end_ts,
            peer_ack: b.peer_ack,
            gap: b.gap,
            truncated,
        };
        h.message(self.dir, msg, out);
    }

    /// `len` bytes of the direction never reached the capture.
    pub fn gap(&mut self, len: u64, ts: i64, h: &mut impl Handler, out: &mut Output) {
        if len == 0 {
            return;
        }
        let before = self.last_ts;
        match &mut self.state {
            State::Body(b) => {
                let rest = b.total - b.have;
                b.gap = true;
                b.kept.gap(len.min(rest));
                if len < rest {
                    b.have += len;
                    return;
                }
                b.have = b.total;
                self.finish_body(before, false, h, out);
                if len > rest {
                    self.state = State::Resync;
                    self.losses += 1;
                    h.lost(self.dir, before, out);
                }
            }
            State::Head => {
                self.pend.clear();
                self.state = State::Resync;
                self.losses += 1;
                h.lost(self.dir, before, out);
            }
            State::Unstarted => {
                self.state = State::Resync;
                self.losses += 1;
                h.lost(self.dir, before, out);
            }
            State::Resync => self.pend.clear(),
        }
        self.last_ts = self.last_ts.max(ts);
    }

    /// The direction carries no more bytes: a message still being read ends here.
    pub fn end(&mut self, ts: i64, h: &mut impl Handler, out: &mut Output) {
        if let State::Body(b) = &self.state {
            let end = self.last_ts.max(b.start_ts);
            let _ = ts;
            self.finish_body(end, true, h, out);
        }
        self.pend.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    /// A toy protocol: one length byte (the whole message's length, 2 to 16), then
    /// payload.
    /// What the toy handler saw of a message: bytes, length, gap, truncated, cut,
    /// start and end time.
    type Seen = (Vec<u8>, u64, bool, bool, bool, i64, i64);

    #[derive(Default)]
    struct Toy {
        got: Vec<Seen>,
        lost: u32,
    }

    impl Handler for Toy {
        fn frame(&mut self, _: Dir, head: &[u8]) -> Frame {
            match head.first() {
                None => Frame::More,
                Some(&n) if (2..=16).contains(&n) => Frame::Len(u64::from(n)),
                Some(_) => Frame::Bad,
            }
        }
        fn resync(&mut self, _: Dir, window: &[u8]) -> Resync {
            scan(window, |b| Some((2..=16).contains(&b[0])))
        }
        fn message(&mut self, _: Dir, m: Msg<'_>, _: &mut Output) {
            self.got.push((
                m.bytes.to_vec(),
                m.len,
                m.gap,
                m.truncated,
                m.cut,
                m.start_ts,
                m.end_ts,
            ));
        }
        fn lost(&mut self, _: Dir, _: i64, _: &mut Output) {
            self.lost += 1;
        }
    }

    fn seg(offset: u64, data: &[u8], ts: i64) -> Seg<'_> {
        Seg {
            dir: Dir::Forward,
            offset,
            data,
            ts,
            peer_ack: None,
        }
    }

    fn framer(midstream: bool, keep: usize) -> (Framer, Output) {
        let out = Output::new(Limits::default(), "t");
        let mut f = Framer::new(Dir::Forward, keep, out.body_budget.clone());
        if midstream {
            f.state = State::Resync;
        }
        (f, out)
    }

    #[test]
    fn whole_split_and_long_messages() {
        let (mut f, mut out) = framer(false, 3);
        let mut h = Toy::default();
        f.push(seg(0, &[2, 9, 3, 1], 1), false, &mut h, &mut out);
        f.push(seg(4, &[1, 5, 7], 2), false, &mut h, &mut out);
        f.push(seg(7, &[7, 7, 7], 3), false, &mut h, &mut out);
        assert_eq!(h.got[0].0, vec![2, 9]);
        assert_eq!(h.got[1].0, vec![3, 1, 1]);
        assert_eq!((h.got[1].5, h.got[1].6), (1, 2));
        // The 5-byte message kept 3 bytes.
        assert_eq!(h.got[2].0, vec![5, 7, 7]);
        assert_eq!(h.got[2].1, 5);
        assert!(h.got[2].4);
        assert_eq!(h.got.len(), 3);
        assert!(f.idle() || !f.pend.is_empty());
    }

    #[test]
    fn gap_inside_a_message_flags_it_and_keeps_sync() {
        let (mut f, mut out) = framer(false, 64);
        let mut h = Toy::default();
        f.push(seg(0, &[6, 1], 1), false, &mut h, &mut out);
        f.gap(2, 2, &mut h, &mut out);
        f.push(seg(4, &[1, 1, 2, 0], 3), false, &mut h, &mut out);
        assert_eq!(h.got.len(), 2);
        assert!(h.got[0].2);
        assert_eq!(h.got[0].0, vec![6, 1]);
        assert_eq!(h.got[1].0, vec![2, 0]);
        assert_eq!(h.lost, 0);
    }

    #[test]
    fn gap_across_a_boundary_resyncs_on_a_plausible_start() {
        let (mut f, mut out) = framer(false, 64);
        let mut h = Toy::default();
        f.push(seg(0, &[4, 1], 1), false, &mut h, &mut out);
        f.gap(5, 2, &mut h, &mut out);
        assert_eq!(h.got.len(), 1);
        assert!(h.got[0].2);
        assert_eq!(h.lost, 1);
        f.push(seg(7, &[0x30, 0x31, 3, 7], 3), false, &mut h, &mut out);
        assert_eq!(h.got.len(), 1);
        f.push(seg(11, &[7], 4), false, &mut h, &mut out);
        assert_eq!(h.got.len(), 2);
        assert_eq!(h.got[1].0, vec![3, 7, 7]);
        assert_eq!((h.got[1].5, h.got[1].6), (3, 4));
        assert_eq!(f.skipped, 2);
    }

    #[test]
    fn end_truncates_the_message_being_read() {
        let (mut f, mut out) = framer(false, 64);
        let mut h = Toy::default();
        f.push(seg(0, &[9, 1, 2], 1), false, &mut h, &mut out);
        f.end(5, &mut h, &mut out);
        assert_eq!(h.got.len(), 1);
        assert!(h.got[0].3);
        assert_eq!(h.got[0].1, 9);
    }

    #[test]
    fn bad_heads_never_loop_and_pending_stays_bounded() {
        let (mut f, mut out) = framer(true, 64);
        let mut h = Toy::default();
        let junk = vec![0u8; 3 * MAX_PENDING_BYTES];
        f.push(seg(0, &junk, 1), false, &mut h, &mut out);
        assert!(f.pend.len() <= MAX_PENDING_BYTES);
        assert!(h.got.is_empty());
        f.push(
            seg(junk.len() as u64, &[0x40, 2], 2),
            false,
            &mut h,
            &mut out,
        );
        assert_eq!(h.got.len(), 0);
        f.push(seg(junk.len() as u64 + 2, &[0], 3), false, &mut h, &mut out);
        assert_eq!(h.got, vec![(vec![2, 0], 2, false, false, false, 2, 3)]);
    }
}

/// A connection driven at the stream level for the dissectors' tests: detection
/// included, each segment acknowledging what the peer sent.
#[cfg(test)]
pub(crate) mod sim {
    use reef_reassembly::{Dir, Endpoint, FlowCtx, StreamEvent};
    use reef_schema::Entry;

    use crate::{Conn, Limits, Output};

    pub const C: Dir = Dir::Forward;
    pub const S: Dir = Dir::Reverse;

    pub struct Sim {
        pub conn: Conn,
        pub ctx: FlowCtx,
        pub out: Output,
        pub off: [u64; 2],
        pub ts: i64,
    }

    impl Sim {
        pub fn new(port: u16) -> Sim {
            Sim::with(port, [false, false], Limits::default())
        }

        pub fn midstream(port: u16) -> Sim {
            Sim::with(port, [true, true], Limits::default())
        }

        pub fn with(port: u16, midstream: [bool; 2], limits: Limits) -> Sim {
            Sim {
                conn: Conn::default(),
                ctx: FlowCtx {
                    id: 1,
                    endpoints: [
                        Endpoint {
                            ip: "10.0.0.1".parse().unwrap(),
                            port: 40000,
                        },
                        Endpoint {
                            ip: "10.0.0.2".parse().unwrap(),
                            port,
                        },
                    ],
                    opener_known: !midstream[0],
                    midstream,
                },
                out: Output::new(limits, "t"),
                off: [0, 0],
                ts: 1_000_000_000,
            }
        }

        pub fn send(&mut self, dir: Dir, data: &[u8]) -> &mut Self {
            let ack = Some(self.off[1 - dir.index()]);
            self.send_acking(dir, data, ack)
        }

        pub fn send_acking(&mut self, dir: Dir, data: &[u8], ack: Option<u64>) -> &mut Self {
            self.ts += 1_000_000;
            let i = dir.index();
            let ev = StreamEvent::Data {
                dir,
                offset: self.off[i],
                data,
                ts: self.ts,
                peer_ack: ack,
            };
            self.off[i] += data.len() as u64;
            self.conn.on_event(&self.ctx, ev, &mut self.out);
            self
        }

        /// Sends `data` cut into segments of `n` bytes.
        pub fn send_in(&mut self, dir: Dir, data: &[u8], n: usize) -> &mut Self {
            for c in data.chunks(n.max(1)) {
                self.send(dir, c);
            }
            self
        }

        pub fn lose(&mut self, dir: Dir, len: u64) -> &mut Self {
            self.ts += 1_000_000;
            let i = dir.index();
            let ev = StreamEvent::Gap {
                dir,
                offset: self.off[i],
                len,
                ts: self.ts,
            };
            self.off[i] += len;
            self.conn.on_event(&self.ctx, ev, &mut self.out);
            self
        }

        pub fn tick(&mut self, now: i64) -> Vec<Entry> {
            self.conn.tick(&self.ctx, now, &mut self.out);
            self.out.entries.drain().collect()
        }

        pub fn entries(&mut self) -> Vec<Entry> {
            self.out.entries.drain().collect()
        }

        pub fn close(&mut self) -> Vec<Entry> {
            self.ts += 1_000_000;
            for dir in [C, S] {
                let ev = StreamEvent::End {
                    dir,
                    reason: reef_reassembly::EndReason::Fin,
                    ts: self.ts,
                };
                self.conn.on_event(&self.ctx, ev, &mut self.out);
            }
            let stats = reef_reassembly::FlowStats::default();
            let ev = StreamEvent::Closed {
                stats: &stats,
                ts: self.ts,
            };
            self.conn.on_event(&self.ctx, ev, &mut self.out);
            self.out.entries.drain().collect()
        }

        pub fn protocol(&self) -> Option<&'static str> {
            self.conn.protocol()
        }
    }

    /// Every entry is consistent with itself.
    pub fn check(entries: &[Entry]) {
        use reef_schema::Flags;
        for e in entries {
            assert_eq!(e.incomplete, e.flags.intersects(Flags::INCOMPLETE), "{e:?}");
            assert!(
                !(e.flags.contains(Flags::NO_RESPONSE) && e.response_size.is_some()),
                "{e:?}"
            );
            assert!(
                !(e.flags.contains(Flags::NO_REQUEST) && e.request_size.is_some()),
                "{e:?}"
            );
            assert!(e.elapsed_time.is_none_or(|t| t >= 0));
            assert!(e.summary.is_some());
        }
    }
}
