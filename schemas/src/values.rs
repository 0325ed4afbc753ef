//! Value types of entry columns that are more than a string or a number.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::SchemaError;
use crate::json::JsonOut;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
        pub enum $name {
            #[default]
            $($variant),*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The column value as it appears in JSON, Arrow and SQL filters.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl std::str::FromStr for $name {
            type Err = SchemaError;
            fn from_str(s: &str) -> Result<Self, SchemaError> {
                match s {
                    $($text => Ok($name::$variant),)*
                    other => Err(SchemaError::UnknownValue {
                        what: stringify!($name),
                        value: other.to_string(),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(de::Error::custom)
            }
        }
    };
}

string_enum! {
    /// The application protocol of an entry (DESIGN §2). HTTP/1.x and HTTP/2 are both
    /// `http`; `http_version` tells them apart so that one filter covers both.
    Protocol {
        Http = "http",
        Grpc = "grpc",
        Graphql = "graphql",
        Websocket = "websocket",
        Dns = "dns",
        // Multicast DNS (RFC 6762, port 5353): DNS's wire format, its own protocol.
        Mdns = "mdns",
        // Link-local multicast name resolution (RFC 4795, port 5355).
        Llmnr = "llmnr",
        Redis = "redis",
        Kafka = "kafka",
        Amqp = "amqp",
        Postgresql = "postgresql",
        Mysql = "mysql",
        Mongodb = "mongodb",
        Mqtt = "mqtt",
        Tls = "tls",
        Icmp = "icmp",
    }
}

string_enum! {
    /// The transport an entry travelled on.
    Transport {
        Tcp = "tcp",
        Udp = "udp",
        Icmp = "icmp",
    }
}

string_enum! {
    /// Where the bytes of an entry came from.
    CaptureSource {
        Pcap = "pcap",
        AfPacket = "af_packet",
        EbpfTls = "ebpf_tls",
    }
}

macro_rules! flags {
    ($($(#[doc = $doc:literal])* $konst:ident = $bit:literal, $text:literal;)*) => {
        impl Flags {
            $($(#[doc = $doc])* pub const $konst: Flags = Flags(1 << $bit);)*

            /// Every flag with its name, for documentation and parsing.
            pub const ALL: &'static [(Flags, &'static str)] = &[$((Flags::$konst, $text)),*];
        }
    };
}

/// Anomalies and incompleteness of an entry. A flag is a fact about what was (not)
/// seen on the wire; it never aborts a flow. In JSON and Arrow they are a list of names.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(pub u32);

flags! {
    /// The request's response was never seen: the connection ended, the capture ended,
    /// the timeout passed, or the response was lost in a capture gap.
    NO_RESPONSE = 0, "no_response";
    /// A response whose request was not captured.
    NO_REQUEST = 1, "no_request";
    /// Bytes of the request are missing from the capture; sizes count them, bodies do not.
    REQUEST_GAP = 2, "request_gap";
    /// Bytes of the response are missing from the capture.
    RESPONSE_GAP = 3, "response_gap";
    /// The request body was longer than the body limit; the stored body is its start.
    REQUEST_BODY_TRUNCATED = 4, "request_body_truncated";
    /// The response body was longer than the body limit.
    RESPONSE_BODY_TRUNCATED = 5, "response_body_truncated";
    /// A Content-Encoding could not be decoded; the body is stored as transferred.
    BODY_DECODE_ERROR = 6, "body_decode_error";
    /// The message broke the protocol grammar and was read leniently.
    MALFORMED = 7, "malformed";
    /// The header section was larger than the head limit or had too many fields.
    HEAD_TOO_LARGE = 8, "head_too_large";
    /// One or more 1xx interim responses came before the final response.
    INTERIM_RESPONSE = 9, "interim_response";
    /// The connection switched to another protocol after this exchange.
    UPGRADE = 10, "upgrade";
    /// Emitted when the response timeout passed rather than at the end of the connection.
    TIMEOUT = 11, "timeout";
    /// The connection or capture ended before the message's declared end.
    TRUNCATED = 12, "truncated";
    /// The message was paired by the order of messages only, after data was lost, so
    /// the pairing may be wrong.
    PAIRING_UNCERTAIN = 13, "pairing_uncertain";
}

impl Flags {
    /// Flags that mean part of the exchange was not seen: such entries are `incomplete`.
    pub const INCOMPLETE: Flags = Flags(
        Flags::NO_RESPONSE.0
            | Flags::NO_REQUEST.0
            | Flags::REQUEST_GAP.0
            | Flags::RESPONSE_GAP.0
            | Flags::TRUNCATED.0,
    );

    pub const fn empty() -> Flags {
        Flags(0)
    }

    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Names of the flags set, in bit order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::ALL
            .iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| *n)
    }

    pub fn from_name(name: &str) -> Option<Flags> {
        Flags::ALL.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl std::ops::Not for Flags {
    type Output = Flags;
    fn not(self) -> Flags {
        Flags(!self.0)
    }
}

impl std::ops::BitAnd for Flags {
    type Output = Flags;
    fn bitand(self, rhs: Flags) -> Flags {
        Flags(self.0 & rhs.0)
    }
}

impl std::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Serialize for Flags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

impl<'de> Deserialize<'de> for Flags {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut flags = Flags::empty();
        for n in names {
            // Flags added by a newer producer are not an error for an older reader.
            if let Some(f) = Flags::from_name(&n) {
                flags |= f;
            }
        }
        Ok(flags)
    }
}

/// Header fields in the order they were sent, names as sent. Names repeat when a field
/// was sent more than once.
///
/// In JSON a header set is an object; repeated fields are combined into one value
/// separated by ", " (RFC 9110 §5.3), except `Set-Cookie`, whose values are separated by
/// "\n" because cookies may contain commas. Arrow keeps every field line as a map entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    pub fn new() -> Headers {
        Headers(Vec::new())
    }

    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// The first value of a field, names compared case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a field, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Fields with repeated names combined as they are in JSON.
    pub fn combined(&self) -> Vec<(&str, String)> {
        let mut out: Vec<(&str, String)> = Vec::with_capacity(self.0.len());
        for (name, value) in &self.0 {
            if let Some((_, v)) = out.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                let sep = if name.eq_ignore_ascii_case("set-cookie") {
                    "\n"
                } else {
                    ", "
                };
                v.push_str(sep);
                v.push_str(value);
            } else {
                out.push((name.as_str(), value.clone()));
            }
        }
        out
    }
}

