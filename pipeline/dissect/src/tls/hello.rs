//! ClientHello and ServerHello bodies (RFC 8446 §4.1.2, §4.1.3; RFC 5246 §7.4.1),
//! and the JA3 and JA4 fingerprints of a ClientHello.
//!
//! Parsing is lenient: a hello cut short (by the buffering limit or a lost segment)
//! yields what its bytes hold, with `truncated` set.

use md5::{Digest as _, Md5};
use sha2::Sha256;

/// Extension types read here.
const EXT_SERVER_NAME: u16 = 0x0000;
const EXT_SUPPORTED_GROUPS: u16 = 0x000a;
const EXT_EC_POINT_FORMATS: u16 = 0x000b;
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
const EXT_ALPN: u16 = 0x0010;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;

/// ServerHello.random of a HelloRetryRequest (RFC 8446 §4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xc4, 0x7b, 0xd2, 0x33, 0x9c, 0xe2, 0xc8, 0xa8, 0x33, 0x9e, 0x0c,
];

/// GREASE values (RFC 8701): 0x0a0a, 0x1a1a, … 0xfafa. Fingerprints leave them out.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClientHello {
    pub legacy_version: u16,
    pub cipher_suites: Vec<u16>,
    /// Extension types in the order sent.
    pub extensions: Vec<u16>,
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    /// The first ALPN protocol as sent (JA4 reads its bytes).
    pub first_alpn: Vec<u8>,
    pub supported_versions: Vec<u16>,
    pub groups: Vec<u16>,
    pub point_formats: Vec<u8>,
    pub signature_algorithms: Vec<u16>,
    /// The body ended before its declared fields did.
    pub truncated: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServerHello {
    pub legacy_version: u16,
    pub cipher_suite: u16,
    /// From the supported_versions extension (TLS 1.3).
    pub selected_version: Option<u16>,
    pub alpn: Option<String>,
    /// A HelloRetryRequest: the client is asked for a second ClientHello.
    pub retry: bool,
    pub truncated: bool,
}

impl ServerHello {
    /// The version the connection uses.
    pub fn version(&self) -> u16 {
        self.selected_version.unwrap_or(self.legacy_version)
    }
}

/// A cursor that reports running out rather than failing.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&v, rest) = self.b.split_first()?;
        self.b = rest;
        Some(v)
    }

    fn u16(&mut self) -> Option<u16> {
        let v = self.b.get(..2)?;
        self.b = &self.b[2..];
        Some(u16::from_be_bytes([v[0], v[1]]))
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let v = self.b.get(..n)?;
        self.b = &self.b[n..];
        Some(v)
    }

    /// A vector with a length prefix of `len_bytes` (1 or 2); cut short, what is there.
    fn vec(&mut self, len_bytes: usize) -> (&'a [u8], bool) {
        let n = match len_bytes {
            1 => self.u8().map(usize::from),
            _ => self.u16().map(usize::from),
        };
        let Some(n) = n else {
            return (&[], true);
        };
        match self.take(n) {
            Some(v) => (v, false),
            None => {
                let v = self.b;
                self.b = &[];
                (v, true)
            }
        }
    }
}

fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

/// Reads a ClientHello body (after the 4-byte handshake header).
pub fn client_hello(body: &[u8]) -> ClientHello {
    let mut h = ClientHello::default();
    let mut r = Reader { b: body };
    let Some(v) = r.u16() else {
        h.truncated = true;
        return h;
    };
    h.legacy_version = v;
    if r.take(32).is_none() {
        h.truncated = true;
        return h;
    }
    let (_session, cut) = r.vec(1);
    if cut {
        h.truncated = true;
        return h;
    }
    let (suites, cut) = r.vec(2);
    h.cipher_suites = u16s(suites);
    if cut {
        h.truncated = true;
        return h;
    }
    let (_compression, cut) = r.vec(1);
    if cut {
        h.truncated = true;
        return h;
    }
    if r.b.is_empty() {
        return h; // no extensions (SSL 3.0 style)
    }
    let (exts, cut) = r.vec(2);
    h.truncated = cut;
    let mut e = Reader { b: exts };
    while !e.b.is_empty() {
        let Some(typ) = e.u16() else {
            h.truncated = true;
            break;
        };
        h.extensions.push(typ);
        let (data, cut) = e.vec(2);
        h.truncated |= cut;
        client_extension(&mut h, typ, data);
    }
    h
}

