//! AMQP 0-9-1 frames in one direction: the protocol header, then frames of a type,
//! a channel, a size, a payload and the frame-end octet. Method and content header
//! payloads are handed on whole (up to a limit); body payloads stream through.
//! Lost bytes, a bad frame end, or a connection joined mid-way send the reader looking
//! for the next plausible frame.

use reef_schema::Flags;

use super::methods;

/// Bytes of a method or content header frame kept (a connection.start with its
/// server properties is a few hundred bytes; headers tables rarely reach kilobytes).
pub const MAX_FRAME_KEPT: usize = 128 * 1024;
/// Largest frame taken for one when looking for frame boundaries (RabbitMQ's default
/// frame-max is 128 KiB; the protocol allows 4 GiB, which no peer negotiates).
pub const MAX_PLAUSIBLE_FRAME: u32 = 16 * 1024 * 1024;
/// Bytes held while looking for a frame boundary.
pub const MAX_RESYNC_BYTES: usize = 16 * 1024;
/// Candidate boundaries tried per attempt.
const MAX_RESYNC_TRIES: usize = 2048;

pub const METHOD: u8 = 1;
pub const HEADER: u8 = 2;
pub const BODY: u8 = 3;
pub const HEARTBEAT: u8 = 8;
pub const FRAME_END: u8 = 0xce;

/// Where a frame was on the wire.
#[derive(Debug, Clone, Copy)]
pub struct At {
    pub start_offset: u64,
    pub end_offset: u64,
    pub start_ts: i64,
    pub end_ts: i64,
    pub peer_ack: Option<u64>,
}

impl At {
    pub fn wire_len(&self) -> u64 {
        self.end_offset - self.start_offset
    }
}

#[derive(Debug)]
pub enum Event<'a> {
    /// `AMQP` and four version bytes.
    ProtocolHeader {
        version: [u8; 4],
        at: At,
    },
    Method {
        channel: u16,
        class: u16,
        method: u16,
        args: &'a [u8],
        at: At,
        flags: Flags,
    },
    Header {
        channel: u16,
        payload: &'a [u8],
        at: At,
        flags: Flags,
    },
    /// Part of a body frame's payload.
    Body {
        channel: u16,
        data: &'a [u8],
    },
    /// A body frame ended.
    BodyEnd {
        channel: u16,
        at: At,
    },
    /// Bytes of a body frame's payload were lost.
    BodyGap {
        channel: u16,
        len: u64,
    },
    Heartbeat,
    /// Bytes were lost (or were not frames) at a frame boundary: frames may be missing.
    Lost,
}

pub trait Sink {
    fn event(&mut self, ev: Event<'_>);
}

#[derive(Debug)]
enum State {
    /// Reading the protocol header or a frame header.
    Head,
    Payload(Box<InFrame>),
    /// The frame-end octet.
    End(Box<InFrame>),
    Resync {
        from: u64,
        held: Vec<u8>,
    },
}

#[derive(Debug)]
struct InFrame {
    ftype: u8,
    channel: u16,
    size: u32,
    got: u32,
    buf: Vec<u8>,
    start_offset: u64,
    start_ts: i64,
    peer_ack: Option<u64>,
    flags: Flags,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct FrameStats {
    pub frames: u64,
    pub bad_frames: u64,
    pub skipped_bytes: u64,
}

pub struct Framer {
    state: State,
    head: Vec<u8>,
    head_at: (u64, i64, Option<u64>),
    pub stats: FrameStats,
}

impl Framer {
    pub fn new(midstream: bool) -> Framer {
        Framer {
            state: if midstream {
                State::Resync {
                    from: 0,
                    held: Vec::new(),
                }
            } else {
                State::Head
            },
            head: Vec::new(),
            head_at: (0, 0, None),
            stats: FrameStats::default(),
        }
    }

    pub fn feed(
        &mut self,
        offset: u64,
        data: &[u8],
        ts: i64,
        peer_ack: Option<u64>,
        sink: &mut dyn Sink,
    ) {
        let mut again = self.feed_once(offset, data, ts, peer_ack, sink);
        // Bytes held while resynchronising are read again from the boundary found.
        while let Some((off, bytes)) = again.take() {
            again = self.feed_once(off, &bytes, ts, peer_ack, sink);
        }
    }