impl Headers {
    /// Whether a field name appears more than once (names compared case-insensitively).
    fn has_repeated_names(&self) -> bool {
        // Names are compared only when a cheap case-insensitive hash of them (length,
        // first and last byte) was seen before, so the usual set costs one pass.
        let hash = |n: &str| {
            let b = n.as_bytes();
            let (first, last) = (b.first().copied(), b.last().copied());
            let lower = |c: Option<u8>| usize::from(c.unwrap_or(0).to_ascii_lowercase());
            (b.len() * 7 + lower(first) + lower(last) * 3) % 64
        };
        let mut seen = 0u64;
        for (i, (n, _)) in self.0.iter().enumerate() {
            let bit = 1u64 << hash(n);
            if seen & bit != 0 && self.0[..i].iter().any(|(m, _)| m.eq_ignore_ascii_case(n)) {
                return true;
            }
            seen |= bit;
        }
        false
    }

    /// The JSON object `Serialize` writes, without building the combined values.
    pub(crate) fn write_json(&self, out: &mut JsonOut<'_>) {
        out.byte(b'{');
        if !self.has_repeated_names() {
            for (i, (n, v)) in self.0.iter().enumerate() {
                if i > 0 {
                    out.byte(b',');
                }
                out.str(n);
                out.byte(b':');
                out.str(v);
            }
        } else {
            // As `combined`: each name where it first appears, with the values of all its
            // fields joined.
            let mut first = true;
            for (i, (name, value)) in self.0.iter().enumerate() {
                if self.0[..i]
                    .iter()
                    .any(|(m, _)| m.eq_ignore_ascii_case(name))
                {
                    continue;
                }
                if !first {
                    out.byte(b',');
                }
                first = false;
                out.str(name);
                out.raw(b":\"");
                out.str_contents(value);
                for (later, v) in &self.0[i + 1..] {
                    if later.eq_ignore_ascii_case(name) {
                        out.raw(if later.eq_ignore_ascii_case("set-cookie") {
                            b"\\n"
                        } else {
                            b", "
                        });
                        out.str_contents(v);
                    }
                }
                out.byte(b'"');
            }
        }
        out.byte(b'}');
    }
}

