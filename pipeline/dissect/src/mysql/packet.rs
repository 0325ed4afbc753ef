//! MySQL and MariaDB client/server protocol packets: a pure reader over one packet.
//!
//! A packet is a 3-byte little-endian payload length, a sequence number, then the
//! payload. With the compressed protocol, packets travel inside compressed packets:
//! a 3-byte compressed length, a sequence number, a 3-byte uncompressed length (0 when
//! the payload was sent as is), then the zlib (or zstd) payload.

/// Largest payload of one packet; a payload this long continues in the next packet.
pub const MAX_PAYLOAD: usize = 0xFF_FFFF;
/// Bytes of query text kept (`path`, `mysql_query`).
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

pub const CLIENT_LONG_PASSWORD: u32 = 1;
pub const CLIENT_CONNECT_WITH_DB: u32 = 1 << 3;
pub const CLIENT_COMPRESS: u32 = 1 << 5;
pub const CLIENT_PROTOCOL_41: u32 = 1 << 9;
pub const CLIENT_SSL: u32 = 1 << 11;
pub const CLIENT_SECURE_CONNECTION: u32 = 1 << 15;
pub const CLIENT_PLUGIN_AUTH: u32 = 1 << 19;
pub const CLIENT_CONNECT_ATTRS: u32 = 1 << 20;
pub const CLIENT_PLUGIN_AUTH_LENENC: u32 = 1 << 21;
pub const CLIENT_DEPRECATE_EOF: u32 = 1 << 24;
pub const CLIENT_OPTIONAL_RESULTSET_METADATA: u32 = 1 << 25;
pub const CLIENT_ZSTD_COMPRESSION: u32 = 1 << 26;
pub const CLIENT_QUERY_ATTRIBUTES: u32 = 1 << 27;
/// MariaDB's extended capability: the server may skip column metadata it knows the
/// client has cached (a flag byte follows the column count).
pub const MARIADB_CLIENT_CACHE_METADATA: u32 = 1 << 4;

/// Server status: another result set follows.
pub const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;

/// The 4-byte packet header: payload length and sequence number.
pub fn header(b: &[u8]) -> Option<(usize, u8)> {
    let h = b.get(..4)?;
    Some((
        usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16,
        h[3],
    ))
}

/// The 7-byte compressed packet header: compressed length, sequence number,
/// uncompressed length.
pub fn compressed_header(b: &[u8]) -> Option<(usize, u8, usize)> {
    let h = b.get(..7)?;
    let le3 = |x: &[u8]| usize::from(x[0]) | usize::from(x[1]) << 8 | usize::from(x[2]) << 16;
    Some((le3(&h[..3]), h[3], le3(&h[4..7])))
}

/// A reader over a payload.
pub struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b, at: 0 }
    }

    pub fn rest(&self) -> &'a [u8] {
        self.b.get(self.at..).unwrap_or_default()
    }

    pub fn skip(&mut self, n: usize) -> Option<()> {
        if self.at + n > self.b.len() {
            return None;
        }
        self.at += n;
        Some(())
    }

    pub fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.at)?;
        self.at += 1;
        Some(v)
    }

    pub fn u16(&mut self) -> Option<u16> {
        let s = self.b.get(self.at..self.at + 2)?;
        self.at += 2;
        Some(u16::from_le_bytes([s[0], s[1]]))
    }

    pub fn u32(&mut self) -> Option<u32> {
        let s = self.b.get(self.at..self.at + 4)?;
        self.at += 4;
        Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    /// A length-encoded integer; `None` for the NULL marker (0xFB) or a cut packet.
    pub fn lenenc(&mut self) -> Option<u64> {
        let first = self.u8()?;
        match first {
            0..=0xFA => Some(u64::from(first)),
            0xFC => self.u16().map(u64::from),
            0xFD => {
                let s = self.bytes(3)?;
                Some(u64::from(s[0]) | u64::from(s[1]) << 8 | u64::from(s[2]) << 16)
            }
            0xFE => {
                let s = self.bytes(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                Some(u64::from_le_bytes(a))
            }
            _ => None,
        }
    }

    pub fn lenenc_bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.lenenc()?).ok()?;
        self.bytes(n)
    }

    pub fn cstr(&mut self) -> Option<&'a [u8]> {
        let rest = self.b.get(self.at..)?;
        let end = memchr::memchr(0, rest)?;
        self.at += end + 1;
        Some(&rest[..end])
    }
}

