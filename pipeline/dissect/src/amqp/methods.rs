//! AMQP 0-9-1 methods: names, which answer which, and the arguments an entry shows.

/// What a method is to the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A synchronous request: one of `answers` comes back on the channel (unless
    /// its no-wait bit is set).
    Sync { answers: &'static [(u16, u16)] },
    /// The answer to a synchronous request.
    Answer,
    /// The answer to basic.get, followed by the message's content.
    AnswerWithContent,
    /// Asynchronous, followed by a message's content (publish, deliver, return).
    Content,
    /// Asynchronous, nothing follows (ack, nack, reject, blocked...).
    Async,
}

/// Which side sends a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Client,
    Server,
    Either,
}

#[derive(Debug, Clone, Copy)]
pub struct Method {
    pub class: u16,
    pub method: u16,
    pub name: &'static str,
    pub role: Role,
    pub sender: Sender,
}

const fn m(class: u16, method: u16, name: &'static str, role: Role, sender: Sender) -> Method {
    Method {
        class,
        method,
        name,
        role,
        sender,
    }
}

use Role::{Answer, AnswerWithContent, Async, Content, Sync};
use Sender::{Client as C, Either as E, Server as S};

/// Every AMQP 0-9-1 method (and RabbitMQ's extensions), by class and method id.
pub const METHODS: &[Method] = &[
    m(
        10,
        10,
        "connection.start",
        Sync {
            answers: &[(10, 11)],
        },
        S,
    ),
    m(10, 11, "connection.start-ok", Answer, C),
    m(
        10,
        20,
        "connection.secure",
        Sync {
            answers: &[(10, 21)],
        },
        S,
    ),
    m(10, 21, "connection.secure-ok", Answer, C),
    m(
        10,
        30,
        "connection.tune",
        Sync {
            answers: &[(10, 31)],
        },
        S,
    ),
    m(10, 31, "connection.tune-ok", Answer, C),
    m(
        10,
        40,
        "connection.open",
        Sync {
            answers: &[(10, 41)],
        },
        C,
    ),
    m(10, 41, "connection.open-ok", Answer, S),
    m(
        10,
        50,
        "connection.close",
        Sync {
            answers: &[(10, 51)],
        },
        E,
    ),
    m(10, 51, "connection.close-ok", Answer, E),
    m(10, 60, "connection.blocked", Async, S),
    m(10, 61, "connection.unblocked", Async, S),
    m(
        10,
        70,
        "connection.update-secret",
        Sync {
            answers: &[(10, 71)],
        },
        C,
    ),
    m(10, 71, "connection.update-secret-ok", Answer, S),
    m(
        20,
        10,
        "channel.open",
        Sync {
            answers: &[(20, 11)],
        },
        C,
    ),
    m(20, 11, "channel.open-ok", Answer, S),
    m(
        20,
        20,
        "channel.flow",
        Sync {
            answers: &[(20, 21)],
        },
        E,
    ),
    m(20, 21, "channel.flow-ok", Answer, E),
    m(
        20,
        40,
        "channel.close",
        Sync {
            answers: &[(20, 41)],
        },
        E,
    ),
    m(20, 41, "channel.close-ok", Answer, E),
    m(
        30,
        10,
        "access.request",
        Sync {
            answers: &[(30, 11)],
        },
        C,
    ),
    m(30, 11, "access.request-ok", Answer, S),
    m(
        40,
        10,
        "exchange.declare",
        Sync {
            answers: &[(40, 11)],
        },
        C,
    ),
    m(40, 11, "exchange.declare-ok", Answer, S),
    m(
        40,
        20,
        "exchange.delete",
        Sync {
            answers: &[(40, 21)],
        },
        C,
    ),
    m(40, 21, "exchange.delete-ok", Answer, S),
    m(
        40,
        30,
        "exchange.bind",
        Sync {
            answers: &[(40, 31)],
        },
        C,
    ),
    m(40, 31, "exchange.bind-ok", Answer, S),
    m(
        40,
        40,
        "exchange.unbind",
        Sync {
            answers: &[(40, 51)],
        },
        C,
    ),
    m(40, 51, "exchange.unbind-ok", Answer, S),
    m(
        50,
        10,
        "queue.declare",
        Sync {
            answers: &[(50, 11)],
        },
        C,
    ),
    m(50, 11, "queue.declare-ok", Answer, S),
    m(
        50,
        20,
        "queue.bind",
        Sync {
            answers: &[(50, 21)],
        },
        C,
    ),
    m(50, 21, "queue.bind-ok", Answer, S),
    m(
        50,
        30,
        "queue.purge",
        Sync {
            answers: &[(50, 31)],
        },
        C,
    ),
    m(50, 31, "queue.purge-ok", Answer, S),
    m(
        50,
        40,
        "queue.delete",
        Sync {
            answers: &[(50, 41)],
        },
        C,
    ),
    m(50, 41, "queue.delete-ok", Answer, S),
    m(
        50,
        50,
        "queue.unbind",
        Sync {
            answers: &[(50, 51)],
        },
        C,
    ),
    m(50, 51, "queue.unbind-ok", Answer, S),
    m(
        60,
        10,
        "basic.qos",
        Sync {
            answers: &[(60, 11)],
        },
        C,
    ),
    m(60, 11, "basic.qos-ok", Answer, S),
    m(
        60,
        20,
        "basic.consume",
        Sync {
            answers: &[(60, 21)],
        },
        C,
    ),
    m(60, 21, "basic.consume-ok", Answer, S),
    // The server cancels a consumer on its own too (consumer cancel notification).
    m(
        60,
        30,
        "basic.cancel",
        Sync {
            answers: &[(60, 31)],
        },
        E,
    ),
    m(60, 31, "basic.cancel-ok", Answer, E),
    m(60, 40, "basic.publish", Content, C),
    m(60, 50, "basic.return", Content, S),
    m(60, 60, "basic.deliver", Content, S),
    m(
        60,
        70,
        "basic.get",
        Sync {
            answers: &[(60, 71), (60, 72)],
        },
        C,
    ),
    m(60, 71, "basic.get-ok", AnswerWithContent, S),
    m(60, 72, "basic.get-empty", Answer, S),
    m(60, 80, "basic.ack", Async, E),
    m(60, 90, "basic.reject", Async, C),
    m(60, 100, "basic.recover-async", Async, C),
    m(
        60,
        110,
        "basic.recover",
        Sync {
            answers: &[(60, 111)],
        },
        C,
    ),
    m(60, 111, "basic.recover-ok", Answer, S),
    m(60, 120, "basic.nack", Async, E),
    m(
        85,
        10,
        "confirm.select",
        Sync {
            answers: &[(85, 11)],
        },
        C,
    ),
    m(85, 11, "confirm.select-ok", Answer, S),
    m(
        90,
        10,
        "tx.select",
        Sync {
            answers: &[(90, 11)],
        },
        C,
    ),
    m(90, 11, "tx.select-ok", Answer, S),
    m(
        90,
        20,
        "tx.commit",
        Sync {
            answers: &[(90, 21)],
        },
        C,
    ),
    m(90, 21, "tx.commit-ok", Answer, S),
    m(
        90,
        30,
        "tx.rollback",
        Sync {
            answers: &[(90, 31)],
        },
        C,
    ),
    m(90, 31, "tx.rollback-ok", Answer, S),
];