fn client_extension(h: &mut ClientHello, typ: u16, data: &[u8]) {
    let mut r = Reader { b: data };
    match typ {
        EXT_SERVER_NAME => {
            let (list, _) = r.vec(2);
            let mut l = Reader { b: list };
            while let Some(kind) = l.u8() {
                let (name, cut) = l.vec(2);
                // A name cut short would be a wrong name.
                if kind == 0 && !cut && h.sni.is_none() {
                    h.sni = Some(String::from_utf8_lossy(name).into_owned());
                }
            }
        }
        EXT_ALPN => {
            let (list, _) = r.vec(2);
            let mut l = Reader { b: list };
            while !l.b.is_empty() {
                let (p, cut) = l.vec(1);
                if cut {
                    break;
                }
                if h.alpn.is_empty() {
                    h.first_alpn = p.to_vec();
                }
                h.alpn.push(String::from_utf8_lossy(p).into_owned());
            }
        }
        EXT_SUPPORTED_VERSIONS => h.supported_versions = u16s(r.vec(1).0),
        EXT_SUPPORTED_GROUPS => h.groups = u16s(r.vec(2).0),
        EXT_EC_POINT_FORMATS => h.point_formats = r.vec(1).0.to_vec(),
        EXT_SIGNATURE_ALGORITHMS => h.signature_algorithms = u16s(r.vec(2).0),
        _ => {}
    }
}

/// Reads a ServerHello body (after the 4-byte handshake header).
pub fn server_hello(body: &[u8]) -> ServerHello {
    let mut h = ServerHello::default();
    let mut r = Reader { b: body };
    let (Some(v), Some(random)) = (r.u16(), r.take(32)) else {
        h.truncated = true;
        return h;
    };
    h.legacy_version = v;
    h.retry = random == HRR_RANDOM;
    let (_session, cut) = r.vec(1);
    let (Some(suite), Some(_compression)) = (r.u16(), r.u8()) else {
        h.truncated = true;
        return h;
    };
    h.cipher_suite = suite;
    if cut || r.b.is_empty() {
        h.truncated = cut;
        return h;
    }
    let (exts, cut) = r.vec(2);
    h.truncated = cut;
    let mut e = Reader { b: exts };
    while let Some(typ) = e.u16() {
        let (data, cut) = e.vec(2);
        h.truncated |= cut;
        let mut d = Reader { b: data };
        match typ {
            EXT_SUPPORTED_VERSIONS => h.selected_version = d.u16(),
            EXT_ALPN => {
                let (list, _) = d.vec(2);
                let (p, _) = Reader { b: list }.vec(1);
                h.alpn = Some(String::from_utf8_lossy(p).into_owned());
            }
            _ => {}
        }
    }
    h
}

fn dashed<T: std::fmt::Display>(v: impl Iterator<Item = T>) -> String {
    v.map(|x| x.to_string()).collect::<Vec<_>>().join("-")
}

/// The JA3 string: version, ciphers, extensions, groups, point formats (decimal,
/// GREASE left out).
pub fn ja3_string(h: &ClientHello) -> String {
    let keep = |v: &&u16| !is_grease(**v);
    format!(
        "{},{},{},{},{}",
        h.legacy_version,
        dashed(h.cipher_suites.iter().filter(keep)),
        dashed(h.extensions.iter().filter(keep)),
        dashed(h.groups.iter().filter(keep)),
        dashed(h.point_formats.iter()),
    )
}