/// Lossy UTF-8, cut at `max` bytes without a broken character at the end.
pub fn lossy(b: &[u8], max: usize) -> String {
    let mut s = String::from_utf8_lossy(&b[..b.len().min(max)]).into_owned();
    if b.len() > max {
        while s.ends_with('\u{FFFD}') {
            s.pop();
        }
    }
    s
}

/// The server's first packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Greeting {
    pub version: String,
    pub connection_id: u32,
    pub caps: u32,
    /// MariaDB's extended capabilities (when the server is MariaDB).
    pub ext_caps: u32,
    pub auth_plugin: Option<String>,
}

/// A protocol-10 greeting; `None` when the payload is not one.
pub fn parse_greeting(p: &[u8]) -> Option<Greeting> {
    let mut r = Reader::new(p);
    if r.u8()? != 10 {
        return None;
    }
    let version = r.cstr()?;
    if version.is_empty() || version.len() > 64 || !version.iter().all(|c| c.is_ascii_graphic()) {
        return None;
    }
    let mut g = Greeting {
        version: lossy(version, 64),
        connection_id: r.u32()?,
        ..Greeting::default()
    };
    r.skip(8)?;
    r.skip(1)?;
    g.caps = u32::from(r.u16()?);
    if r.rest().is_empty() {
        return Some(g);
    }
    let _charset = r.u8()?;
    let _status = r.u16()?;
    g.caps |= u32::from(r.u16()?) << 16;
    let auth_len = r.u8()?;
    let reserved = r.bytes(10)?;
    if g.caps & CLIENT_LONG_PASSWORD == 0 {
        // MariaDB puts its extended capabilities where MySQL has filler.
        g.ext_caps = u32::from_le_bytes([reserved[6], reserved[7], reserved[8], reserved[9]]);
    }
    if g.caps & CLIENT_SECURE_CONNECTION != 0 {
        let n = usize::from(auth_len).saturating_sub(8).max(13);
        r.skip(n.min(r.rest().len()))?;
    }
    if g.caps & CLIENT_PLUGIN_AUTH != 0 {
        g.auth_plugin = Some(lossy(r.cstr().unwrap_or(r.rest()), 64));
    }
    Some(g)
}

/// The client's answer to the greeting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Login {
    pub caps: u32,
    pub ext_caps: u32,
    /// Only capabilities, asking to switch to TLS.
    pub ssl_request: bool,
    pub user: Option<String>,
    pub database: Option<String>,
    pub auth_plugin: Option<String>,
    /// `program_name` or `_client_name` from the connection attributes.
    pub program: Option<String>,
}

