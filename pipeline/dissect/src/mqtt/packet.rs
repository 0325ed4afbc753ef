//! MQTT 3.1, 3.1.1 and 5 control packets: the fixed header, and the variable header
//! and payload of each packet type, read from a byte slice.

/// The largest remaining length the encoding allows (four bytes of seven bits).
pub const MAX_REMAINING_LENGTH: u64 = 268_435_455;
/// Topic filters (or reason codes) of one SUBSCRIBE / UNSUBSCRIBE / ack kept.
pub const MAX_FILTERS: usize = 64;
/// Bytes of a string field kept (a topic is at most 65 535 bytes on the wire).
pub const MAX_STRING: usize = 1024;
/// Longest acknowledgment taken for one when looking for packet boundaries (an MQTT 5
/// ack may carry a reason string).
const MAX_ACK_LENGTH: u64 = 256;

pub const CONNECT: u8 = 1;
pub const CONNACK: u8 = 2;
pub const PUBLISH: u8 = 3;
pub const PUBACK: u8 = 4;
pub const PUBREC: u8 = 5;
pub const PUBREL: u8 = 6;
pub const PUBCOMP: u8 = 7;
pub const SUBSCRIBE: u8 = 8;
pub const SUBACK: u8 = 9;
pub const UNSUBSCRIBE: u8 = 10;
pub const UNSUBACK: u8 = 11;
pub const PINGREQ: u8 = 12;
pub const PINGRESP: u8 = 13;
pub const DISCONNECT: u8 = 14;
pub const AUTH: u8 = 15;

pub fn type_name(t: u8) -> &'static str {
    match t {
        CONNECT => "CONNECT",
        CONNACK => "CONNACK",
        PUBLISH => "PUBLISH",
        PUBACK => "PUBACK",
        PUBREC => "PUBREC",
        PUBREL => "PUBREL",
        PUBCOMP => "PUBCOMP",
        SUBSCRIBE => "SUBSCRIBE",
        SUBACK => "SUBACK",
        UNSUBSCRIBE => "UNSUBSCRIBE",
        UNSUBACK => "UNSUBACK",
        PINGREQ => "PINGREQ",
        PINGRESP => "PINGRESP",
        DISCONNECT => "DISCONNECT",
        AUTH => "AUTH",
        _ => "RESERVED",
    }
}

/// The first byte and the remaining length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed {
    pub ptype: u8,
    pub flags: u8,
    pub remaining: u64,
    /// Bytes of the fixed header (2 to 5).
    pub len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    Fixed(Fixed),
    /// More bytes are needed.
    Short,
    Invalid,
}

/// Reads a fixed header; the flag bits must be the ones the type requires.
pub fn fixed(b: &[u8]) -> Header {
    let Some(&first) = b.first() else {
        return Header::Short;
    };
    let ptype = first >> 4;
    let flags = first & 0x0f;
    let flags_ok = match ptype {
        0 => false,
        PUBLISH => (flags >> 1) & 3 != 3,
        PUBREL | SUBSCRIBE | UNSUBSCRIBE => flags == 0b0010,
        _ => flags == 0,
    };
    if !flags_ok {
        return Header::Invalid;
    }
    let mut remaining = 0u64;
    for i in 0..4 {
        let Some(&byte) = b.get(1 + i) else {
            return Header::Short;
        };
        remaining |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            // A longer encoding than needed is malformed (MQTT-1.5.5-1).
            if i > 0 && byte == 0 {
                return Header::Invalid;
            }
            return Header::Fixed(Fixed {
                ptype,
                flags,
                remaining,
                len: 2 + i,
            });
        }
    }
    Header::Invalid
}

/// A cursor over a packet's bytes.
struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cur<'a> {
    fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.at)?;
        self.at += 1;
        Some(v)
    }
    fn u16(&mut self) -> Option<u16> {
        let s = self.b.get(self.at..self.at + 2)?;
        self.at += 2;
        Some(u16::from_be_bytes([s[0], s[1]]))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u16()?);
        let s = self.b.get(self.at..self.at + n)?;
        self.at += n;
        Some(s)
    }
    fn string(&mut self) -> Option<String> {
        self.bytes().map(shown)
    }
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..4 {
            let byte = self.u8()?;
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    /// MQTT 5 properties: skipped, but their length must fit.
    fn properties(&mut self) -> Option<Props> {
        let n = usize::try_from(self.varint()?).ok()?;
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(Props::read(s))
    }
    fn rest(&self) -> &'a [u8] {
        self.b.get(self.at..).unwrap_or(&[])
    }
}

