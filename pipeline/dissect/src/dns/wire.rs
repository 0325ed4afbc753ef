//! DNS messages as they travel (RFC 1035, 3596, 2782, 6891, 9460 and friends): a pure
//! parser from bytes, lenient where a reader of a damaged capture needs it and strict
//! where detection needs it.
//!
//! Names are read with their compression pointers followed only backwards and at most
//! [`MAX_COMPRESSION_POINTERS`] times, so no message can make the parser loop. A
//! message cut short (a capture gap, a TCP connection that ended) still gives its
//! header, its questions and the records that arrived whole.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

pub const HEADER_LEN: usize = 12;
/// A name's length on the wire (RFC 1035 §2.3.4), labels and their length bytes.
pub const MAX_NAME_WIRE_LEN: usize = 255;
/// Compression pointers followed while reading one name. Pointers must also point
/// backwards, which alone ends every walk; this bounds the work per name.
pub const MAX_COMPRESSION_POINTERS: usize = 32;
/// Questions kept per message (mDNS queries carry many; unicast DNS one).
pub const MAX_QUESTIONS_KEPT: usize = 16;
/// Questions a message may claim and still look like DNS to detection.
pub const MAX_PLAUSIBLE_QUESTIONS: u16 = 64;
/// Answer records kept, formatted, per message; the rest are counted.
pub const MAX_ANSWERS_KEPT: usize = 64;
/// Characters of one record's data as text; longer data (keys, signatures, long TXT)
/// is cut with a trailing "…".
pub const MAX_RDATA_TEXT: usize = 256;

/// Opcodes that real DNS traffic uses: QUERY, IQUERY, STATUS, NOTIFY, UPDATE, DSO.
const KNOWN_OPCODES: [u8; 6] = [0, 1, 2, 4, 5, 6];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub fn parse(b: &[u8]) -> Option<Header> {
        let h = b.get(..HEADER_LEN)?;
        let u = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        Some(Header {
            id: u(0),
            flags: u(2),
            qdcount: u(4),
            ancount: u(6),
            nscount: u(8),
            arcount: u(10),
        })
    }

    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }

    pub fn authoritative(&self) -> bool {
        self.flags & 0x0400 != 0
    }

    /// TC: the sender cut the message to fit (a UDP answer too large); the client is
    /// expected to ask again over TCP.
    pub fn truncated(&self) -> bool {
        self.flags & 0x0200 != 0
    }

    pub fn rcode(&self) -> u8 {
        (self.flags & 0xf) as u8
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The bytes ended inside the item.
    Short,
    /// A label type other than a length or a pointer (0x40, 0x80 are not in use).
    BadLabel,
    /// A pointer forwards, to itself, or into the header.
    BadPointer,
    TooManyPointers,
    NameTooLong,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Without the trailing dot; the root is ".".
    pub name: String,
    pub qtype: u16,
    /// With the mDNS unicast-response bit, as sent.
    pub qclass: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    /// The data as text (presentation format, cut at [`MAX_RDATA_TEXT`]).
    pub data: String,
}

impl Record {
    /// "name TYPE data", the form of `dns_answers`.
    pub fn line(&self) -> String {
        format!("{} {} {}", self.name, type_name(self.rtype), self.data)
    }
}

/// What an OPT record (EDNS, RFC 6891) says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edns {
    pub udp_size: u16,
    pub ext_rcode: u8,
    pub version: u8,
    pub dnssec_ok: bool,
    /// Client subnet (RFC 7871) as "address/source-prefix[/scope]".
    pub client_subnet: Option<String>,
    /// Extended DNS error (RFC 8914): info code and text.
    pub ede: Option<(u16, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    /// Up to [`MAX_QUESTIONS_KEPT`].
    pub questions: Vec<Question>,
    /// The answer section, up to [`MAX_ANSWERS_KEPT`] records.
    pub answers: Vec<Record>,
    /// Answer records read (all of them, kept or not).
    pub answers_read: usize,
    pub edns: Option<Edns>,
    /// Bytes that broke the grammar: a bad label, a pointer loop, a record overrunning
    /// the message. Parsing stopped there.
    pub malformed: bool,
    /// The bytes ended before the counts in the header were satisfied.
    pub cut: bool,
    /// Where parsing stopped (the end of the message, when it parsed whole).
    pub end: usize,
}

