//! TLS handshakes, without decryption: one entry per ClientHello, paired with the
//! ServerHello that answers it.
//!
//! The record layer is read in both directions until it turns encrypted (a
//! ChangeCipherSpec or an application-data record), or until the ServerHello has
//! settled the handshake; from then on the connection's bytes are passed over
//! without being looked at. Handshake messages may span records and segments; the
//! hellos are kept whole up to [`MAX_HELLO_BYTES`], other handshake messages
//! (certificates…) are counted, not kept. A TLS 1.3 HelloRetryRequest answers the
//! first ClientHello; the second ClientHello is an entry of its own.

pub mod hello;

use reef_reassembly::{Dir, FlowCtx};
use reef_schema::{Entry, Flags, Protocol, Transport};

use self::hello::{ClientHello, ServerHello};
use crate::{Output, Probe, Seg, StreamDissector};

/// Bytes of one ClientHello or ServerHello kept for parsing; a longer hello is read
/// as far as this and flagged `truncated` (post-quantum key shares and padding make
/// ClientHellos of several kilobytes; the protocol allows 16 MiB).
pub const MAX_HELLO_BYTES: usize = 64 * 1024;
/// Longest record accepted (2^14 bytes of plaintext plus 2048 of expansion, RFC 5246
/// §6.2.3); a longer one means the bytes are not a TLS record layer.
pub const MAX_RECORD_LEN: usize = (1 << 14) + 2048;

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;

const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO: u8 = 2;

pub fn make(client: Dir, ctx: &FlowCtx, _out: &Output) -> Box<dyn StreamDissector> {
    Box::new(Tls::new(client, ctx))
}

/// Does `dir` start with a handshake record carrying a ClientHello (then it is the
/// client) or a ServerHello (the client's hello was not captured)?
pub fn probe(_ctx: &FlowCtx, dir: Dir, bytes: &[u8]) -> Probe {
    type Check = (usize, fn(&[u8]) -> bool);
    let checks: [Check; 5] = [
        (0, |b| b[0] == HANDSHAKE),
        (1, |b| b[1] == 3),
        (2, |b| b[2] <= 4),
        (4, |b| {
            let len = usize::from(u16::from_be_bytes([b[3], b[4]]));
            (1..=MAX_RECORD_LEN).contains(&len)
        }),
        (5, |b| matches!(b[5], CLIENT_HELLO | SERVER_HELLO)),
    ];
    for (at, ok) in checks {
        if bytes.len() <= at {
            return Probe::NotYet;
        }
        if !ok(bytes) {
            return Probe::No;
        }
    }
    let client = if bytes[5] == CLIENT_HELLO {
        dir
    } else {
        dir.flip()
    };
    // The hello's own version, after its 3-byte length, when the record holds it.
    let record_len = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
    match bytes.get(9) {
        _ if record_len < 5 => Probe::Client(client),
        None => Probe::NotYet,
        Some(3) => Probe::Client(client),
        Some(_) => Probe::No,
    }
}

/// A hello read whole (or as far as it went).
#[derive(Debug)]
struct Msg {
    typ: u8,
    body: Vec<u8>,
    /// Handshake header and body, as declared.
    size: u64,
    start_ts: i64,
    end_ts: i64,
    flags: Flags,
}

/// The handshake message being read.
#[derive(Debug, Default)]
struct InMsg {
    head: [u8; 4],
    head_len: usize,
    /// Body bytes still to come.
    left: usize,
    typ: u8,
    /// Body kept (hellos only).
    body: Vec<u8>,
    cut: bool,
    start_ts: i64,
}

/// One direction's record layer.
#[derive(Debug, Default)]
struct Half {
    /// Encrypted, lost or settled: bytes are passed over.
    done: bool,
    head: [u8; 5],
    head_len: usize,
    rec_type: u8,
    /// Payload bytes of the current record still to come.
    rec_left: usize,
    msg: InMsg,
    malformed: bool,
}

impl Half {
    /// Reads `data`; completed hellos go to `msgs`.
    fn feed(&mut self, mut data: &[u8], ts: i64, msgs: &mut Vec<Msg>) {
        while !data.is_empty() && !self.done {
            if self.rec_left == 0 {
                let n = (5 - self.head_len).min(data.len());
                self.head[self.head_len..self.head_len + n].copy_from_slice(&data[..n]);
                self.head_len += n;
                data = &data[n..];
                if self.head_len < 5 {
                    return;
                }
                self.head_len = 0;
                let len = usize::from(u16::from_be_bytes([self.head[3], self.head[4]]));
                self.rec_type = self.head[0];
                match self.rec_type {
                    CHANGE_CIPHER_SPEC | APPLICATION_DATA => {
                        // Encrypted from here on.
                        self.done = true;
                        return;
                    }
                    ALERT | HANDSHAKE if self.head[1] == 3 && len <= MAX_RECORD_LEN => {
                        self.rec_left = len;
                    }
                    _ => {
                        self.malformed = true;
                        self.done = true;
                        return;
                    }
                }
                continue;
            }
            let n = self.rec_left.min(data.len());
            if self.rec_type == HANDSHAKE {
                self.handshake(&data[..n], ts, msgs);
            }
            self.rec_left -= n;
            data = &data[n..];
        }
    }