fn shown(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(MAX_STRING)]).into_owned()
}

/// MQTT 5 properties an entry shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Props {
    pub reason_string: Option<String>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub topic_alias: Option<u16>,
    pub auth_method: Option<String>,
    pub assigned_client_id: Option<String>,
    /// Properties seen, known or not.
    pub count: usize,
    /// The properties did not parse.
    pub malformed: bool,
}

impl Props {
    fn read(b: &[u8]) -> Props {
        let mut p = Props::default();
        let mut c = Cur { b, at: 0 };
        while c.at < b.len() {
            let Some(id) = c.varint() else {
                p.malformed = true;
                break;
            };
            p.count += 1;
            let ok = match id {
                // Byte.
                0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2a => c.u8().is_some(),
                // Four-byte integer.
                0x02 | 0x11 | 0x18 | 0x27 => c.u16().and_then(|_| c.u16()).is_some(),
                // Two-byte integer.
                0x13 | 0x21 | 0x22 => c.u16().is_some(),
                0x23 => c.u16().map(|v| p.topic_alias = Some(v)).is_some(),
                // Variable byte integer (subscription identifier).
                0x0b => c.varint().is_some(),
                // Strings and binary data.
                0x03 => c.string().map(|v| p.content_type = Some(v)).is_some(),
                0x08 => c.string().map(|v| p.response_topic = Some(v)).is_some(),
                0x12 => c.string().map(|v| p.assigned_client_id = Some(v)).is_some(),
                0x15 => c.string().map(|v| p.auth_method = Some(v)).is_some(),
                0x1f => c.string().map(|v| p.reason_string = Some(v)).is_some(),
                0x09 | 0x16 | 0x1a | 0x1c => c.bytes().is_some(),
                // User property: a string pair.
                0x26 => c.bytes().and_then(|_| c.bytes()).is_some(),
                _ => false,
            };
            if !ok {
                p.malformed = true;
                break;
            }
        }
        p
    }
}

/// A packet's contents, as far as an entry needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Connect {
        protocol: String,
        level: u8,
        clean: bool,
        keep_alive: u16,
        client_id: String,
        username: Option<String>,
        will_topic: Option<String>,
    },
    Connack {
        session_present: bool,
        code: u8,
    },
    Publish {
        topic: String,
        packet_id: Option<u16>,
        /// Where the payload starts in the packet's bytes (after the fixed header).
        payload_at: usize,
    },
    /// PUBACK, PUBREC, PUBREL, PUBCOMP: a packet id and a reason code (0 when left out).
    Ack {
        packet_id: u16,
        code: u8,
    },
    Subscribe {
        packet_id: u16,
        /// Topic filters with their requested QoS.
        filters: Vec<(String, u8)>,
    },
    /// SUBACK and UNSUBACK: a reason code per filter (none for a 3.1.1 UNSUBACK).
    SubAck {
        packet_id: u16,
        codes: Vec<u8>,
    },
    Unsubscribe {
        packet_id: u16,
        filters: Vec<String>,
    },
    Empty,
    /// DISCONNECT and AUTH: a reason code (0 when left out).
    Reason {
        code: u8,
    },
}

/// A packet read from its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub body: Body,
    pub props: Props,
}