impl Message {
    /// The response code, extended by EDNS's upper bits when an OPT record is present.
    pub fn rcode(&self) -> u16 {
        let ext = self.edns.as_ref().map_or(0, |e| u16::from(e.ext_rcode));
        (ext << 4) | u16::from(self.header.rcode())
    }

    pub fn first_question(&self) -> Option<&Question> {
        self.questions.first()
    }
}

/// Parses a whole message, or as much of it as the bytes hold. `None` when even the
/// header is missing.
pub fn parse(msg: &[u8]) -> Option<Message> {
    let header = Header::parse(msg)?;
    let mut m = Message {
        header,
        questions: Vec::new(),
        answers: Vec::new(),
        answers_read: 0,
        edns: None,
        malformed: false,
        cut: false,
        end: HEADER_LEN,
    };
    let mut pos = HEADER_LEN;
    let fail = |m: &mut Message, e: ParseError, pos: usize| {
        if e == ParseError::Short {
            m.cut = true;
        } else {
            m.malformed = true;
        }
        m.end = pos;
    };
    for _ in 0..header.qdcount {
        let mut name = String::new();
        match read_name(msg, pos, Some(&mut name)) {
            Ok(p) => pos = p,
            Err(e) => {
                fail(&mut m, e, pos);
                return Some(m);
            }
        }
        let Some(q) = msg.get(pos..pos + 4) else {
            fail(&mut m, ParseError::Short, pos);
            return Some(m);
        };
        pos += 4;
        if m.questions.len() < MAX_QUESTIONS_KEPT {
            m.questions.push(Question {
                name,
                qtype: u16::from_be_bytes([q[0], q[1]]),
                qclass: u16::from_be_bytes([q[2], q[3]]),
            });
        }
    }
    let sections = [
        (header.ancount, Section::Answer),
        (header.nscount, Section::Authority),
        (header.arcount, Section::Additional),
    ];
    for (count, section) in sections {
        for _ in 0..count {
            match read_record(msg, pos, section, &mut m) {
                Ok(p) => pos = p,
                Err(e) => {
                    fail(&mut m, e, pos);
                    return Some(m);
                }
            }
        }
    }
    m.end = pos;
    Some(m)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Answer,
    Authority,
    Additional,
}

fn read_record(
    msg: &[u8],
    pos: usize,
    section: Section,
    m: &mut Message,
) -> Result<usize, ParseError> {
    let keep = section == Section::Answer && m.answers.len() < MAX_ANSWERS_KEPT;
    let mut name = String::new();
    let pos = read_name(msg, pos, keep.then_some(&mut name))?;
    let fixed = msg.get(pos..pos + 10).ok_or(ParseError::Short)?;
    let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let class = u16::from_be_bytes([fixed[2], fixed[3]]);
    let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
    let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let start = pos + 10;
    let end = start + rdlen;
    if end > msg.len() {
        return Err(ParseError::Short);
    }
    match section {
        Section::Answer => {
            m.answers_read += 1;
            if keep {
                m.answers.push(Record {
                    name,
                    rtype,
                    class,
                    ttl,
                    data: rdata_text(msg, rtype, start, end),
                });
            }
        }
        Section::Additional if rtype == 41 && m.edns.is_none() => {
            m.edns = Some(edns(class, ttl, &msg[start..end]));
        }
        _ => {}
    }
    Ok(end)
}