    fn handshake(&mut self, mut data: &[u8], ts: i64, msgs: &mut Vec<Msg>) {
        while !data.is_empty() {
            let m = &mut self.msg;
            if m.head_len < 4 {
                if m.head_len == 0 {
                    m.start_ts = ts;
                }
                let n = (4 - m.head_len).min(data.len());
                m.head[m.head_len..m.head_len + n].copy_from_slice(&data[..n]);
                m.head_len += n;
                data = &data[n..];
                if m.head_len < 4 {
                    return;
                }
                m.typ = m.head[0];
                m.left = usize::from(m.head[1]) << 16
                    | usize::from(m.head[2]) << 8
                    | usize::from(m.head[3]);
                m.body.clear();
                m.cut = false;
            }
            let n = m.left.min(data.len());
            if matches!(m.typ, CLIENT_HELLO | SERVER_HELLO) {
                let room = MAX_HELLO_BYTES.saturating_sub(m.body.len()).min(n);
                m.body.extend_from_slice(&data[..room]);
                m.cut |= room < n;
            }
            m.left -= n;
            data = &data[n..];
            if m.left == 0 {
                if matches!(m.typ, CLIENT_HELLO | SERVER_HELLO) {
                    msgs.push(self.take_msg(ts, Flags::empty()));
                }
                self.msg.head_len = 0;
            }
        }
    }

    /// The hello being read, as far as it went.
    fn take_msg(&mut self, end_ts: i64, extra: Flags) -> Msg {
        let m = std::mem::take(&mut self.msg);
        let size = 4
            + (usize::from(m.head[1]) << 16 | usize::from(m.head[2]) << 8 | usize::from(m.head[3]))
                as u64;
        let mut flags = extra;
        if m.cut {
            flags |= Flags::HEAD_TOO_LARGE;
        }
        if self.malformed {
            flags |= Flags::MALFORMED;
        }
        Msg {
            typ: m.typ,
            body: m.body,
            size,
            start_ts: m.start_ts,
            end_ts,
            flags,
        }
    }

    /// A hello whose end never came (the direction ended or lost bytes).
    fn unfinished(&mut self, ts: i64, why: Flags) -> Option<Msg> {
        let m = &self.msg;
        let partial = m.head_len == 4 && matches!(m.typ, CLIENT_HELLO | SERVER_HELLO);
        let msg = partial.then(|| self.take_msg(ts, why));
        self.done = true;
        msg
    }
}

/// A ClientHello waiting for its ServerHello.
#[derive(Debug)]
struct Pending {
    hello: ClientHello,
    msg: Msg,
}

/// A TLS connection.
pub struct Tls {
    client: Dir,
    halves: [Half; 2],
    pending: Option<Pending>,
    msgs: Vec<Msg>,
    base: Entry,
}

impl Tls {
    pub fn new(client: Dir, ctx: &FlowCtx) -> Tls {
        let c = ctx.endpoints[client.index()];
        let s = ctx.endpoints[client.flip().index()];
        Tls {
            client,
            halves: [Half::default(), Half::default()],
            pending: None,
            msgs: Vec::new(),
            base: Entry {
                protocol: Protocol::Tls,
                transport: Transport::Tcp,
                src_ip: c.ip,
                src_port: Some(c.port),
                dst_ip: s.ip,
                dst_port: Some(s.port),
                ..Entry::default()
            },
        }
    }

    fn handle(&mut self, out: &mut Output) {
        for m in std::mem::take(&mut self.msgs) {
            match m.typ {
                CLIENT_HELLO => {
                    if let Some(p) = self.pending.take() {
                        self.emit(Some(p), None, Flags::NO_RESPONSE, out);
                    }
                    let hello = hello::client_hello(&m.body);
                    self.pending = Some(Pending { hello, msg: m });
                }
                _ => {
                    let sh = hello::server_hello(&m.body);
                    let retry = sh.retry;
                    let p = self.pending.take();
                    let extra = if p.is_none() {
                        Flags::NO_REQUEST
                    } else {
                        Flags::empty()
                    };
                    self.emit(p, Some((sh, m)), extra, out);
                    if !retry {
                        // Settled: what follows is encrypted or of no interest.
                        for h in &mut self.halves {
                            h.done = true;
                        }
                    }
                }
            }
        }
    }