pub fn parse_login(p: &[u8]) -> Login {
    let mut r = Reader::new(p);
    let mut l = Login::default();
    let Some(lo) = r.u16() else { return l };
    l.caps = u32::from(lo);
    if l.caps & CLIENT_PROTOCOL_41 == 0 {
        // HandshakeResponse320: capabilities (2), max packet (3), user.
        if r.skip(3).is_some() {
            l.user = r.cstr().map(|u| lossy(u, 128));
        }
        return l;
    }
    let Some(hi) = r.u16() else { return l };
    l.caps |= u32::from(hi) << 16;
    if r.skip(4 + 1).is_none() {
        return l;
    }
    let Some(filler) = r.bytes(23) else { return l };
    l.ext_caps = u32::from_le_bytes([filler[19], filler[20], filler[21], filler[22]]);
    if r.rest().is_empty() {
        l.ssl_request = l.caps & CLIENT_SSL != 0;
        return l;
    }
    l.user = r.cstr().map(|u| lossy(u, 128));
    let auth = if l.caps & CLIENT_PLUGIN_AUTH_LENENC != 0 {
        r.lenenc_bytes()
    } else if l.caps & CLIENT_SECURE_CONNECTION != 0 {
        r.u8().and_then(|n| r.bytes(usize::from(n)))
    } else {
        r.cstr()
    };
    if auth.is_none() {
        return l;
    }
    if l.caps & CLIENT_CONNECT_WITH_DB != 0 {
        l.database = r.cstr().map(|d| lossy(d, 128)).filter(|d| !d.is_empty());
    }
    if l.caps & CLIENT_PLUGIN_AUTH != 0 {
        l.auth_plugin = r.cstr().map(|d| lossy(d, 64));
    }
    if l.caps & CLIENT_CONNECT_ATTRS != 0
        && let Some(attrs) = r.lenenc_bytes()
    {
        let mut a = Reader::new(attrs);
        while let (Some(k), Some(v)) = (a.lenenc_bytes(), a.lenenc_bytes()) {
            if k == b"program_name" || (k == b"_client_name" && l.program.is_none()) {
                l.program = Some(lossy(v, 64));
            }
        }
    }
    l
}

/// An OK packet (or an EOF-terminator in its OK form): affected rows, status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ok {
    pub affected_rows: u64,
    pub status: u16,
}

pub fn parse_ok(p: &[u8]) -> Ok {
    let mut r = Reader::new(p.get(1..).unwrap_or_default());
    let affected_rows = r.lenenc().unwrap_or(0);
    let _insert_id = r.lenenc();
    Ok {
        affected_rows,
        status: r.u16().unwrap_or(0),
    }
}

/// Status flags of an EOF packet (`0xFE`, warnings, status).
pub fn eof_status(p: &[u8]) -> u16 {
    if p.len() == 5 {
        u16::from_le_bytes([p[3], p[4]])
    } else {
        parse_ok(p).status
    }
}

/// An ERR packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Err {
    pub code: u16,
    pub sqlstate: Option<String>,
    pub message: String,
}

impl Err {
    /// `code (SQLSTATE): message` for `db_error`.
    pub fn text(&self) -> String {
        match &self.sqlstate {
            Some(s) => format!("{} ({s}): {}", self.code, self.message),
            None => format!("{}: {}", self.code, self.message),
        }
    }
}

pub fn parse_err(p: &[u8]) -> Err {
    let mut r = Reader::new(p.get(1..).unwrap_or_default());
    let code = r.u16().unwrap_or(0);
    let rest = r.rest();
    let (sqlstate, message) = match rest.split_first() {
        Some((b'#', tail)) if tail.len() >= 5 => (Some(lossy(&tail[..5], 5)), &tail[5..]),
        _ => (None, rest),
    };
    Err {
        code,
        sqlstate,
        message: lossy(message, 1024),
    }
}

/// What the server sends back for a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// One OK, ERR or EOF packet.
    Status,
    /// OK, ERR, or result sets (text or binary).
    ResultSet,
    /// Rows and a terminator (COM_STMT_FETCH).
    Rows,
    /// A prepared statement's id and its parameter and column definitions.
    Prepare,
    /// Column definitions up to EOF (COM_FIELD_LIST).
    Fields,
    /// One packet of text (COM_STATISTICS).
    Text,
    /// An authentication exchange up to OK or ERR (COM_CHANGE_USER).
    Auth,
    /// A stream that lasts until an EOF or ERR (binlog dump).
    Stream,
    /// Nothing.
    None,
}

