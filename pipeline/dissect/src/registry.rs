//! Which dissector reads a connection, decided by its first bytes (ports are never
//! consulted). A protocol adds itself here with a probe and a constructor.

use reef_reassembly::{Dir, FlowCtx};

use crate::datagram::{DatagramDissector, UdpCtx};
use crate::{
    Output, Probe, StreamDissector, amqp, dns, http1, kafka, mongodb, mqtt, mysql, postgresql,
    redis, tls,
};

pub(crate) struct TcpProtocol {
    pub name: &'static str,
    /// Looks at the bytes a direction has sent so far.
    pub probe: fn(&FlowCtx, Dir, &[u8]) -> Probe,
    /// Makes the dissector; `client` is the direction carrying requests.
    pub make: fn(Dir, &FlowCtx, &Output) -> Box<dyn StreamDissector>,
}

/// TCP protocols in the order they are tried: more specific signatures first.
pub(crate) const TCP: &[TcpProtocol] = &[
    TcpProtocol {
        name: "http1",
        probe: http1::probe,
        make: http1::make,
    },
    TcpProtocol {
        name: "http2",
        probe: crate::http2::probe,
        make: crate::http2::make,
    },
    TcpProtocol {
        name: "tls",
        probe: tls::probe,
        make: tls::make,
    },
    TcpProtocol {
        name: "redis",
        probe: redis::probe,
        make: redis::make,
    },
    TcpProtocol {
        name: "mqtt",
        probe: mqtt::probe,
        make: mqtt::make,
    },
    TcpProtocol {
        name: "amqp",
        probe: amqp::probe,
        make: amqp::make,
    },
    TcpProtocol {
        name: "postgresql",
        probe: postgresql::probe,
        make: postgresql::make,
    },
    TcpProtocol {
        name: "mysql",
        probe: mysql::probe,
        make: mysql::make,
    },
    TcpProtocol {
        name: "kafka",
        probe: kafka::probe,
        make: kafka::make,
    },
    TcpProtocol {
        name: "mongodb",
        probe: mongodb::probe,
        make: mongodb::make,
    },
    TcpProtocol {
        name: "dns",
        probe: dns::probe_tcp,
        make: dns::make_tcp,
    },
];

pub(crate) struct UdpProtocol {
    pub name: &'static str,
    /// Looks at one datagram.
    pub probe: fn(&UdpCtx, Dir, &[u8]) -> Probe,
    pub make: fn(Dir, &UdpCtx, &Output) -> Box<dyn DatagramDissector>,
}

/// UDP protocols in the order they are tried.
pub(crate) const UDP: &[UdpProtocol] = &[UdpProtocol {
    name: "dns",
    probe: dns::probe_udp,
    make: dns::make_udp,
}];

/// Protocols an HTTP/1.1 connection can switch to with `Upgrade`, by token (compared
/// case-insensitively).
pub(crate) struct Upgrade {
    pub token: &'static str,
    pub make: fn(Dir, &FlowCtx, &Output) -> Box<dyn StreamDissector>,
}

pub(crate) const UPGRADES: &[Upgrade] = &[
    Upgrade {
        token: "h2c",
        make: crate::http2::make_upgraded,
    },
    Upgrade {
        token: "websocket",
        make: crate::websocket::make_upgraded,
    },
];

/// The dissector for the bytes after a switch of protocols: the one registered for
/// the token, else detection starting afresh (a CONNECT tunnel, an unknown upgrade).
pub(crate) fn after_upgrade(
    token: Option<&str>,
    client: Dir,
    ctx: &FlowCtx,
    out: &Output,
) -> Box<dyn StreamDissector> {
    let registered = token.and_then(|t| {
        UPGRADES
            .iter()
            .find(|u| t.split(',').any(|p| p.trim().eq_ignore_ascii_case(u.token)))
    });
    match registered {
        Some(u) => (u.make)(client, ctx, out),
        None => Box::new(crate::conn::Conn::tunnel()),
    }
}

pub(crate) enum Verdict {
    Found(&'static TcpProtocol, Dir),
    NotYet,
    Unknown,
}

/// Tries every TCP protocol on what `dir` has sent.
pub(crate) fn detect_tcp(ctx: &FlowCtx, dir: Dir, bytes: &[u8]) -> Verdict {
    let mut maybe = false;
    for p in TCP {
        match (p.probe)(ctx, dir, bytes) {
            Probe::Client(client) => return Verdict::Found(p, client),
            Probe::NotYet => maybe = true,
            Probe::No => {}
        }
    }
    if maybe {
        Verdict::NotYet
    } else {
        Verdict::Unknown
    }
}