fn edns(class: u16, ttl: u32, rdata: &[u8]) -> Edns {
    let mut e = Edns {
        udp_size: class,
        ext_rcode: (ttl >> 24) as u8,
        version: (ttl >> 16) as u8,
        dnssec_ok: ttl & 0x8000 != 0,
        ..Edns::default()
    };
    let mut opts = rdata;
    while opts.len() >= 4 {
        let code = u16::from_be_bytes([opts[0], opts[1]]);
        let len = usize::from(u16::from_be_bytes([opts[2], opts[3]]));
        let Some(data) = opts.get(4..4 + len) else {
            break;
        };
        match code {
            8 => e.client_subnet = client_subnet(data),
            15 if data.len() >= 2 => {
                let info = u16::from_be_bytes([data[0], data[1]]);
                e.ede = Some((info, String::from_utf8_lossy(&data[2..]).into_owned()));
            }
            _ => {}
        }
        opts = &opts[4 + len..];
    }
    e
}

/// ECS option data: family, source prefix, scope prefix, address cut to the prefix.
fn client_subnet(d: &[u8]) -> Option<String> {
    let family = u16::from_be_bytes([*d.first()?, *d.get(1)?]);
    let (source, scope) = (*d.get(2)?, *d.get(3)?);
    let addr = d.get(4..)?;
    let ip = match family {
        1 => {
            let mut b = [0u8; 4];
            let n = addr.len().min(4);
            b[..n].copy_from_slice(&addr[..n]);
            Ipv4Addr::from(b).to_string()
        }
        2 => {
            let mut b = [0u8; 16];
            let n = addr.len().min(16);
            b[..n].copy_from_slice(&addr[..n]);
            Ipv6Addr::from(b).to_string()
        }
        _ => return None,
    };
    Some(if scope > 0 {
        format!("{ip}/{source}/{scope}")
    } else {
        format!("{ip}/{source}")
    })
}

/// Reads the name at `pos`; returns the position after it (after its first pointer,
/// when it has one). With `out`, the name is appended as text: labels joined by dots,
/// no trailing dot, the root as ".".
pub fn read_name(
    msg: &[u8],
    mut pos: usize,
    mut out: Option<&mut String>,
) -> Result<usize, ParseError> {
    let mut after: Option<usize> = None;
    let mut jumps = 0;
    let mut wire_len = 1;
    let mut labels = 0;
    loop {
        let len = *msg.get(pos).ok_or(ParseError::Short)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                if labels == 0
                    && let Some(o) = out.as_deref_mut()
                {
                    o.push('.');
                }
                return Ok(after.unwrap_or(pos + 1));
            }
            0x00 => {
                let n = usize::from(len);
                let label = msg.get(pos + 1..pos + 1 + n).ok_or(ParseError::Short)?;
                wire_len += n + 1;
                if wire_len > MAX_NAME_WIRE_LEN {
                    return Err(ParseError::NameTooLong);
                }
                if let Some(o) = out.as_deref_mut() {
                    if labels > 0 {
                        o.push('.');
                    }
                    push_label(o, label);
                }
                labels += 1;
                pos += 1 + n;
            }
            0xc0 => {
                let low = *msg.get(pos + 1).ok_or(ParseError::Short)?;
                let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                if target >= pos || target < HEADER_LEN {
                    return Err(ParseError::BadPointer);
                }
                jumps += 1;
                if jumps > MAX_COMPRESSION_POINTERS {
                    return Err(ParseError::TooManyPointers);
                }
                after.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(ParseError::BadLabel),
        }
    }
}

/// One label as text: UTF-8 as it is (mDNS instance names are UTF-8 with spaces),
/// dots and backslashes inside a label escaped, other bytes as `\DDD` (RFC 1035 §5.1).
fn push_label(out: &mut String, label: &[u8]) {
    match std::str::from_utf8(label) {
        Ok(s) => {
            for c in s.chars() {
                match c {
                    '.' | '\\' => {
                        out.push('\\');
                        out.push(c);
                    }
                    c if c.is_control() => {
                        let mut b = [0u8; 4];
                        for byte in c.encode_utf8(&mut b).bytes() {
                            let _ = write!(out, "\\{byte:03}");
                        }
                    }
                    c => out.push(c),
                }
            }
        }
        Err(_) => {
            for &b in label {
                match b {
                    b'.' | b'\\' => {
                        out.push('\\');
                        out.push(char::from(b));
                    }
                    0x21..=0x7e => out.push(char::from(b)),
                    _ => {
                        let _ = write!(out, "\\{b:03}");
                    }
                }
            }
        }
    }
}