    fn feed_once(
        &mut self,
        offset: u64,
        data: &[u8],
        ts: i64,
        peer_ack: Option<u64>,
        sink: &mut dyn Sink,
    ) -> Option<(u64, Vec<u8>)> {
        let mut pos = 0;
        while pos < data.len() {
            match &mut self.state {
                State::Head => {
                    if self.head.is_empty() {
                        self.head_at = (offset + pos as u64, ts, peer_ack);
                    }
                    let protocol_header = self.head.first() == Some(&b'A')
                        || (self.head.is_empty() && data[pos] == b'A');
                    let want = if protocol_header { 8 } else { 7 };
                    let n = (want - self.head.len()).min(data.len() - pos);
                    self.head.extend_from_slice(&data[pos..pos + n]);
                    pos += n;
                    if self.head.len() < want {
                        continue;
                    }
                    let (start_offset, start_ts, ack) = self.head_at;
                    let head = std::mem::take(&mut self.head);
                    if protocol_header {
                        if &head[..4] != b"AMQP" {
                            self.lose(start_offset, &head, sink);
                            continue;
                        }
                        let at = At {
                            start_offset,
                            end_offset: start_offset + 8,
                            start_ts,
                            end_ts: ts,
                            peer_ack: ack,
                        };
                        let version = [head[4], head[5], head[6], head[7]];
                        sink.event(Event::ProtocolHeader { version, at });
                        continue;
                    }
                    let ftype = head[0];
                    let channel = u16::from_be_bytes([head[1], head[2]]);
                    let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
                    if !matches!(ftype, METHOD | HEADER | BODY | HEARTBEAT) {
                        self.lose(start_offset, &head, sink);
                        continue;
                    }
                    let f = Box::new(InFrame {
                        ftype,
                        channel,
                        size,
                        got: 0,
                        buf: Vec::new(),
                        start_offset,
                        start_ts,
                        peer_ack: ack,
                        flags: Flags::empty(),
                    });
                    self.state = if size == 0 {
                        State::End(f)
                    } else {
                        State::Payload(f)
                    };
                }
                State::Payload(f) => {
                    let n = ((f.size - f.got) as usize).min(data.len() - pos);
                    let chunk = &data[pos..pos + n];
                    pos += n;
                    f.got += n as u32;
                    if f.ftype == BODY {
                        sink.event(Event::Body {
                            channel: f.channel,
                            data: chunk,
                        });
                    } else {
                        let room = MAX_FRAME_KEPT.saturating_sub(f.buf.len());
                        if room < chunk.len() {
                            f.flags |= Flags::HEAD_TOO_LARGE;
                        }
                        f.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    }
                    if f.got == f.size
                        && let State::Payload(f) = std::mem::replace(&mut self.state, State::Head)
                    {
                        self.state = State::End(f);
                    }
                }
                State::End(_) => {
                    let State::End(f) = std::mem::replace(&mut self.state, State::Head) else {
                        continue;
                    };
                    let end = data[pos];
                    pos += 1;
                    if end != FRAME_END {
                        // Not where a frame ends: the framing is lost.
                        self.stats.bad_frames += 1;
                        let start = f.start_offset;
                        self.lose(start, &[], sink);
                        continue;
                    }
                    let at = At {
                        start_offset: f.start_offset,
                        end_offset: offset + pos as u64,
                        start_ts: f.start_ts,
                        end_ts: ts,
                        peer_ack: f.peer_ack,
                    };
                    self.complete(*f, at, sink);
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
                            std::mem::replace(&mut self.state, State::Head)
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

    fn complete(&mut self, f: InFrame, at: At, sink: &mut dyn Sink) {
        self.stats.frames += 1;
        match f.ftype {
            METHOD => {
                let b = &f.buf;
                if b.len() < 4 {
                    self.stats.bad_frames += 1;
                    return sink.event(Event::Lost);
                }
                sink.event(Event::Method {
                    channel: f.channel,
                    class: u16::from_be_bytes([b[0], b[1]]),
                    method: u16::from_be_bytes([b[2], b[3]]),
                    args: &b[4..],
                    at,
                    flags: f.flags,
                });
            }
            HEADER => sink.event(Event::Header {
                channel: f.channel,
                payload: &f.buf,
                at,
                flags: f.flags,
            }),
            BODY => sink.event(Event::BodyEnd {
                channel: f.channel,
                at,
            }),
            _ => sink.event(Event::Heartbeat),
        }
    }

    /// The bytes at `from` are not a frame: look for the next one in what follows.
    fn lose(&mut self, from: u64, head: &[u8], sink: &mut dyn Sink) {
        self.stats.bad_frames += 1;
        self.head.clear();
        let held = head.get(1..).unwrap_or(&[]).to_vec();
        self.stats.skipped_bytes += 1;
        self.state = State::Resync {
            from: from + 1,
            held,
        };
        sink.event(Event::Lost);
    }

    /// `len` bytes were lost.
    pub fn gap(&mut self, len: u64, flag: Flags, sink: &mut dyn Sink) {
        if let State::Payload(f) = &mut self.state {
            let left = u64::from(f.size - f.got);
            if len < left {
                // Inside a frame: its end is still known.
                f.got += len as u32;
                f.flags |= flag;
                if f.ftype == BODY {
                    sink.event(Event::BodyGap {
                        channel: f.channel,
                        len,
                    });
                } else {
                    // What follows the hole in the frame cannot be read.
                    f.buf.truncate(0);
                }
                return;
            }
        }
        self.head.clear();
        self.state = State::Resync {
            from: 0,
            held: Vec::new(),
        };
        sink.event(Event::Lost);
    }

    /// Where a frame starts in what is held, once it can be told.
    fn boundary(&self) -> Option<usize> {
        let State::Resync { held, .. } = &self.state else {
            return None;
        };
        let tries = held.len().min(MAX_RESYNC_TRIES);
        for i in 0..tries {
            match boundary_at(&held[i..]) {
                Boundary::No => continue,
                Boundary::Yes => return Some(i),
                Boundary::Long => return (i == 0).then_some(0),
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
    /// A method frame with a known method whose end is not in the bytes yet.
    Long,
    NeedMore,
}

/// Could a frame start at `b[0]`? `Yes` when a plausible frame ends (with its
/// frame-end octet) where the bytes end or where another plausible frame header
/// starts.
pub fn boundary_at(b: &[u8]) -> Boundary {
    match frame_at(b) {
        Boundary::Yes => {}
        other => return other,
    }
    let size = u32::from_be_bytes([b[3], b[4], b[5], b[6]]) as usize;
    let next = &b[8 + size..];
    if next.is_empty() {
        return Boundary::Yes;
    }
    match frame_at(next) {
        Boundary::No => Boundary::No,
        _ => Boundary::Yes,
    }
}

/// A single frame at `b[0]`: its header is plausible and, when the bytes hold it,
/// it ends with the frame-end octet.
fn frame_at(b: &[u8]) -> Boundary {
    if b.len() < 7 {
        return if b
            .first()
            .is_none_or(|t| matches!(*t, METHOD | HEADER | BODY | HEARTBEAT))
        {
            Boundary::NeedMore
        } else {
            Boundary::No
        };
    }
    let ftype = b[0];
    let channel = u16::from_be_bytes([b[1], b[2]]);
    let size = u32::from_be_bytes([b[3], b[4], b[5], b[6]]);
    let ok = match ftype {
        METHOD => size >= 4,
        HEADER => size >= 14,
        BODY => true,
        HEARTBEAT => size == 0 && channel == 0,
        _ => false,
    };
    if !ok || size > MAX_PLAUSIBLE_FRAME {
        return Boundary::No;
    }
    let payload = &b[7..b.len().min(7 + size as usize)];
    if ftype == METHOD {
        if payload.len() < 4 {
            return Boundary::NeedMore;
        }
        let class = u16::from_be_bytes([payload[0], payload[1]]);
        let method = u16::from_be_bytes([payload[2], payload[3]]);
        if methods::lookup(class, method).is_none() {
            return Boundary::No;
        }
    }
    if ftype == HEADER
        && payload.len() >= 4
        && (payload[2..4] != [0, 0] || payload[0..2] != [0, 60])
    {
        // Only basic has content; its weight is always zero.
        return Boundary::No;
    }
    let end = 7 + size as usize;
    match b.get(end) {
        Some(&FRAME_END) => Boundary::Yes,
        Some(_) => Boundary::No,
        None if ftype == METHOD => Boundary::Long,
        None => Boundary::NeedMore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Rec(Vec<String>);

    impl Sink for Rec {
        fn event(&mut self, ev: Event<'_>) {
            self.0.push(match ev {
                Event::ProtocolHeader { version, .. } => format!("header {version:?}"),
                Event::Method {
                    channel,
                    class,
                    method,
                    at,
                    flags,
                    ..
                } => format!(
                    "method {channel} {class}.{method} {} {flags:?}",
                    at.wire_len()
                ),
                Event::Header { channel, at, .. } => {
                    format!("content-header {channel} {}", at.wire_len())
                }
                Event::Body { channel, data } => format!("body {channel} {}", data.len()),
                Event::BodyEnd { channel, at } => format!("body-end {channel} {}", at.wire_len()),
                Event::BodyGap { channel, len } => format!("body-gap {channel} {len}"),
                Event::Heartbeat => "heartbeat".to_string(),
                Event::Lost => "lost".to_string(),
            });
        }
    }

    fn frame(t: u8, ch: u16, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![t];
        b.extend(ch.to_be_bytes());
        b.extend((payload.len() as u32).to_be_bytes());
        b.extend_from_slice(payload);
        b.push(FRAME_END);
        b
    }

    #[test]
    fn frames_in_any_cut() {
        let mut data = b"AMQP\x00\x00\x09\x01".to_vec();
        data.extend(frame(METHOD, 1, &[0, 60, 0, 40, 0, 0, 0, 0, 0]));
        data.extend(frame(HEARTBEAT, 0, &[]));
        data.extend(frame(BODY, 1, b"hello"));
        for cut in [1, 2, 5, 100] {
            let mut f = Framer::new(false);
            let mut r = Rec::default();
            let mut off = 0;
            for c in data.chunks(cut) {
                f.feed(off, c, 1, None, &mut r);
                off += c.len() as u64;
            }
            let got: Vec<_> =
                r.0.iter()
                    .filter(|e| !e.starts_with("body "))
                    .cloned()
                    .collect();
            assert_eq!(
                got,
                [
                    "header [0, 0, 9, 1]",
                    "method 1 60.40 17 []",
                    "heartbeat",
                    "body-end 1 13"
                ],
                "cut {cut}"
            );
        }
    }

    #[test]
    fn bad_frame_end_resyncs() {
        let mut data = frame(METHOD, 1, &[0, 60, 0, 80, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        let n = data.len();
        data[n - 1] = 0;
        data.extend(frame(METHOD, 1, &[0, 60, 0, 80, 0, 0, 0, 0, 0, 0, 0, 2, 0]));
        let mut f = Framer::new(false);
        let mut r = Rec::default();
        f.feed(0, &data, 1, None, &mut r);
        assert_eq!(r.0, ["lost", "method 1 60.80 21 []"]);
    }

    #[test]
    fn midstream_and_gaps() {
        let mut data = b"tail".to_vec();
        data.extend(frame(METHOD, 1, &[0, 60, 0, 80, 0, 0, 0, 0, 0, 0, 0, 1, 0]));
        data.extend(frame(BODY, 1, &[7; 100]));
        let mut f = Framer::new(true);
        let mut r = Rec::default();
        f.feed(0, &data[..60], 1, None, &mut r);
        f.gap(20, Flags::RESPONSE_GAP, &mut r);
        f.feed(80, &data[80..], 2, None, &mut r);
        assert_eq!(
            r.0,
            [
                "method 1 60.80 21 []",
                "body 1 28",
                "body-gap 1 20",
                "body 1 52",
                "body-end 1 108"
            ]
        );
    }
}