pub fn lookup(class: u16, method: u16) -> Option<&'static Method> {
    METHODS
        .iter()
        .find(|m| m.class == class && m.method == method)
}

/// The arguments of a method an entry shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    pub exchange: Option<String>,
    pub routing_key: Option<String>,
    pub queue: Option<String>,
    pub reply_code: Option<u16>,
    pub reply_text: Option<String>,
    /// The method that failed, named by a close.
    pub failed: Option<(u16, u16)>,
    pub consumer_tag: Option<String>,
    pub delivery_tag: Option<u64>,
    /// The no-wait bit: no answer will come.
    pub no_wait: bool,
    /// Other arguments worth a few words in the summary.
    pub detail: Vec<String>,
    /// The arguments did not parse.
    pub malformed: bool,
}

/// Bytes of a short string kept (at most 255 on the wire anyway).
const MAX_SHORTSTR: usize = 255;
/// Bytes of a long string kept (mechanisms, locales, SASL responses are not shown).
const MAX_LONGSTR: usize = 256;
/// Nesting of field tables followed when skipping them.
const MAX_TABLE_DEPTH: usize = 16;

pub struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cur<'a> {
    pub fn new(b: &'a [u8]) -> Cur<'a> {
        Cur { b, at: 0 }
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|s| u16::from_be_bytes([s[0], s[1]]))
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    pub fn u64(&mut self) -> Option<u64> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Some(u64::from_be_bytes(a))
    }
    pub fn shortstr(&mut self) -> Option<String> {
        let n = usize::from(self.u8()?);
        self.take(n).map(|s| text(s, MAX_SHORTSTR))
    }
    fn longstr_bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.take(n)
    }
    pub fn longstr(&mut self) -> Option<String> {
        self.longstr_bytes().map(|s| text(s, MAX_LONGSTR))
    }
    /// A field table; the values of `keys` that are strings are returned.
    pub fn table(&mut self, keys: &[&str]) -> Option<Vec<(String, String)>> {
        let body = self.longstr_bytes()?;
        let mut found = Vec::new();
        read_table(body, keys, &mut found, 0)?;
        Some(found)
    }
}