/// Name and reply of a command byte; `None` when no command has that byte.
pub fn command(b: u8) -> Option<(&'static str, Reply)> {
    Some(match b {
        0x00 => ("Sleep", Reply::Status),
        0x01 => ("Quit", Reply::None),
        0x02 => ("InitDB", Reply::Status),
        0x03 => ("Query", Reply::ResultSet),
        0x04 => ("FieldList", Reply::Fields),
        0x05 => ("CreateDB", Reply::Status),
        0x06 => ("DropDB", Reply::Status),
        0x07 => ("Refresh", Reply::Status),
        0x08 => ("Shutdown", Reply::Status),
        0x09 => ("Statistics", Reply::Text),
        0x0A => ("ProcessInfo", Reply::ResultSet),
        0x0B => ("Connect", Reply::Status),
        0x0C => ("ProcessKill", Reply::Status),
        0x0D => ("Debug", Reply::Status),
        0x0E => ("Ping", Reply::Status),
        0x0F => ("Time", Reply::Status),
        0x10 => ("DelayedInsert", Reply::Status),
        0x11 => ("ChangeUser", Reply::Auth),
        0x12 => ("BinlogDump", Reply::Stream),
        0x13 => ("TableDump", Reply::Stream),
        0x14 => ("ConnectOut", Reply::Status),
        0x15 => ("RegisterSlave", Reply::Status),
        0x16 => ("StmtPrepare", Reply::Prepare),
        0x17 => ("StmtExecute", Reply::ResultSet),
        0x18 => ("StmtSendLongData", Reply::None),
        0x19 => ("StmtClose", Reply::None),
        0x1A => ("StmtReset", Reply::Status),
        0x1B => ("SetOption", Reply::Status),
        0x1C => ("StmtFetch", Reply::Rows),
        0x1D => ("Daemon", Reply::Status),
        0x1E => ("BinlogDumpGtid", Reply::Stream),
        0x1F => ("ResetConnection", Reply::Status),
        // MariaDB's array binding.
        0xFA => ("StmtBulkExecute", Reply::ResultSet),
        _ => return None,
    })
}

/// The statement id a COM_STMT_* command names.
pub fn stmt_id(payload: &[u8]) -> Option<u32> {
    Reader::new(payload.get(1..)?).u32()
}

/// Query text of COM_QUERY (payload after the command byte), without the query
/// attributes that precede it when they were negotiated (or, on a connection joined
/// mid-way, when the bytes say so).
pub fn query_text(body: &[u8], attributes: Option<bool>) -> &[u8] {
    let strip = match attributes {
        Some(a) => a,
        // An empty attribute set is `00 01`: never the start of a query.
        None => body.starts_with(&[0, 1]),
    };
    if !strip {
        return body;
    }
    let mut r = Reader::new(body);
    let (Some(count), Some(_sets)) = (r.lenenc(), r.lenenc()) else {
        return body;
    };
    if count == 0 {
        return r.rest();
    }
    // Attributes with values: the query follows typed values this reader does not
    // walk; show the bytes from the last NUL-free run that looks like text.
    let rest = r.rest();
    let start = rest.iter().rposition(|&c| c < 0x09).map_or(0, |i| i + 1);
    &rest[start..]
}

/// Text a query is made of: no control bytes other than white space.
pub fn plausible_text(b: &[u8]) -> bool {
    !b.is_empty()
        && b.iter()
            .all(|&c| c >= 0x20 && c != 0x7f || matches!(c, b'\n' | b'\r' | b'\t'))
}