/// Reads a packet's variable header and payload (`b` is what follows the fixed
/// header, maybe only its start for a long PUBLISH). `v5` says whether the
/// connection speaks MQTT 5 (properties present). `None` when the bytes do not
/// hold the fields the type requires.
pub fn parse(f: &Fixed, b: &[u8], v5: bool) -> Option<Packet> {
    let mut c = Cur { b, at: 0 };
    let mut props = Props::default();
    let complete = b.len() as u64 >= f.remaining;
    let body = match f.ptype {
        CONNECT => {
            let protocol = c.string()?;
            let level = c.u8()?;
            let flags = c.u8()?;
            let keep_alive = c.u16()?;
            if level & 0x7f == 5 {
                props = c.properties()?;
            }
            let client_id = c.string()?;
            let will_topic = if flags & 0x04 != 0 {
                if level & 0x7f == 5 {
                    c.properties()?;
                }
                let t = c.string()?;
                c.bytes()?;
                Some(t)
            } else {
                None
            };
            let username = if flags & 0x80 != 0 { c.string() } else { None };
            Body::Connect {
                protocol,
                level,
                clean: flags & 0x02 != 0,
                keep_alive,
                client_id,
                username,
                will_topic,
            }
        }
        CONNACK => {
            let ack = c.u8()?;
            let code = c.u8()?;
            if v5 && f.remaining > 2 {
                props = c.properties()?;
            }
            Body::Connack {
                session_present: ack & 1 != 0,
                code,
            }
        }
        PUBLISH => {
            let topic = c.string()?;
            let qos = (f.flags >> 1) & 3;
            let packet_id = if qos > 0 { Some(c.u16()?) } else { None };
            if v5 {
                props = c.properties()?;
            }
            Body::Publish {
                topic,
                packet_id,
                payload_at: c.at,
            }
        }
        PUBACK | PUBREC | PUBREL | PUBCOMP => {
            let packet_id = c.u16()?;
            let code = if f.remaining > 2 { c.u8()? } else { 0 };
            if f.remaining > 3 {
                props = c.properties()?;
            }
            Body::Ack { packet_id, code }
        }
        SUBSCRIBE => {
            let packet_id = c.u16()?;
            if v5 {
                props = c.properties()?;
            }
            let mut filters = Vec::new();
            while !c.rest().is_empty() {
                let t = c.string()?;
                let opts = c.u8()?;
                if filters.len() < MAX_FILTERS {
                    filters.push((t, opts & 3));
                }
            }
            if filters.is_empty() && complete {
                return None;
            }
            Body::Subscribe { packet_id, filters }
        }
        SUBACK | UNSUBACK => {
            let packet_id = c.u16()?;
            if v5 {
                props = c.properties()?;
            }
            let codes = c.rest().iter().take(MAX_FILTERS).copied().collect();
            Body::SubAck { packet_id, codes }
        }
        UNSUBSCRIBE => {
            let packet_id = c.u16()?;
            if v5 {
                props = c.properties()?;
            }
            let mut filters = Vec::new();
            while !c.rest().is_empty() {
                let t = c.string()?;
                if filters.len() < MAX_FILTERS {
                    filters.push(t);
                }
            }
            Body::Unsubscribe { packet_id, filters }
        }
        PINGREQ | PINGRESP => {
            if f.remaining != 0 {
                return None;
            }
            Body::Empty
        }
        DISCONNECT | AUTH => {
            let code = if f.remaining > 0 { c.u8()? } else { 0 };
            if f.remaining > 1 {
                props = c.properties()?;
            }
            Body::Reason { code }
        }
        _ => return None,
    };
    // Fields past the packet's end were read from the next packet.
    if complete && c.at as u64 > f.remaining {
        return None;
    }
    Some(Packet { body, props })
}

/// MQTT 5 packets that a 3.1.1 connection cannot send: acks with reason codes,
/// a DISCONNECT with a reason, AUTH.
pub fn requires_v5(f: &Fixed) -> bool {
    match f.ptype {
        PUBACK | PUBREC | PUBREL | PUBCOMP | UNSUBACK => f.remaining > 2,
        DISCONNECT => f.remaining > 0,
        AUTH => true,
        _ => false,
    }
}

/// The protocol name and level at the start of a CONNECT's variable header: whether
/// `b` (the packet from its first byte) can still be, or is, a CONNECT.
pub fn connect_signature(b: &[u8]) -> Option<bool> {
    if b.first() != Some(&0x10) {
        return Some(false);
    }
    let f = match fixed(b) {
        Header::Fixed(f) => f,
        Header::Short => return None,
        Header::Invalid => return Some(false),
    };
    protocol_name(&b[f.len..], f.remaining)
}