    fn emit(
        &self,
        ch: Option<Pending>,
        sh: Option<(ServerHello, Msg)>,
        extra: Flags,
        out: &mut Output,
    ) {
        let mut e = self.base.clone();
        let mut flags = extra;
        let mut summary = String::new();
        if let Some(Pending { hello: h, msg }) = &ch {
            flags |= msg.flags;
            if h.truncated {
                flags |= Flags::MALFORMED;
            }
            e.timestamp = msg.start_ts;
            e.method = Some("ClientHello".into());
            e.path = h.sni.clone();
            e.tls_sni = h.sni.clone();
            e.tls_alpn = (!h.alpn.is_empty()).then(|| h.alpn.clone());
            e.tls_ja3 = Some(hello::ja3(h));
            e.tls_ja4 = Some(hello::ja4(h));
            e.request_size = Some(msg.size);
            summary.push_str("ClientHello");
            if let Some(sni) = &h.sni {
                summary.push(' ');
                summary.push_str(sni);
            }
            if !h.alpn.is_empty() {
                summary.push_str(&format!(" [{}]", h.alpn.join(", ")));
            }
        } else {
            summary.push_str("(ClientHello not captured)");
        }
        match &sh {
            Some((s, msg)) => {
                flags |= msg.flags;
                if s.truncated {
                    flags |= Flags::MALFORMED;
                }
                if let Some(Pending { msg: c, .. }) = &ch {
                    e.elapsed_time = Some((msg.end_ts - c.start_ts).max(0) / 1000);
                } else {
                    e.timestamp = msg.start_ts;
                    e.method = Some("ServerHello".into());
                }
                e.response_size = Some(msg.size);
                e.tls_cipher = Some(hello::cipher_name(s.cipher_suite));
                if s.retry {
                    summary.push_str(" → HelloRetryRequest");
                } else {
                    let v = hello::version_name(s.version());
                    e.tls_version = Some(v.clone());
                    summary.push_str(&format!(" → ServerHello {v}"));
                }
                summary.push(' ');
                summary.push_str(e.tls_cipher.as_deref().unwrap_or_default());
                if let Some(a) = &s.alpn {
                    summary.push_str(&format!(" [{a}]"));
                }
            }
            None => summary.push_str(" → (no ServerHello)"),
        }
        e.summary = Some(summary);
        e.flags = flags;
        e.incomplete = flags.intersects(Flags::INCOMPLETE);
        out.entries.emit(e);
    }

    /// `dir` will bring no more hello: a hello cut short is read as far as it went.
    fn stop(&mut self, dir: Dir, ts: i64, why: Flags, out: &mut Output) {
        let h = &mut self.halves[dir.index()];
        if h.done {
            return;
        }
        if let Some(m) = h.unfinished(ts, why) {
            self.msgs.push(m);
            self.handle(out);
        }
        if why == Flags::RESPONSE_GAP
            && let Some(p) = self.pending.as_mut()
        {
            p.msg.flags |= Flags::RESPONSE_GAP;
        }
    }
}

impl StreamDissector for Tls {
    fn data(&mut self, _ctx: &FlowCtx, seg: Seg<'_>, out: &mut Output) {
        let h = &mut self.halves[seg.dir.index()];
        if h.done {
            return;
        }
        h.feed(seg.data, seg.ts, &mut self.msgs);
        if !self.msgs.is_empty() {
            self.handle(out);
        }
    }

    fn gap(&mut self, _ctx: &FlowCtx, dir: Dir, _len: u64, ts: i64, out: &mut Output) {
        let why = if dir == self.client {
            Flags::REQUEST_GAP
        } else {
            Flags::RESPONSE_GAP
        };
        self.stop(dir, ts, why, out);
    }

    fn end(&mut self, _ctx: &FlowCtx, dir: Dir, ts: i64, out: &mut Output) {
        self.stop(dir, ts, Flags::TRUNCATED, out);
    }

    fn closed(&mut self, _ctx: &FlowCtx, ts: i64, out: &mut Output) {
        for dir in [self.client, self.client.flip()] {
            self.stop(dir, ts, Flags::TRUNCATED, out);
        }
        if let Some(p) = self.pending.take() {
            self.emit(Some(p), None, Flags::NO_RESPONSE, out);
        }
    }

    fn tick(&mut self, _ctx: &FlowCtx, now: i64, out: &mut Output) {
        let waited = self
            .pending
            .as_ref()
            .is_some_and(|p| now - p.msg.end_ts > out.limits.response_timeout_ns);
        if waited {
            let p = self.pending.take();
            self.emit(p, None, Flags::NO_RESPONSE | Flags::TIMEOUT, out);
        }
    }
}

#[cfg(test)]
mod tests;