fn text(b: &[u8], cap: usize) -> String {
    String::from_utf8_lossy(&b[..b.len().min(cap)]).into_owned()
}

fn read_table(
    b: &[u8],
    keys: &[&str],
    found: &mut Vec<(String, String)>,
    depth: usize,
) -> Option<()> {
    if depth > MAX_TABLE_DEPTH {
        return None;
    }
    let mut c = Cur::new(b);
    while c.at < b.len() {
        let key = c.shortstr()?;
        let value = read_value(&mut c, depth)?;
        if let Some(v) = value
            && keys.contains(&key.as_str())
        {
            found.push((key, v));
        }
    }
    Some(())
}

/// Reads one field value; a string's text is returned.
fn read_value(c: &mut Cur<'_>, depth: usize) -> Option<Option<String>> {
    let t = c.u8()?;
    let n = match t {
        b't' | b'b' | b'B' => 1,
        b'U' | b'u' | b's' => 2,
        b'I' | b'i' | b'f' => 4,
        b'L' | b'l' | b'd' | b'T' => 8,
        b'D' => 5,
        b'V' => 0,
        b'S' | b'x' => return c.longstr_bytes().map(|s| Some(text(s, MAX_LONGSTR))),
        b'F' => {
            let body = c.longstr_bytes()?;
            read_table(body, &[], &mut Vec::new(), depth + 1)?;
            return Some(None);
        }
        b'A' => {
            let body = c.longstr_bytes()?;
            let mut a = Cur::new(body);
            while a.at < body.len() {
                read_value(&mut a, depth + 1)?;
            }
            return Some(None);
        }
        _ => return None,
    };
    c.take(n)?;
    Some(None)
}

/// Reads the arguments of a method.
pub fn args(m: &Method, b: &[u8]) -> Args {
    let mut a = Args::default();
    if read_args(m, &mut Cur::new(b), &mut a).is_none() {
        a.malformed = true;
    }
    a
}

fn flag(bits: u8, i: u8) -> bool {
    bits & (1 << i) != 0
}

