//! One direction's bytes cut into HTTP/2 frames: the preface, frame headers, payloads
//! buffered up to a limit (DATA streamed through without buffering), and what lost
//! bytes do to the framing.
//!
//! A loss inside a frame whose length is known keeps the framing: the frame is marked
//! damaged and reading goes on after it. Any other loss, and a capture that starts
//! mid-connection, leaves the framing unknown until a chain of plausible frames is
//! found again.

use super::frame::{self, CONTINUATION, DATA, FrameHeader, HEADER_LEN, PADDED, PREFACE};

/// Largest non-DATA frame kept whole; larger ones are skipped (and reported).
pub const MAX_BUFFERED_FRAME: usize = 256 * 1024;

#[derive(Debug)]
pub enum Event<'a> {
    /// A whole frame other than DATA.
    Frame {
        h: FrameHeader,
        payload: &'a [u8],
        start_ts: i64,
    },
    /// A piece of a DATA frame's data (padding removed).
    Data { h: FrameHeader, bytes: &'a [u8] },
    /// The end of a DATA frame.
    DataEnd { h: FrameHeader, start_ts: i64 },
    /// `len` bytes of a DATA frame's data were not captured; the framing holds.
    DataLost { h: FrameHeader, len: u64 },
    /// A frame other than DATA lost bytes (`too_large`: was larger than
    /// [`MAX_BUFFERED_FRAME`]): it was passed over, the framing holds.
    FrameLost {
        h: FrameHeader,
        start_ts: i64,
        too_large: bool,
    },
    /// The framing is lost (or, at the start, unknown): what follows is searched for a
    /// frame boundary.
    Desync,
    /// Frames are read again after `skipped` bytes that could not be framed.
    Resync { skipped: u64 },
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// The client preface, `buf` holding the part seen.
    Preface,
    /// A frame header, `buf` holding the part seen.
    Header,
    /// A payload being kept in `buf`.
    Payload(FrameHeader),
    /// A padded DATA frame's pad length byte.
    DataPadLen(FrameHeader),
    Data {
        h: FrameHeader,
        data_left: u32,
        pad_left: u32,
    },
    /// Bytes of a frame passed over (too large, unknown, or damaged by a loss).
    Skip {
        h: FrameHeader,
        left: u32,
        too_large: bool,
    },
    /// Looking for a frame boundary in `buf`; offsets before `scan_from` are not one.
    Lost { scan_from: usize, skipped: u64 },
}

pub struct Reader {
    state: State,
    buf: Vec<u8>,
    frame_ts: i64,
    /// Frames longer than this are not taken as a boundary when searching (the
    /// receiver's SETTINGS_MAX_FRAME_SIZE).
    pub max_frame: u32,
    /// Bytes passed over while the framing was unknown.
    pub skipped_bytes: u64,
}

impl Default for Reader {
    fn default() -> Self {
        Reader::new(false, true)
    }
}

impl Reader {
    /// `preface`: this is the client's direction, from its first byte.
    /// `aligned`: the first byte starts a frame (or the preface).
    pub fn new(preface: bool, aligned: bool) -> Reader {
        let state = match (aligned, preface) {
            (false, _) => State::Lost {
                scan_from: 0,
                skipped: 0,
            },
            (true, true) => State::Preface,
            (true, false) => State::Header,
        };
        Reader {
            state,
            buf: Vec::new(),
            frame_ts: 0,
            max_frame: frame::DEFAULT_MAX_FRAME,
            skipped_bytes: 0,
        }
    }

    pub fn is_lost(&self) -> bool {
        matches!(self.state, State::Lost { .. })
    }