/// Does a client packet at the start of `b` look like a command (a connection joined
/// mid-way)? `None`: more bytes are needed.
pub fn looks_like_command(b: &[u8]) -> Option<bool> {
    let (len, seq) = header(b)?;
    if seq != 0 || len == 0 || len >= MAX_PAYLOAD {
        return Some(false);
    }
    let &cmd = b.get(4)?;
    // Commands clients send these days (not Sleep, Connect or the other internal
    // ones, whose bytes are too easily met by chance).
    const COMMON: &[u8] = &[
        0x01, 0x02, 0x03, 0x04, 0x09, 0x0C, 0x0E, 0x11, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C,
        0x1F, 0xFA,
    ];
    let Some((_, reply)) = command(cmd).filter(|_| COMMON.contains(&cmd)) else {
        return Some(false);
    };
    let body = &b[5..b.len().min(4 + len)];
    let complete = b.len() >= 4 + len;
    let ok = match cmd {
        0x03 | 0x16 => {
            let text = query_text(body, None);
            plausible_text(text) || (!complete && text.is_empty())
        }
        0x02 | 0x04 | 0x05 | 0x06 => plausible_text(body) || body.is_empty(),
        0x17 => len >= 10,
        0x19 | 0x1A => len == 5,
        0x1C => len == 9,
        0x0E | 0x01 | 0x09 | 0x0A | 0x1F | 0x0F => len == 1,
        _ => reply != Reply::Stream && len < 256,
    };
    if !ok {
        return Some(false);
    }
    if !complete {
        return if b.len() >= 64 { Some(true) } else { None };
    }
    // Nothing may follow but another command packet (commands without a reply are
    // sent back to back) or nothing.
    let rest = &b[4 + len..];
    if rest.is_empty() {
        return Some(true);
    }
    match header(rest) {
        None => Some(true),
        Some((_, s)) => Some(s == 0),
    }
}

/// Does `b` start with server packets of one response, numbered on from `first_seq`
/// or any number (`None`)? Three whole packets at least, or all of `b`.
pub fn looks_like_replies(b: &[u8]) -> Option<bool> {
    let mut at = 0;
    let mut expect: Option<u8> = None;
    let mut n = 0;
    while at < b.len() && n < 8 {
        let Some((len, seq)) = header(&b[at..]) else {
            return if n >= 2 { Some(true) } else { None };
        };
        if len == 0 || len >= MAX_PAYLOAD || expect.is_some_and(|e| e != seq) || seq == 0 {
            return Some(false);
        }
        expect = Some(seq.wrapping_add(1));
        at += 4 + len;
        n += 1;
    }
    if at > b.len() {
        // The last one continues past what is there; a first packet that long is
        // no reply's start.
        return if n >= 3 {
            Some(true)
        } else if n == 1 && at - b.len() > 64 * 1024 {
            Some(false)
        } else {
            None
        };
    }
    Some(n >= 3 || (at == b.len() && n >= 2))
}

/// Does `b` start with a compressed packet that holds a command (a connection
/// joined mid-way, compressed)?
pub fn looks_like_compressed(b: &[u8], client: bool) -> Option<bool> {
    let (clen, _seq, ulen) = compressed_header(b)?;
    if clen == 0 || clen >= MAX_PAYLOAD || ulen >= MAX_PAYLOAD {
        return Some(false);
    }
    let payload = &b[7..b.len().min(7 + clen)];
    // The packet fills the bytes, or another one follows it.
    if b.len() > 7 + clen {
        let next = &b[7 + clen..];
        if next.len() >= 7
            && compressed_header(next)
                .is_none_or(|(n, _, u)| n == 0 || n >= MAX_PAYLOAD || u >= MAX_PAYLOAD)
        {
            return Some(false);
        }
    }
    if ulen == 0 {
        // Sent as is: the packets inside must be whole and plausible.
        if payload.len() < 5 {
            return if b.len() < 7 + clen {
                None
            } else {
                Some(false)
            };
        }
        let (len, _) = header(payload)?;
        if 4 + len > clen {
            return Some(false);
        }
        return if client {
            looks_like_command(&payload[..payload.len().min(4 + len)])
                .map(|x| x && payload.len() >= 4 + len)
        } else {
            Some(len > 0)
        };
    }
    // zlib: CMF 0x78 and a header checksum that divides by 31.
    match payload {
        [0x78, flg, ..] => {
            Some((0x7800u16 | u16::from(*flg)).is_multiple_of(31) && ulen > clen / 2)
        }
        [_, ..] => Some(false),
        [] => None,
    }
}