/// What detection makes of some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Looks {
    Dns {
        response: bool,
        questions: u16,
    },
    /// Plausible so far; the first question is not complete yet.
    Incomplete,
    No,
}

/// Whether `msg`, the start of a message declared `len` bytes long (the datagram, or
/// the TCP length prefix), looks like a DNS message.
///
/// The header must be plausible (a known opcode, counts that `len` can hold), the
/// first question must parse with a known class and a name without control bytes,
/// and, when the bytes hold the whole message, every section must parse and end
/// exactly at its end. A response without questions (mDNS announcements) is
/// accepted only whole and with answers. NetBIOS name service (the DNS format with
/// names encoded as 32 letters A–P) is not DNS.
pub fn looks_like_dns(msg: &[u8], len: usize) -> Looks {
    let whole = msg.len() >= len;
    let msg = &msg[..len.min(msg.len())];
    let more = if whole { Looks::No } else { Looks::Incomplete };
    let Some(h) = Header::parse(msg) else {
        return more;
    };
    if !KNOWN_OPCODES.contains(&h.opcode()) || h.qdcount > MAX_PLAUSIBLE_QUESTIONS {
        return Looks::No;
    }
    // Each question takes at least 5 bytes, each record at least 11.
    let min = HEADER_LEN
        + 5 * usize::from(h.qdcount)
        + 11 * (usize::from(h.ancount) + usize::from(h.nscount) + usize::from(h.arcount));
    if min > len {
        return Looks::No;
    }
    if h.qdcount == 0 {
        if !whole || !h.is_response() || h.ancount == 0 {
            return Looks::No;
        }
    } else {
        let end = match read_name(msg, HEADER_LEN, None) {
            Ok(end) => end,
            Err(ParseError::Short) => return more,
            Err(_) => return Looks::No,
        };
        if !plausible_name(msg, HEADER_LEN) {
            return Looks::No;
        }
        let Some(q) = msg.get(end..end + 4) else {
            return more;
        };
        let qtype = u16::from_be_bytes([q[0], q[1]]);
        let qclass = u16::from_be_bytes([q[2], q[3]]) & 0x7fff;
        if qtype == 0 || !matches!(qclass, 1 | 3 | 4 | 254 | 255) {
            return Looks::No;
        }
    }
    if whole {
        match parse(msg) {
            Some(m) if !m.malformed && !m.cut && m.end == msg.len() => {}
            _ => return Looks::No,
        }
    }
    Looks::Dns {
        response: h.is_response(),
        questions: h.qdcount,
    }
}

/// The first question's name, written in place (no pointer: nothing precedes it),
/// of printable labels, and not NetBIOS-encoded.
fn plausible_name(msg: &[u8], mut pos: usize) -> bool {
    let mut first = true;
    loop {
        let Some(&len) = msg.get(pos) else {
            return false;
        };
        if len == 0 {
            return true;
        }
        if len & 0xc0 != 0 {
            return false;
        }
        let Some(label) = msg.get(pos + 1..pos + 1 + usize::from(len)) else {
            return false;
        };
        if label.iter().any(|&b| b < 0x20 || b == 0x7f) {
            return false;
        }
        if first && label.len() == 32 && label.iter().all(|b| (b'A'..=b'P').contains(b)) {
            return false;
        }
        first = false;
        pos += 1 + usize::from(len);
    }
}

/// The data of a record in presentation format, cut at [`MAX_RDATA_TEXT`]. Data that
/// does not parse as its type says is shown in the generic form `\# len hex` (RFC 3597).
fn rdata_text(msg: &[u8], rtype: u16, start: usize, end: usize) -> String {
    let mut s = String::new();
    if format_rdata(&mut s, msg, rtype, start, end).is_none() {
        s.clear();
        generic(&mut s, &msg[start..end]);
    }
    cap(s)
}