fn read_args(m: &Method, c: &mut Cur<'_>, a: &mut Args) -> Option<()> {
    match (m.class, m.method) {
        (10, 10) => {
            let (maj, min) = (c.u8()?, c.u8()?);
            let props = c.table(&["product", "version"])?;
            let mechanisms = c.longstr()?;
            a.detail.push(format!("{maj}-{min}"));
            let get = |k: &str| props.iter().find(|(p, _)| p == k).map(|(_, v)| v.as_str());
            if let (Some(p), v) = (get("product"), get("version")) {
                a.detail.push(format!(
                    "server={p}{}",
                    v.map(|v| format!(" {v}")).unwrap_or_default()
                ));
            }
            a.detail.push(format!("mechanisms={mechanisms}"));
        }
        (10, 11) => {
            let props = c.table(&["product", "version", "connection_name"])?;
            let mechanism = c.shortstr()?;
            for (k, v) in props {
                a.detail.push(format!("{k}={v}"));
            }
            a.detail.push(format!("mechanism={mechanism}"));
        }
        (10, 30) | (10, 31) => {
            let (ch, frame, hb) = (c.u16()?, c.u32()?, c.u16()?);
            a.detail
                .push(format!("channel_max={ch} frame_max={frame} heartbeat={hb}"));
        }
        (10, 40) => {
            let vhost = c.shortstr()?;
            a.detail.push(format!("vhost={vhost}"));
        }
        (10, 50) | (20, 40) => {
            a.reply_code = Some(c.u16()?);
            a.reply_text = Some(c.shortstr()?);
            let failed = (c.u16()?, c.u16()?);
            if failed != (0, 0) {
                a.failed = Some(failed);
            }
        }
        (10, 60) => {
            a.reply_text = Some(c.shortstr()?);
        }
        (20, 20) | (20, 21) => {
            a.detail.push(format!("active={}", c.u8()? & 1 != 0));
        }
        (40, 10) => {
            c.u16()?;
            a.exchange = Some(c.shortstr()?);
            let kind = c.shortstr()?;
            let bits = c.u8()?;
            a.no_wait = flag(bits, 4);
            a.detail.push(format!("type={kind}"));
            for (i, n) in [
                (0, "passive"),
                (1, "durable"),
                (2, "auto_delete"),
                (3, "internal"),
            ] {
                if flag(bits, i) {
                    a.detail.push(n.to_string());
                }
            }
        }
        (40, 20) => {
            c.u16()?;
            a.exchange = Some(c.shortstr()?);
            a.no_wait = flag(c.u8()?, 1);
        }
        (40, 30) | (40, 40) => {
            c.u16()?;
            let dest = c.shortstr()?;
            a.exchange = Some(c.shortstr()?);
            a.routing_key = Some(c.shortstr()?);
            a.no_wait = flag(c.u8()?, 0);
            a.detail.push(format!("destination={dest}"));
        }
        (50, 10) => {
            c.u16()?;
            a.queue = Some(c.shortstr()?);
            let bits = c.u8()?;
            a.no_wait = flag(bits, 4);
            for (i, n) in [
                (0, "passive"),
                (1, "durable"),
                (2, "exclusive"),
                (3, "auto_delete"),
            ] {
                if flag(bits, i) {
                    a.detail.push(n.to_string());
                }
            }
        }
        (50, 11) => {
            a.queue = Some(c.shortstr()?);
            let (msgs, consumers) = (c.u32()?, c.u32()?);
            a.detail
                .push(format!("messages={msgs} consumers={consumers}"));
        }
        (50, 20) | (50, 50) => {
            c.u16()?;
            a.queue = Some(c.shortstr()?);
            a.exchange = Some(c.shortstr()?);
            a.routing_key = Some(c.shortstr()?);
            if m.method == 20 {
                a.no_wait = flag(c.u8()?, 0);
            }
        }
        (50, 30) => {
            c.u16()?;
            a.queue = Some(c.shortstr()?);
            a.no_wait = flag(c.u8()?, 0);
        }
        (50, 31) | (50, 41) => {
            a.detail.push(format!("messages={}", c.u32()?));
        }
        (50, 40) => {
            c.u16()?;
            a.queue = Some(c.shortstr()?);
            a.no_wait = flag(c.u8()?, 2);
        }
        (60, 10) => {
            let (size, count, global) = (c.u32()?, c.u16()?, c.u8()? & 1 != 0);
            a.detail.push(format!("prefetch_count={count}"));
            if size > 0 {
                a.detail.push(format!("prefetch_size={size}"));
            }
            if global {
                a.detail.push("global".to_string());
            }
        }
        (60, 20) => {
            c.u16()?;
            a.queue = Some(c.shortstr()?);
            a.consumer_tag = Some(c.shortstr()?);
            let bits = c.u8()?;
            a.no_wait = flag(bits, 3);
            if flag(bits, 1) {
                a.detail.push("no_ack".to_string());
            }
            if flag(bits, 2) {
                a.detail.push("exclusive".to_string());
            }
        }
        (60, 21) | (60, 31) => {
            a.consumer_tag = Some(c.shortstr()?);
        }
        (60, 30) => {
            a.consumer_tag = Some(c.shortstr()?);
            a.no_wait = flag(c.u8()?, 0);
        }
        (60, 40) => {
            c.u16()?;
            a.exchange = Some(c.shortstr()?);
            a.routing_key = Some(c.shortstr()?);
            let bits = c.u8()?;
            if flag(bits, 0) {
                a.detail.push("mandatory".to_string());
            }
        }
        (60, 50) => {
            a.reply_code = Some(c.u16()?);
            a.reply_text = Some(c.shortstr()?);
            a.exchange = Some(c.shortstr()?);
            a.routing_key = Some(c.shortstr()?);
        }
        (60, 60) => {
            a.consumer_tag = Some(c.shortstr()?);
            a.delivery_tag = Some(c.u64()?);
            let redelivered = c.u8()? & 1 != 0;
            a.exchange = Some(c.shortstr()?);
            a.routing_key = Some(c.shortstr()?);
            if redelivered {
                a.detail.push("redelivered".to_string());
            }
        }
        (60, 70) => {
            c.u16()?;
            a.queue = Some(c.shortstr()?);
            if flag(c.u8()?, 0) {
                a.detail.push("no_ack".to_string());
            }
        }
        (60, 71) => {
            a.delivery_tag = Some(c.u64()?);
            let redelivered = c.u8()? & 1 != 0;
            a.exchange = Some(c.shortstr()?);
            a.routing_key = Some(c.shortstr()?);
            a.detail.push(format!("messages={}", c.u32()?));
            if redelivered {
                a.detail.push("redelivered".to_string());
            }
        }
        (60, 80) | (60, 90) | (60, 120) => {
            a.delivery_tag = Some(c.u64()?);
            let bits = c.u8()?;
            let names: &[(u8, &str)] = match m.method {
                80 => &[(0, "multiple")],
                90 => &[(0, "requeue")],
                _ => &[(0, "multiple"), (1, "requeue")],
            };
            for (i, n) in names {
                if flag(bits, *i) {
                    a.detail.push((*n).to_string());
                }
            }
        }
        (85, 10) => {
            a.no_wait = flag(c.u8()?, 0);
        }
        _ => {}
    }
    Some(())
}