impl Serialize for Headers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let repeated = self.has_repeated_names();
        let mut map = s.serialize_map(Some(self.0.len()))?;
        if repeated {
            for (n, v) in self.combined() {
                map.serialize_entry(n, &v)?;
            }
        } else {
            for (n, v) in &self.0 {
                map.serialize_entry(n, v)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Headers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of header names to string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Headers, A::Error> {
                let mut h = Headers::new();
                while let Some((k, v)) = m.next_entry::<String, String>()? {
                    h.push(k, v);
                }
                Ok(h)
            }
        }
        d.deserialize_map(V)
    }
}

/// A message body as stored: decoded from its Content-Encoding when that was possible,
/// cut at the body limit.
///
/// In JSON a body that is valid UTF-8 is a string; anything else is
/// `{"base64": "..."}`. In Arrow it is binary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body(pub Vec<u8>);

impl Body {
    /// The JSON `Serialize` writes; base64 is written straight out, never escaped.
    pub(crate) fn write_json(&self, out: &mut JsonOut<'_>) {
        // Validated while escaping rather than with `from_utf8` first.
        if !out.utf8_str(&self.0) {
            out.raw(b"{\"base64\":\"");
            crate::base64::encode_into(&self.0, out.buf());
            out.raw(b"\"}");
        }
    }
}

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("base64", &crate::base64::encode(&self.0))?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Body;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or {\"base64\": string}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Body, E> {
                Ok(Body(v.as_bytes().to_vec()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Body, A::Error> {
                let mut out = None;
                while let Some((k, v)) = m.next_entry::<String, String>()? {
                    if k == "base64" {
                        out = Some(crate::base64::decode(&v).map_err(de::Error::custom)?);
                    }
                }
                out.map(Body)
                    .ok_or_else(|| de::Error::missing_field("base64"))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_through_names() {
        let f = Flags::NO_RESPONSE | Flags::RESPONSE_GAP | Flags::MALFORMED;
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, r#"["no_response","response_gap","malformed"]"#);
        let back: Flags = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
        assert!(f.intersects(Flags::INCOMPLETE));
        assert!(!Flags::MALFORMED.intersects(Flags::INCOMPLETE));
    }

    #[test]
    fn flag_names_are_unique() {
        let mut names: Vec<_> = Flags::ALL.iter().map(|(_, n)| *n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Flags::ALL.len());
    }

    #[test]
    fn repeated_headers_combine_in_json_but_not_in_the_value() {
        let mut h = Headers::new();
        h.push("Accept", "a");
        h.push("Set-Cookie", "x=1, y");
        h.push("accept", "b");
        h.push("Set-Cookie", "z=2");
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, r#"{"Accept":"a, b","Set-Cookie":"x=1, y\nz=2"}"#);
        assert_eq!(h.len(), 4);
        assert_eq!(h.get("ACCEPT"), Some("a"));
        assert_eq!(h.get_all("set-cookie").count(), 2);
    }

    #[test]
    fn bodies_are_text_or_base64() {
        let text = Body(b"{\"a\":1}".to_vec());
        assert_eq!(serde_json::to_string(&text).unwrap(), r#""{\"a\":1}""#);
        let bin = Body(vec![0xff, 0x00, 0x10]);
        let json = serde_json::to_string(&bin).unwrap();
        assert_eq!(json, r#"{"base64":"/wAQ"}"#);
        assert_eq!(serde_json::from_str::<Body>(&json).unwrap(), bin);
        assert_eq!(
            serde_json::from_str::<Body>(r#""{\"a\":1}""#).unwrap(),
            text
        );
    }

    #[test]
    fn enums_parse_their_own_names_only() {
        for p in Protocol::ALL {
            assert_eq!(p.as_str().parse::<Protocol>().unwrap(), *p);
        }
        assert!("HTTP".parse::<Protocol>().is_err());
    }
}
