//! ICMP and ICMPv6 on fuzzer-chosen messages: types, codes, bodies (quoted datagrams
//! included) between a few addresses, with time moving on. Must never panic; the
//! table of waiting echoes stays within its limit; entries are consistent.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use reef_dissect::icmp::{Icmp, IcmpMessage, MAX_OUTSTANDING_ECHOES, Quoted};
use reef_dissect::{Limits, Output};
use reef_schema::Flags;

fuzz_target!(|data: &[u8]| {
    let v4: [IpAddr; 3] = ["10.0.0.1", "10.0.0.2", "255.255.255.255"].map(|s| s.parse().unwrap());
    let v6: [IpAddr; 3] = ["2001:db8::1", "2001:db8::2", "ff02::1"].map(|s| s.parse().unwrap());
    let limits = Limits { response_timeout_ns: 1_000_000, ..Limits::default() };
    let mut out = Output::new(limits, "fuzz");
    let mut icmp = Icmp::new();
    let mut ts = 0i64;
    let mut rest = data;
    // Each message: flags (family, addresses, length), type, code, then the body.
    while let [ctl, t, code, tail @ ..] = rest {
        let six = ctl & 1 != 0;
        let addrs = if six { &v6 } else { &v4 };
        let src = addrs[usize::from(ctl >> 1) % 3];
        let dst = addrs[usize::from(ctl >> 3) % 3];
        let n = (usize::from(ctl >> 5) * 9).min(tail.len());
        ts += 300_000;
        let body = &tail[..n];
        let _ = Quoted::parse(body);
        let m = IcmpMessage { ts, src, dst, v6: six, icmp_type: *t, code: *code, rest: body };
        icmp.message(m, &mut out);
        icmp.expire(ts, &mut out);
        assert!(icmp.outstanding() <= MAX_OUTSTANDING_ECHOES);
        rest = &tail[n..];
    }
    icmp.finish(&mut out);
    assert_eq!(icmp.outstanding(), 0);
    for e in out.entries.iter() {
        assert_eq!(e.incomplete, e.flags.intersects(Flags::INCOMPLETE));
        assert!(e.src_port.is_none() && e.dst_port.is_none());
        assert!(e.icmp_type.is_some() && e.method.is_some());
        assert!(e.elapsed_time.is_none_or(|t| t >= 0));
    }
});