/// What a content header says of its message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentHeader {
    pub class: u16,
    pub body_size: u64,
    pub content_type: Option<String>,
    pub delivery_mode: Option<u8>,
}

/// Reads a content header frame's payload.
pub fn content_header(b: &[u8]) -> Option<ContentHeader> {
    let mut c = Cur::new(b);
    let class = c.u16()?;
    c.u16()?;
    let body_size = c.u64()?;
    let mut flags = Vec::new();
    loop {
        let f = c.u16()?;
        flags.push(f);
        if f & 1 == 0 || flags.len() > 4 {
            break;
        }
    }
    let f = flags[0];
    let mut h = ContentHeader {
        class,
        body_size,
        ..ContentHeader::default()
    };
    // Properties in order, present when their bit (from bit 15 down) is set; the
    // first two are what a summary shows, the rest are not read.
    if f & (1 << 15) != 0 {
        h.content_type = c.shortstr();
    }
    if f & (1 << 14) != 0 {
        c.shortstr();
    }
    if f & (1 << 13) != 0 {
        c.table(&[]);
    }
    if f & (1 << 12) != 0 {
        h.delivery_mode = c.u8();
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_is_a_method() {
        for m in METHODS {
            if let Role::Sync { answers } = m.role {
                for (c, me) in answers {
                    let a = lookup(*c, *me).unwrap();
                    assert!(
                        matches!(a.role, Role::Answer | Role::AnswerWithContent),
                        "{}",
                        a.name
                    );
                }
            }
        }
    }

    fn shortstr(s: &str) -> Vec<u8> {
        let mut b = vec![s.len() as u8];
        b.extend_from_slice(s.as_bytes());
        b
    }

    #[test]
    fn publish_and_close_arguments() {
        let mut b = vec![0, 0];
        b.extend(shortstr("logs"));
        b.extend(shortstr("info"));
        b.push(1);
        let a = args(lookup(60, 40).unwrap(), &b);
        assert_eq!(a.exchange.as_deref(), Some("logs"));
        assert_eq!(a.routing_key.as_deref(), Some("info"));
        assert_eq!(a.detail, ["mandatory"]);
        let mut b = vec![1, 150];
        b.extend(shortstr("PRECONDITION_FAILED - x"));
        b.extend_from_slice(&[0, 40, 0, 10]);
        let a = args(lookup(20, 40).unwrap(), &b);
        assert_eq!(a.reply_code, Some(406));
        assert_eq!(a.failed, Some((40, 10)));
        let a = args(lookup(20, 40).unwrap(), &b[..5]);
        assert!(a.malformed);
    }

    #[test]
    fn tables_are_read_and_skipped() {
        let mut t = Vec::new();
        t.extend(shortstr("capabilities"));
        t.push(b'F');
        let mut inner = shortstr("x");
        inner.push(b't');
        inner.push(1);
        t.extend((inner.len() as u32).to_be_bytes());
        t.extend(inner);
        t.extend(shortstr("product"));
        t.push(b'S');
        t.extend(8u32.to_be_bytes());
        t.extend_from_slice(b"RabbitMQ");
        t.extend(shortstr("n"));
        t.push(b'l');
        t.extend([0u8; 8]);
        let mut b = vec![0, 9];
        b.extend((t.len() as u32).to_be_bytes());
        b.extend(t);
        b.extend(5u32.to_be_bytes());
        b.extend_from_slice(b"PLAIN");
        b.extend(5u32.to_be_bytes());
        b.extend_from_slice(b"en_US");
        let a = args(lookup(10, 10).unwrap(), &b);
        assert!(!a.malformed);
        assert_eq!(a.detail, ["0-9", "server=RabbitMQ", "mechanisms=PLAIN"]);
    }

    #[test]
    fn content_headers() {
        let mut b = vec![0, 60, 0, 0];
        b.extend(303u64.to_be_bytes());
        b.extend([0xb0, 0x00]);
        b.extend(shortstr("application/json"));
        b.extend(0u32.to_be_bytes());
        b.push(2);
        let h = content_header(&b).unwrap();
        assert_eq!(h.body_size, 303);
        assert_eq!(h.content_type.as_deref(), Some("application/json"));
        assert_eq!(h.delivery_mode, Some(2));
    }
}
