//! Link layers: find where the IP packet starts.

use crate::DecodeError;

/// LINKTYPE_* values (https://www.tcpdump.org/linktypes.html) Reef reads.
pub mod linktype {
    /// BSD loopback: 4-byte address family in the capturing host's byte order.
    pub const NULL: u16 = 0;
    pub const ETHERNET: u16 = 1;
    /// DLT_RAW as some BSDs number it in pcap files.
    pub const RAW_12: u16 = 12;
    /// DLT_RAW on OpenBSD.
    pub const RAW_14: u16 = 14;
    pub const RAW: u16 = 101;
    /// OpenBSD loopback: like NULL but in network byte order.
    pub const LOOP: u16 = 108;
    pub const LINUX_SLL: u16 = 113;
    pub const IPV4: u16 = 228;
    pub const IPV6: u16 = 229;
    pub const NFLOG: u16 = 239;
    pub const LINUX_SLL2: u16 = 276;
    pub const PPP: u16 = 9;
    pub const PPP_HDLC: u16 = 50;
    pub const C_HDLC: u16 = 104;
    pub const IEEE802_11: u16 = 105;
    pub const IEEE802_11_RADIOTAP: u16 = 127;
}

/// Direction of a frame relative to the capturing host, when the link layer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Addressed to this host (or broadcast/multicast/other host).
    Incoming,
    /// Sent by this host.
    Outgoing,
}

/// The IP packet inside a frame, with what the link layer told about it.
#[derive(Debug, Clone, Copy)]
pub struct LinkFrame<'a> {
    pub ip: &'a [u8],
    pub vlans: [u16; 2],
    pub direction: Option<Direction>,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_QINQ_OLD2: u16 = 0x9200;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MC: u16 = 0x8848;
/// More tags than this is not a real frame.
const MAX_VLAN_TAGS: usize = 4;
/// Bounds the MPLS label walk on garbage.
const MAX_MPLS_LABELS: usize = 8;

const NFULA_PAYLOAD: u16 = 9;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

pub(crate) fn strip(link_type: u16, frame: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    match link_type {
        linktype::ETHERNET => {
            let ethertype = be16(frame, 12).ok_or(DecodeError::TruncatedLink)?;
            ethertype_payload(ethertype, &frame[14..], None)
        }
        linktype::LINUX_SLL => {
            if frame.len() < 16 {
                return Err(DecodeError::TruncatedLink);
            }
            let dir = sll_direction(u16::from(frame[1]) | (u16::from(frame[0]) << 8));
            let proto = be16(frame, 14).ok_or(DecodeError::TruncatedLink)?;
            ethertype_payload(proto, &frame[16..], Some(dir))
        }
        linktype::LINUX_SLL2 => {
            if frame.len() < 20 {
                return Err(DecodeError::TruncatedLink);
            }
            let proto = be16(frame, 0).ok_or(DecodeError::TruncatedLink)?;
            let dir = sll_direction(u16::from(frame[10]));
            ethertype_payload(proto, &frame[20..], Some(dir))
        }
        linktype::RAW | linktype::RAW_12 | linktype::RAW_14 | linktype::IPV4 | linktype::IPV6 => {
            raw_ip(frame, None)
        }
        linktype::NULL | linktype::LOOP => {
            if frame.len() < 4 {
                return Err(DecodeError::TruncatedLink);
            }
            let raw = [frame[0], frame[1], frame[2], frame[3]];
            // The family is in the capturing host's byte order for NULL; a value that
            // only makes sense the other way round was written by the other endianness.
            let family = if link_type == linktype::LOOP {
                u32::from_be_bytes(raw)
            } else {
                let le = u32::from_le_bytes(raw);
                if le <= 0xffff {
                    le
                } else {
                    u32::from_be_bytes(raw)
                }
            };
            match family {
                // AF_INET everywhere; AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, macOS.
                2 | 10 | 24 | 28 | 30 => raw_ip(&frame[4..], None),
                _ => Err(DecodeError::NotIp),
            }
        }
        linktype::NFLOG => nflog_payload(frame),
        linktype::PPP | linktype::PPP_HDLC => {
            // An optional HDLC address/control pair (FF 03) before the protocol.
            let ppp = frame.strip_prefix(&[0xff, 0x03]).unwrap_or(frame);
            ppp_payload(ppp, [0, 0], None)
        }
        linktype::C_HDLC => {
            // Cisco HDLC: address, control, then an ethertype.
            let proto = be16(frame, 2).ok_or(DecodeError::TruncatedLink)?;
            ethertype_payload(proto, &frame[4..], None)
        }
        linktype::IEEE802_11 => wifi_payload(frame),
        linktype::IEEE802_11_RADIOTAP => {
            let len = frame
                .get(2..4)
                .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
                .ok_or(DecodeError::TruncatedLink)?;
            wifi_payload(frame.get(len..).ok_or(DecodeError::TruncatedLink)?)
        }
        other => Err(DecodeError::UnsupportedLinkType(other)),
    }
}

fn sll_direction(packet_type: u16) -> Direction {
    // PACKET_OUTGOING = 4; host, broadcast, multicast and other-host are all incoming.
    if packet_type == 4 {
        Direction::Outgoing
    } else {
        Direction::Incoming
    }
}

fn raw_ip(b: &[u8], direction: Option<Direction>) -> Result<LinkFrame<'_>, DecodeError> {
    match b.first().map(|v| v >> 4) {
        Some(4) | Some(6) => Ok(LinkFrame {
            ip: b,
            vlans: [0, 0],
            direction,
        }),
        Some(_) => Err(DecodeError::NotIp),
        None => Err(DecodeError::TruncatedLink),
    }
}