/// A CONNECT's variable header starts with the protocol name and level.
fn protocol_name(vh: &[u8], remaining: u64) -> Option<bool> {
    let names: [&[u8]; 2] = [b"\x00\x04MQTT", b"\x00\x06MQIsdp"];
    for name in names {
        let n = vh.len().min(name.len());
        if vh[..n] != name[..n] {
            continue;
        }
        // The level: 3 = 3.1, 4 = 3.1.1, 5 = 5.0 (the top bit marks a bridge); other
        // levels are still MQTT, refused by the broker with a CONNACK.
        vh.get(name.len())?;
        return Some(remaining >= name.len() as u64 + 4);
    }
    Some(false)
}

/// Is a packet plausible by its contents (`b`: what follows the fixed header, at
/// least the start of it)? Used to find packet boundaries where the stream start was
/// not seen. `None` when not; `Some(strong)` when it is, `strong` telling whether it
/// could hardly be something else.
pub fn plausible(f: &Fixed, b: &[u8]) -> Option<bool> {
    let ok = match f.ptype {
        PINGREQ | PINGRESP => f.remaining == 0,
        PUBACK | PUBREC | PUBREL | PUBCOMP => {
            (2..=MAX_ACK_LENGTH).contains(&f.remaining) && b.get(..2).is_some_and(|id| id != [0, 0])
        }
        CONNACK => f.remaining >= 2 && b.first().is_some_and(|a| *a <= 1),
        DISCONNECT => f.remaining <= 64,
        AUTH => f.remaining >= 1,
        PUBLISH => {
            let mut c = Cur { b, at: 0 };
            match c.bytes() {
                Some(t) => {
                    !t.is_empty()
                        && std::str::from_utf8(t).is_ok()
                        && !t
                            .iter()
                            .any(|x| matches!(x, 0 | b'+' | b'#') || x.is_ascii_control())
                        && ((f.flags >> 1) & 3 == 0 || c.u16().is_some_and(|id| id != 0))
                }
                None => false,
            }
        }
        SUBSCRIBE | UNSUBSCRIBE | SUBACK | UNSUBACK => {
            b.get(..2).is_some_and(|id| id != [0, 0]) && f.remaining >= 3
        }
        CONNECT => protocol_name(b, f.remaining).unwrap_or(false),
        _ => false,
    };
    if !ok {
        return None;
    }
    Some(matches!(
        f.ptype,
        PUBLISH | SUBSCRIBE | UNSUBSCRIBE | CONNECT | CONNACK
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(b: &[u8], v5: bool) -> (Fixed, Option<Packet>) {
        let Header::Fixed(f) = fixed(b) else {
            panic!("no header")
        };
        (f, parse(&f, &b[f.len..], v5))
    }

    #[test]
    fn fixed_headers() {
        assert_eq!(
            fixed(&[0x30, 0x80, 0x01]),
            Header::Fixed(Fixed {
                ptype: 3,
                flags: 0,
                remaining: 128,
                len: 3
            })
        );
        assert_eq!(fixed(&[0x30, 0x80]), Header::Short);
        assert_eq!(fixed(&[0x30, 0xff, 0xff, 0xff, 0xff]), Header::Invalid);
        assert!(fixed(&[0x62, 0x02]).ne(&Header::Invalid));
        assert_eq!(fixed(&[0x60, 0x02]), Header::Invalid);
        assert_eq!(fixed(&[0x36, 0x02]), Header::Invalid);
        assert_eq!(fixed(&[0x00, 0x00]), Header::Invalid);
        assert_eq!(fixed(&[0x30, 0x80, 0x00]), Header::Invalid);
    }

    #[test]
    fn connect_311_and_5() {
        let b = b"\x10\x1f\x00\x04MQTT\x04\xc2\x00\x3c\x00\x03cid\x00\x04user\x00\x04pass";
        let (_, p) = pkt(b, false);
        let Some(Packet {
            body:
                Body::Connect {
                    protocol,
                    level,
                    clean,
                    keep_alive,
                    client_id,
                    username,
                    ..
                },
            ..
        }) = p
        else {
            panic!("{p:?}")
        };
        assert_eq!(
            (
                protocol.as_str(),
                level,
                clean,
                keep_alive,
                client_id.as_str()
            ),
            ("MQTT", 4, true, 60, "cid")
        );
        assert_eq!(username.as_deref(), Some("user"));
        let b5 = b"\x10\x14\x00\x04MQTT\x05\x02\x00\x3c\x03\x21\x00\x14\x00\x03cid";
        let (_, p) = pkt(b5, true);
        assert!(matches!(p.unwrap().body, Body::Connect { level: 5, .. }));
        assert_eq!(connect_signature(b), Some(true));
        assert_eq!(connect_signature(&b[..5]), None);
        assert_eq!(connect_signature(b"\x10\x1f\x00\x04MQTX"), Some(false));
    }

    #[test]
    fn publish_with_and_without_properties() {
        let b = b"\x32\x0a\x00\x03a/b\x00\x07hi!";
        let (f, p) = pkt(b, false);
        assert_eq!((f.flags >> 1) & 3, 1);
        assert_eq!(
            p.unwrap().body,
            Body::Publish {
                topic: "a/b".into(),
                packet_id: Some(7),
                payload_at: 7
            }
        );
        let b5 = b"\x30\x0b\x00\x03a/b\x03\x03\x00\x00hi";
        let (_, p) = pkt(b5, true);
        let p = p.unwrap();
        assert_eq!(
            p.body,
            Body::Publish {
                topic: "a/b".into(),
                packet_id: None,
                payload_at: 9
            }
        );
        assert_eq!(p.props.content_type.as_deref(), Some(""));
    }

    #[test]
    fn acks_and_subscriptions() {
        let (_, p) = pkt(b"\x40\x02\x00\x05", false);
        assert_eq!(
            p.unwrap().body,
            Body::Ack {
                packet_id: 5,
                code: 0
            }
        );
        let (f, p) = pkt(b"\x40\x03\x00\x05\x10", true);
        assert!(requires_v5(&f));
        assert_eq!(
            p.unwrap().body,
            Body::Ack {
                packet_id: 5,
                code: 0x10
            }
        );
        let (_, p) = pkt(b"\x82\x0a\x00\x01\x00\x03a/b\x01\x00\x00", false);
        assert!(p.is_none(), "a filter without its options byte");
        let (_, p) = pkt(b"\x82\x08\x00\x01\x00\x03a/b\x01", false);
        assert_eq!(
            p.unwrap().body,
            Body::Subscribe {
                packet_id: 1,
                filters: vec![("a/b".into(), 1)]
            }
        );
        let (_, p) = pkt(b"\x90\x04\x00\x01\x01\x80", false);
        assert_eq!(
            p.unwrap().body,
            Body::SubAck {
                packet_id: 1,
                codes: vec![1, 0x80]
            }
        );
        let (_, p) = pkt(b"\xa2\x07\x00\x02\x00\x03a/b", false);
        assert_eq!(
            p.unwrap().body,
            Body::Unsubscribe {
                packet_id: 2,
                filters: vec!["a/b".into()]
            }
        );
        let (_, p) = pkt(b"\xe0\x00", false);
        assert_eq!(p.unwrap().body, Body::Reason { code: 0 });
        let (_, p) = pkt(b"\xc0\x01\x00", false);
        assert!(p.is_none());
    }

    #[test]
    fn v5_properties() {
        let mut props = vec![0x1f, 0x00, 0x04];
        props.extend_from_slice(b"oops");
        props.extend_from_slice(&[0x26, 0, 1, b'k', 0, 1, b'v']);
        let mut b = vec![
            0x20,
            (2 + 1 + props.len()) as u8,
            0,
            0x87,
            props.len() as u8,
        ];
        b.extend(&props);
        let (_, p) = pkt(&b, true);
        let p = p.unwrap();
        assert_eq!(
            p.body,
            Body::Connack {
                session_present: false,
                code: 0x87
            }
        );
        assert_eq!(p.props.reason_string.as_deref(), Some("oops"));
        assert_eq!(p.props.count, 2);
        assert!(!p.props.malformed);
    }
}