/// JA3: the MD5 of [`ja3_string`], in hex.
pub fn ja3(h: &ClientHello) -> String {
    hex(&Md5::digest(ja3_string(h).as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The first 12 hex digits of the SHA-256 of `s`, or zeros for nothing.
fn hash12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".into();
    }
    let mut h = hex(&Sha256::digest(s.as_bytes()));
    h.truncate(12);
    h
}

fn hex4_list(v: impl Iterator<Item = u16>) -> String {
    v.map(|x| format!("{x:04x}")).collect::<Vec<_>>().join(",")
}

/// Short name of a version, as JA4 writes it.
fn ja4_version(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// JA4 (FoxIO): `t13d1516h2_<ciphers hash>_<extensions and signatures hash>`, for a
/// ClientHello over TCP.
pub fn ja4(h: &ClientHello) -> String {
    let ciphers: Vec<u16> = h
        .cipher_suites
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .collect();
    let exts: Vec<u16> = h
        .extensions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .collect();
    let version = h
        .supported_versions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .max()
        .unwrap_or(h.legacy_version);
    let sni = if exts.contains(&EXT_SERVER_NAME) {
        'd'
    } else {
        'i'
    };
    let alpn = match (h.first_alpn.first(), h.first_alpn.last()) {
        (Some(&first), Some(&last)) => {
            if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
                format!("{}{}", first as char, last as char)
            } else {
                let x = format!("{first:02x}{last:02x}");
                format!("{}{}", &x[..1], &x[3..])
            }
        }
        _ => "00".into(),
    };
    let a = format!(
        "t{}{sni}{:02}{:02}{alpn}",
        ja4_version(version),
        ciphers.len().min(99),
        exts.len().min(99)
    );
    let mut sorted_ciphers = ciphers.clone();
    sorted_ciphers.sort_unstable();
    let b = hash12(&hex4_list(sorted_ciphers.into_iter()));
    let mut sorted_exts: Vec<u16> = exts
        .iter()
        .copied()
        .filter(|&e| e != EXT_SERVER_NAME && e != EXT_ALPN)
        .collect();
    sorted_exts.sort_unstable();
    let mut c_in = hex4_list(sorted_exts.into_iter());
    if !h.signature_algorithms.is_empty() {
        c_in.push('_');
        c_in.push_str(&hex4_list(h.signature_algorithms.iter().copied()));
    }
    let c = if exts.is_empty() {
        "000000000000".into()
    } else {
        hash12(&c_in)
    };
    format!("{a}_{b}_{c}")
}

/// A protocol version's name: "TLS 1.3", "SSL 3.0".
pub fn version_name(v: u16) -> String {
    match v {
        0x0304 => "TLS 1.3".into(),
        0x0303 => "TLS 1.2".into(),
        0x0302 => "TLS 1.1".into(),
        0x0301 => "TLS 1.0".into(),
        0x0300 => "SSL 3.0".into(),
        0x0002 => "SSL 2.0".into(),
        _ => format!("0x{v:04x}"),
    }
}

/// A cipher suite's IANA name, or its number in hex.
pub fn cipher_name(v: u16) -> String {
    let name = match v {
        0x0004 => "TLS_RSA_WITH_RC4_128_MD5",
        0x0005 => "TLS_RSA_WITH_RC4_128_SHA",
        0x000a => "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        0x002f => "TLS_RSA_WITH_AES_128_CBC_SHA",
        0x0033 => "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA",
        0x0039 => "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
        0x003c => "TLS_RSA_WITH_AES_128_CBC_SHA256",
        0x003d => "TLS_RSA_WITH_AES_256_CBC_SHA256",
        0x0067 => "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
        0x006b => "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
        0x009c => "TLS_RSA_WITH_AES_128_GCM_SHA256",
        0x009d => "TLS_RSA_WITH_AES_256_GCM_SHA384",
        0x009e => "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        0x009f => "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        0x1304 => "TLS_AES_128_CCM_SHA256",
        0x1305 => "TLS_AES_128_CCM_8_SHA256",
        0xc009 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xc00a => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0xc011 => "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        0xc012 => "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        0xc013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xc014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0xc023 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        0xc024 => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        0xc027 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        0xc028 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xc030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0xcca8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        0xccaa => "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        _ => return format!("0x{v:04x}"),
    };
    name.into()
}