fn ethertype_payload(
    mut ethertype: u16,
    mut rest: &[u8],
    direction: Option<Direction>,
) -> Result<LinkFrame<'_>, DecodeError> {
    let mut vlans = [0u16; 2];
    let mut tags = 0;
    loop {
        match ethertype {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => {
                return Ok(LinkFrame {
                    ip: rest,
                    vlans,
                    direction,
                });
            }
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD | ETHERTYPE_QINQ_OLD2 => {
                if tags == MAX_VLAN_TAGS {
                    return Err(DecodeError::NotIp);
                }
                let tci = be16(rest, 0).ok_or(DecodeError::TruncatedLink)?;
                if tags < 2 {
                    vlans[tags] = tci & 0x0fff;
                }
                tags += 1;
                ethertype = be16(rest, 2).ok_or(DecodeError::TruncatedLink)?;
                rest = &rest[4..];
            }
            ETHERTYPE_PPPOE_SESSION => {
                // A 6-byte PPPoE header, then PPP.
                let ppp = rest.get(6..).ok_or(DecodeError::TruncatedLink)?;
                return ppp_payload(ppp, vlans, direction);
            }
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MC => {
                for _ in 0..MAX_MPLS_LABELS {
                    let label = rest.get(..4).ok_or(DecodeError::TruncatedLink)?;
                    rest = &rest[4..];
                    if label[2] & 1 == 1 {
                        // Bottom of stack: the payload's version nibble says what it is.
                        return raw_ip(rest, direction).map(|mut f| {
                            f.vlans = vlans;
                            f
                        });
                    }
                }
                return Err(DecodeError::NotIp);
            }
            // 802.3 length field: only LLC/SNAP carrying an ethertype can hold IP.
            len if len < 0x0600 && rest.get(..6) == Some(&[0xaa, 0xaa, 0x03, 0, 0, 0]) => {
                ethertype = be16(rest, 6).ok_or(DecodeError::TruncatedLink)?;
                rest = &rest[8..];
            }
            _ => return Err(DecodeError::NotIp),
        }
    }
}

/// PPP: the protocol field is one byte when it was compressed (an odd first byte, PFC)
/// and two otherwise.
fn ppp_payload(
    b: &[u8],
    vlans: [u16; 2],
    direction: Option<Direction>,
) -> Result<LinkFrame<'_>, DecodeError> {
    let first = *b.first().ok_or(DecodeError::TruncatedLink)?;
    let (proto, rest) = if first & 1 == 1 {
        (u16::from(first), &b[1..])
    } else {
        (be16(b, 0).ok_or(DecodeError::TruncatedLink)?, &b[2..])
    };
    match proto {
        0x0021 | 0x0057 => raw_ip(rest, direction).map(|mut f| {
            f.vlans = vlans;
            f
        }),
        _ => Err(DecodeError::NotIp),
    }
}

/// An 802.11 data frame: the MAC header (its length depends on the addressing and
/// QoS fields), then LLC/SNAP with an ethertype. Encrypted frames carry no readable IP.
fn wifi_payload(frame: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    let fc = frame.get(..2).ok_or(DecodeError::TruncatedLink)?;
    let (kind, subtype, flags) = ((fc[0] >> 2) & 3, fc[0] >> 4, fc[1]);
    if kind != 2 || subtype & 0x4 != 0 || flags & 0x40 != 0 {
        return Err(DecodeError::NotIp); // not data, no payload, or protected
    }
    let mut len = 24;
    if flags & 0x03 == 0x03 {
        len += 6; // four addresses (WDS)
    }
    if subtype & 0x8 != 0 {
        len += 2; // QoS control
        if flags & 0x80 != 0 {
            len += 4; // HT control
        }
    }
    let llc = frame.get(len..).ok_or(DecodeError::TruncatedLink)?;
    match llc.get(..6) {
        Some([0xaa, 0xaa, 0x03, 0, 0, 0]) | Some([0xaa, 0xaa, 0x03, 0, 0, 0xf8]) => {
            let proto = be16(llc, 6).ok_or(DecodeError::TruncatedLink)?;
            ethertype_payload(proto, &llc[8..], None)
        }
        _ => Err(DecodeError::NotIp),
    }
}

/// NFLOG: a 4-byte header then TLVs whose length and type are in the capturing host's
/// byte order (the values are big-endian). The packet is the NFULA_PAYLOAD TLV.
fn nflog_payload(frame: &[u8]) -> Result<LinkFrame<'_>, DecodeError> {
    if frame.len() < 4 {
        return Err(DecodeError::TruncatedLink);
    }
    let family = frame[0];
    let mut rest = &frame[4..];
    while rest.len() >= 4 {
        let le_len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let be_len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let little = (4..=rest.len()).contains(&le_len);
        let (len, tlv_type) = if little {
            (le_len, u16::from_le_bytes([rest[2], rest[3]]))
        } else if (4..=rest.len()).contains(&be_len) {
            (be_len, u16::from_be_bytes([rest[2], rest[3]]))
        } else {
            return Err(DecodeError::TruncatedLink);
        };
        if tlv_type == NFULA_PAYLOAD {
            let payload = &rest[4..len];
            return match family {
                2 | 10 => raw_ip(payload, None),
                _ => Err(DecodeError::NotIp),
            };
        }
        let padded = len.div_ceil(4) * 4;
        rest = rest.get(padded..).unwrap_or(&[]);
    }
    Err(DecodeError::NotIp)
}