fn cap(mut s: String) -> String {
    if s.chars().count() > MAX_RDATA_TEXT {
        let cut = s
            .char_indices()
            .nth(MAX_RDATA_TEXT)
            .map_or(s.len(), |(i, _)| i);
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn generic(s: &mut String, d: &[u8]) {
    let _ = write!(s, "\\# {}", d.len());
    if !d.is_empty() {
        s.push(' ');
        hex(s, d);
    }
}

/// Bytes of rdata, never past its end.
struct Rd<'a> {
    msg: &'a [u8],
    pos: usize,
    end: usize,
}

impl Rd<'_> {
    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        if self.pos + n > self.end {
            return None;
        }
        let b = &self.msg[self.pos..self.pos + n];
        self.pos += n;
        Some(b)
    }
    fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A name, possibly compressed (pointers may leave the rdata); its in-place part
    /// must end within the rdata.
    fn name(&mut self, s: &mut String) -> Option<()> {
        let after = read_name(self.msg, self.pos, Some(s)).ok()?;
        if after > self.end {
            return None;
        }
        self.pos = after;
        Some(())
    }
    fn rest(&mut self) -> &[u8] {
        let b = &self.msg[self.pos..self.end];
        self.pos = self.end;
        b
    }
    fn done(&self) -> bool {
        self.pos == self.end
    }
    /// A character-string: a length byte and that many bytes, quoted.
    fn string(&mut self, s: &mut String) -> Option<()> {
        let n = usize::from(self.u8()?);
        let b = self.bytes(n)?;
        quoted(s, b);
        Some(())
    }
}