    pub fn feed(&mut self, data: &[u8], ts: i64, sink: &mut dyn FnMut(Event<'_>)) {
        let mut rest = self.run(data, ts, sink);
        // After a boundary was found, the bytes held from it on are read as frames.
        while let Some(bytes) = rest {
            rest = self.run(&bytes, ts, sink);
        }
    }

    /// Reads `input`; returns held bytes to read again when the framing was found.
    fn run(
        &mut self,
        mut input: &[u8],
        ts: i64,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Option<Vec<u8>> {
        while !input.is_empty() {
            match self.state {
                State::Preface => {
                    let seen = self.buf.len();
                    let take = (PREFACE.len() - seen).min(input.len());
                    if input[..take] != PREFACE[seen..seen + take] {
                        // Not the preface after all: look for frames instead.
                        self.buf.clear();
                        self.lose(sink);
                        continue;
                    }
                    self.buf.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    if self.buf.len() == PREFACE.len() {
                        self.buf.clear();
                        self.state = State::Header;
                    }
                }
                State::Header => {
                    if self.buf.is_empty() {
                        self.frame_ts = ts;
                    }
                    let h = if self.buf.is_empty() && input.len() >= HEADER_LEN {
                        let h = FrameHeader::parse(input);
                        input = &input[HEADER_LEN..];
                        h
                    } else {
                        let take = (HEADER_LEN - self.buf.len()).min(input.len());
                        self.buf.extend_from_slice(&input[..take]);
                        input = &input[take..];
                        if self.buf.len() < HEADER_LEN {
                            continue;
                        }
                        let h = FrameHeader::parse(&self.buf);
                        self.buf.clear();
                        h
                    };
                    if let Some(h) = h {
                        self.start_frame(h, sink);
                    }
                }
                State::Payload(h) => {
                    let need = h.len as usize - self.buf.len();
                    if self.buf.is_empty() && input.len() >= need {
                        sink(Event::Frame {
                            h,
                            payload: &input[..need],
                            start_ts: self.frame_ts,
                        });
                        input = &input[need..];
                        self.state = State::Header;
                        continue;
                    }
                    let take = need.min(input.len());
                    self.buf.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    if self.buf.len() == h.len as usize {
                        sink(Event::Frame {
                            h,
                            payload: &self.buf,
                            start_ts: self.frame_ts,
                        });
                        self.buf.clear();
                        self.state = State::Header;
                    }
                }
                State::DataPadLen(h) => {
                    let pad = u32::from(input[0]);
                    input = &input[1..];
                    let room = h.len - 1;
                    // A pad length beyond the frame is malformed; the frame's length
                    // still says where the next one starts.
                    let pad = pad.min(room);
                    self.state = State::Data {
                        h,
                        data_left: room - pad,
                        pad_left: pad,
                    };
                    self.finish_data_if_done(sink);
                }
                State::Data {
                    h,
                    data_left,
                    pad_left,
                } => {
                    let take = (data_left as usize).min(input.len());
                    if take > 0 {
                        sink(Event::Data {
                            h,
                            bytes: &input[..take],
                        });
                        input = &input[take..];
                    }
                    let pad = (pad_left as usize).min(input.len());
                    input = &input[pad..];
                    self.state = State::Data {
                        h,
                        data_left: data_left - take as u32,
                        pad_left: pad_left - pad as u32,
                    };
                    self.finish_data_if_done(sink);
                }
                State::Skip { h, left, too_large } => {
                    let take = (left as usize).min(input.len());
                    input = &input[take..];
                    self.skip_to(h, left - take as u32, too_large, sink);
                }
                State::Lost { scan_from, skipped } => {
                    self.buf.extend_from_slice(input);
                    input = &[];
                    match frame::find_frame_start(&self.buf, scan_from, self.max_frame) {
                        Ok(k) => {
                            let skipped = skipped + k as u64;
                            self.skipped_bytes += k as u64;
                            sink(Event::Resync { skipped });
                            self.state = State::Header;
                            let held = self.buf.split_off(k);
                            self.buf.clear();
                            return Some(held);
                        }
                        Err(from) => {
                            // Nothing before `from` starts a frame.
                            self.buf.drain(..from);
                            self.skipped_bytes += from as u64;
                            self.state = State::Lost {
                                scan_from: 0,
                                skipped: skipped + from as u64,
                            };
                        }
                    }
                }
            }
        }
        None
    }

    fn skip_to(
        &mut self,
        h: FrameHeader,
        left: u32,
        too_large: bool,
        sink: &mut dyn FnMut(Event<'_>),
    ) {
        self.state = State::Skip { h, left, too_large };
        if left == 0 {
            if h.kind <= CONTINUATION {
                sink(Event::FrameLost {
                    h,
                    start_ts: self.frame_ts,
                    too_large,
                });
            }
            self.state = State::Header;
        }
    }

    fn finish_data_if_done(&mut self, sink: &mut dyn FnMut(Event<'_>)) {
        if let State::Data {
            h,
            data_left: 0,
            pad_left: 0,
        } = self.state
        {
            sink(Event::DataEnd {
                h,
                start_ts: self.frame_ts,
            });
            self.state = State::Header;
        }
    }

    fn start_frame(&mut self, h: FrameHeader, sink: &mut dyn FnMut(Event<'_>)) {
        if !h.sane() {
            // A real peer does not send this (and would be cut off if it did): the
            // framing is more likely wrong than the peer.
            self.lose(sink);
            return;
        }
        let known = h.kind <= CONTINUATION;
        if h.kind == DATA {
            if h.has(PADDED) {
                if h.len == 0 {
                    self.lose(sink);
                    return;
                }
                self.state = State::DataPadLen(h);
            } else {
                self.state = State::Data {
                    h,
                    data_left: h.len,
                    pad_left: 0,
                };
                self.finish_data_if_done(sink);
            }
        } else if !known || h.len as usize > MAX_BUFFERED_FRAME {
            // Unknown types are skipped (RFC 9113 §4.1); oversized ones reported.
            self.skip_to(h, h.len, known, sink);
        } else if h.len == 0 {
            sink(Event::Frame {
                h,
                payload: &[],
                start_ts: self.frame_ts,
            });
        } else {
            self.state = State::Payload(h);
        }
    }

    fn lose(&mut self, sink: &mut dyn FnMut(Event<'_>)) {
        sink(Event::Desync);
        self.buf.clear();
        self.state = State::Lost {
            scan_from: 0,
            skipped: 0,
        };
    }

    /// `len` bytes of this direction were not captured.
    pub fn gap(&mut self, len: u64, sink: &mut dyn FnMut(Event<'_>)) {
        match self.state {
            State::Lost { .. } => {
                // Bytes before a hole cannot chain with bytes after it.
                self.skipped_bytes += self.buf.len() as u64;
                self.buf.clear();
                self.state = State::Lost {
                    scan_from: 0,
                    skipped: 0,
                };
            }
            State::Preface | State::Header => self.lose(sink),
            State::Payload(h) => {
                let need = (h.len as usize - self.buf.len()) as u64;
                self.buf.clear();
                if len <= need {
                    self.skip_to(h, (need - len) as u32, false, sink);
                } else {
                    self.skip_to(h, 0, false, sink);
                    self.lose(sink);
                }
            }
            State::Skip { h, left, too_large } => {
                if len <= u64::from(left) {
                    self.skip_to(h, left - len as u32, too_large, sink);
                } else {
                    self.lose(sink);
                }
            }
            State::DataPadLen(h) => {
                // The pad length is gone: count the whole rest as lost data.
                let left = u64::from(h.len);
                sink(Event::DataLost {
                    h,
                    len: len.min(left),
                });
                if len <= left {
                    self.state = State::Data {
                        h,
                        data_left: (left - len) as u32,
                        pad_left: 0,
                    };
                    self.finish_data_if_done(sink);
                } else {
                    self.lose(sink);
                }
            }
            State::Data {
                h,
                data_left,
                pad_left,
            } => {
                let total = u64::from(data_left) + u64::from(pad_left);
                let lost_data = len.min(u64::from(data_left));
                if lost_data > 0 {
                    sink(Event::DataLost { h, len: lost_data });
                }
                if len <= total {
                    let pad_lost = (len - lost_data) as u32;
                    self.state = State::Data {
                        h,
                        data_left: data_left - lost_data as u32,
                        pad_left: pad_left - pad_lost,
                    };
                    self.finish_data_if_done(sink);
                } else {
                    self.lose(sink);
                }
            }
        }
    }
}