fn quoted(s: &mut String, b: &[u8]) {
    s.push('"');
    for ch in String::from_utf8_lossy(b).chars() {
        match ch {
            '"' | '\\' => {
                s.push('\\');
                s.push(ch);
            }
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(s, "\\{byte:03}");
                }
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

fn hex(s: &mut String, b: &[u8]) {
    for x in b {
        let _ = write!(s, "{x:02X}");
    }
}

fn base64(s: &mut String, b: &[u8]) {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in b.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(chunk.get(2).copied().unwrap_or(0));
        for i in 0..4 {
            if i <= n {
                s.push(char::from(A[((v >> (18 - 6 * i)) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
}

/// A type bitmap (NSEC, NSEC3, CSYNC) as type names.
fn type_bitmap(s: &mut String, mut b: &[u8]) -> Option<()> {
    while !b.is_empty() {
        let window = u16::from(*b.first()?);
        let len = usize::from(*b.get(1)?);
        let bits = b.get(2..2 + len)?;
        for (i, byte) in bits.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    let t = window * 256 + (i as u16) * 8 + bit;
                    s.push(' ');
                    s.push_str(&type_name(t));
                }
            }
        }
        b = &b[2 + len..];
    }
    Some(())
}

/// Seconds since 1970 as YYYYMMDDHHMMSS (RRSIG validity), in UTC.
fn timestamp(s: &mut String, secs: u32) {
    let days = i64::from(secs / 86_400);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let _ = write!(
        s,
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
}

fn format_rdata(s: &mut String, msg: &[u8], rtype: u16, start: usize, end: usize) -> Option<()> {
    let mut r = Rd {
        msg,
        pos: start,
        end,
    };
    match rtype {
        // A
        1 => {
            let b = r.bytes(4)?;
            let _ = write!(s, "{}", Ipv4Addr::new(b[0], b[1], b[2], b[3]));
        }
        // AAAA
        28 => {
            let b: [u8; 16] = r.bytes(16)?.try_into().ok()?;
            let _ = write!(s, "{}", Ipv6Addr::from(b));
        }
        // NS, CNAME, PTR, DNAME, MB, MG, MR
        2 | 5 | 12 | 39 | 7 | 8 | 9 => r.name(s)?,
        // SOA
        6 => {
            r.name(s)?;
            s.push(' ');
            r.name(s)?;
            for _ in 0..5 {
                let _ = write!(s, " {}", r.u32()?);
            }
        }
        // MX, KX, RT, AFSDB: preference and a name
        15 | 36 | 21 | 18 => {
            let _ = write!(s, "{} ", r.u16()?);
            r.name(s)?;
        }
        // TXT, SPF, HINFO: character-strings
        16 | 99 | 13 => {
            let mut first = true;
            while !r.done() {
                if !first {
                    s.push(' ');
                }
                first = false;
                r.string(s)?;
            }
        }
        // SRV
        33 => {
            let _ = write!(s, "{} {} {} ", r.u16()?, r.u16()?, r.u16()?);
            r.name(s)?;
        }
        // NAPTR
        35 => {
            let _ = write!(s, "{} {} ", r.u16()?, r.u16()?);
            for _ in 0..3 {
                r.string(s)?;
                s.push(' ');
            }
            r.name(s)?;
        }
        // CAA
        257 => {
            let flags = r.u8()?;
            let n = usize::from(r.u8()?);
            let tag = String::from_utf8_lossy(r.bytes(n)?).into_owned();
            let _ = write!(s, "{flags} {tag} ");
            let value = r.rest().to_vec();
            quoted(s, &value);
        }
        // DS, CDS
        43 | 59 => {
            let _ = write!(s, "{} {} {} ", r.u16()?, r.u8()?, r.u8()?);
            hex(s, r.rest());
        }
        // DNSKEY, CDNSKEY, KEY
        48 | 60 | 25 => {
            let _ = write!(s, "{} {} {} ", r.u16()?, r.u8()?, r.u8()?);
            base64(s, r.rest());
        }
        // RRSIG, SIG
        46 | 24 => {
            let covered = type_name(r.u16()?);
            let (alg, labels, ttl) = (r.u8()?, r.u8()?, r.u32()?);
            let _ = write!(s, "{covered} {alg} {labels} {ttl} ");
            timestamp(s, r.u32()?);
            s.push(' ');
            timestamp(s, r.u32()?);
            let _ = write!(s, " {} ", r.u16()?);
            r.name(s)?;
            s.push(' ');
            base64(s, r.rest());
        }
        // NSEC
        47 => {
            r.name(s)?;
            type_bitmap(s, r.rest())?;
        }
        // NSEC3
        50 => {
            let _ = write!(s, "{} {} {} ", r.u8()?, r.u8()?, r.u16()?);
            let salt_len = usize::from(r.u8()?);
            match r.bytes(salt_len)? {
                [] => s.push('-'),
                salt => hex(s, salt),
            }
            let hash_len = usize::from(r.u8()?);
            s.push(' ');
            hex(s, r.bytes(hash_len)?);
            type_bitmap(s, r.rest())?;
        }
        // NSEC3PARAM
        51 => {
            let _ = write!(s, "{} {} {} ", r.u8()?, r.u8()?, r.u16()?);
            let salt_len = usize::from(r.u8()?);
            match r.bytes(salt_len)? {
                [] => s.push('-'),
                salt => hex(s, salt),
            }
        }
        // TLSA, SMIMEA
        52 | 53 => {
            let _ = write!(s, "{} {} {} ", r.u8()?, r.u8()?, r.u8()?);
            hex(s, r.rest());
        }
        // SSHFP
        44 => {
            let _ = write!(s, "{} {} ", r.u8()?, r.u8()?);
            hex(s, r.rest());
        }
        // SVCB, HTTPS
        64 | 65 => svcb(s, &mut r)?,
        // OPT only belongs in the additional section; anything else stays generic.
        _ => return None,
    }
    r.done().then_some(())
}

/// SVCB/HTTPS (RFC 9460): priority, target, then the parameters as key=value.
fn svcb(s: &mut String, r: &mut Rd<'_>) -> Option<()> {
    let _ = write!(s, "{} ", r.u16()?);
    r.name(s)?;
    while !r.done() {
        let key = r.u16()?;
        let len = usize::from(r.u16()?);
        let v = r.bytes(len)?.to_vec();
        s.push(' ');
        match key {
            0 => {
                s.push_str("mandatory=");
                let keys: Vec<String> = v
                    .chunks_exact(2)
                    .map(|k| svc_key_name(u16::from_be_bytes([k[0], k[1]])))
                    .collect();
                s.push_str(&keys.join(","));
            }
            1 => {
                s.push_str("alpn=");
                let mut rest = &v[..];
                let mut first = true;
                while let Some((&n, tail)) = rest.split_first() {
                    let id = tail.get(..usize::from(n))?;
                    if !first {
                        s.push(',');
                    }
                    first = false;
                    s.push_str(&String::from_utf8_lossy(id));
                    rest = &tail[usize::from(n)..];
                }
            }
            2 => s.push_str("no-default-alpn"),
            3 if v.len() == 2 => {
                let _ = write!(s, "port={}", u16::from_be_bytes([v[0], v[1]]));
            }
            4 => {
                s.push_str("ipv4hint=");
                let ips: Vec<String> = v
                    .chunks_exact(4)
                    .map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string())
                    .collect();
                s.push_str(&ips.join(","));
            }
            5 => {
                s.push_str("ech=");
                base64(s, &v);
            }
            6 => {
                s.push_str("ipv6hint=");
                let ips: Vec<String> = v
                    .chunks_exact(16)
                    .filter_map(|b| <[u8; 16]>::try_from(b).ok())
                    .map(|b| Ipv6Addr::from(b).to_string())
                    .collect();
                s.push_str(&ips.join(","));
            }
            7 => {
                s.push_str("dohpath=");
                s.push_str(&String::from_utf8_lossy(&v));
            }
            k => {
                let _ = write!(s, "key{k}=");
                hex(s, &v);
            }
        }
    }
    Some(())
}

fn svc_key_name(k: u16) -> String {
    match k {
        0 => "mandatory".into(),
        1 => "alpn".into(),
        2 => "no-default-alpn".into(),
        3 => "port".into(),
        4 => "ipv4hint".into(),
        5 => "ech".into(),
        6 => "ipv6hint".into(),
        7 => "dohpath".into(),
        k => format!("key{k}"),
    }
}

/// The mnemonic of a record type (IANA registry), or `TYPE<n>` (RFC 3597).
pub fn type_name(t: u16) -> String {
    let name = match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP-PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        31 => "EID",
        32 => "NIMLOC",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        40 => "SINK",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        56 => "NINFO",
        57 => "RKEY",
        58 => "TALINK",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        100 => "UINFO",
        101 => "UID",
        102 => "GID",
        103 => "UNSPEC",
        104 => "NID",
        105 => "L32",
        106 => "L64",
        107 => "LP",
        108 => "EUI48",
        109 => "EUI64",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        258 => "AVC",
        259 => "DOA",
        260 => "AMTRELAY",
        32768 => "TA",
        32769 => "DLV",
        n => return format!("TYPE{n}"),
    };
    name.to_string()
}

/// The mnemonic of a response code (IANA registry, EDNS-extended), or `RCODE<n>`.
pub fn rcode_name(r: u16) -> String {
    let name = match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        11 => "DSOTYPENI",
        16 => "BADVERS",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        n => return format!("RCODE{n}"),
    };
    name.to_string()
}

/// The mnemonic of an opcode.
pub fn opcode_name(op: u8) -> String {
    match op {
        0 => "QUERY".into(),
        1 => "IQUERY".into(),
        2 => "STATUS".into(),
        4 => "NOTIFY".into(),
        5 => "UPDATE".into(),
        6 => "DSO".into(),
        n => format!("OPCODE{n}"),
    }
}

/// The mnemonic of a class (without the mDNS top bit).
pub fn class_name(c: u16) -> String {
    match c & 0x7fff {
        1 => "IN".into(),
        3 => "CH".into(),
        4 => "HS".into(),
        254 => "NONE".into(),
        255 => "ANY".into(),
        n => format!("CLASS{n}"),
    }
}
