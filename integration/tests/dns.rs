//! DNS on the corpus: what must hold per capture, and where Reef and tshark count
//! differently (and why).
//!
//! `check_truth.py --proto dns` compares every DNS entry with tshark's *transactions*
//! (queries, answered or not). Reef finds all of them, and its DNS entries are exactly
//! those. The other messages tshark shows are tested here against tshark's own view of
//! the same frames:
//!
//! - responses whose query is not in the capture: tshark lists them under
//!   `unmatched_responses`; Reef counts them (`responses_without_query`) and emits no
//!   entry: without the query there is no latency and no asker to show.
//! - a second response to an answered query (`dns_zeek_two-responses`): tshark marks
//!   it "DNS response retransmission" and leaves it unmatched; Reef counts it
//!   (`duplicate_responses`) and emits it `no_request` only when its answers differ
//!   from the first's (the mark of a spoofed answer).
//! - mDNS and LLMNR (same wire format, ports 5353 and 5355): tshark names them
//!   `mdns` / `llmnr`, not `dns`, and so does Reef (protocols `mdns` and `llmnr`), as
//!   one-way entries (their answers come from other addresses, in other flows).

// Helpers outside #[test] functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use reef_integration::{corpus_file, dissect_bytes, dissect_file, rewrite};
use reef_schema::{Entry, Flags, Protocol, Transport};

/// Just enough JSON to read the corpus's truth files (no JSON crate in this test
/// crate's dependencies).
pub mod json {
    #[derive(Debug, Clone, PartialEq)]
    pub enum J {
        Null,
        Bool(bool),
        Num(f64),
        Str(String),
        Arr(Vec<J>),
        Obj(Vec<(String, J)>),
    }

    impl J {
        pub fn get(&self, k: &str) -> &J {
            match self {
                J::Obj(m) => m.iter().find(|(n, _)| n == k).map_or(&J::Null, |(_, v)| v),
                _ => &J::Null,
            }
        }
        pub fn arr(&self) -> &[J] {
            match self {
                J::Arr(a) => a,
                _ => &[],
            }
        }
        pub fn str(&self) -> Option<&str> {
            match self {
                J::Str(s) => Some(s),
                _ => None,
            }
        }
        pub fn num(&self) -> Option<f64> {
            match self {
                J::Num(n) => Some(*n),
                _ => None,
            }
        }
        pub fn int(&self) -> Option<i64> {
            self.num().map(|n| n as i64)
        }
        /// A time written as "seconds.nanoseconds", in ns.
        pub fn time_ns(&self) -> Option<i64> {
            let s = self.str()?;
            let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
            let frac = format!("{frac:0<9}");
            Some(secs.parse::<i64>().ok()? * 1_000_000_000 + frac[..9].parse::<i64>().ok()?)
        }
    }

    pub fn parse(s: &str) -> J {
        let b = s.as_bytes();
        let mut i = 0;
        let v = value(b, &mut i);
        ws(b, &mut i);
        assert_eq!(i, b.len(), "trailing bytes in JSON");
        v
    }

    fn ws(b: &[u8], i: &mut usize) {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    }

    fn value(b: &[u8], i: &mut usize) -> J {
        ws(b, i);
        match b[*i] {
            b'{' => {
                *i += 1;
                let mut m = Vec::new();
                loop {
                    ws(b, i);
                    if b[*i] == b'}' {
                        *i += 1;
                        return J::Obj(m);
                    }
                    let J::Str(k) = value(b, i) else {
                        panic!("object key")
                    };
                    ws(b, i);
                    assert_eq!(b[*i], b':');
                    *i += 1;
                    m.push((k, value(b, i)));
                    ws(b, i);
                    if b[*i] == b',' {
                        *i += 1;
                    }
                }
            }
            b'[' => {
                *i += 1;
                let mut a = Vec::new();
                loop {
                    ws(b, i);
                    if b[*i] == b']' {
                        *i += 1;
                        return J::Arr(a);
                    }
                    a.push(value(b, i));
                    ws(b, i);
                    if b[*i] == b',' {
                        *i += 1;
                    }
                }
            }
            b'"' => {
                *i += 1;
                let mut out: Vec<u8> = Vec::new();
                loop {
                    match b[*i] {
                        b'"' => {
                            *i += 1;
                            return J::Str(String::from_utf8(out).expect("utf-8"));
                        }
                        b'\\' => {
                            let c = b[*i + 1];
                            *i += 2;
                            let ch = match c {
                                b'n' => '\n',
                                b't' => '\t',
                                b'r' => '\r',
                                b'b' => '\u{8}',
                                b'f' => '\u{c}',
                                b'u' => {
                                    let hex = |i: usize| {
                                        u32::from_str_radix(
                                            std::str::from_utf8(&b[i..i + 4]).unwrap(),
                                            16,
                                        )
                                        .unwrap()
                                    };
                                    let mut cp = hex(*i);
                                    *i += 4;
                                    if (0xd800..0xdc00).contains(&cp) && b[*i] == b'\\' {
                                        let lo = hex(*i + 2);
                                        *i += 6;
                                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                    }
                                    char::from_u32(cp).unwrap_or('\u{fffd}')
                                }
                                c => char::from(c),
                            };
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        c => {
                            out.push(c);
                            *i += 1;
                        }
                    }
                }
            }
            b't' => {
                *i += 4;
                J::Bool(true)
            }
            b'f' => {
                *i += 5;
                J::Bool(false)
            }
            b'n' => {
                *i += 4;
                J::Null
            }
            _ => {
                let start = *i;
                while *i < b.len()
                    && matches!(b[*i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    *i += 1;
                }
                J::Num(std::str::from_utf8(&b[start..*i]).unwrap().parse().unwrap())
            }
        }
    }
}

use json::J;

/// tshark's view of a capture.
pub fn truth(name: &str) -> J {
    let path = corpus_file(name).with_extension("truth.json");
    json::parse(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
}

fn dns_entries(name: &str) -> Vec<Entry> {
    let (e, _) = dissect_file(&corpus_file(name));
    e.into_iter()
        .filter(|e| e.protocol == Protocol::Dns)
        .collect()
}

fn is_multicast(e: &Entry) -> bool {
    matches!(e.protocol, Protocol::Mdns | Protocol::Llmnr)
}

type Key = (String, String, Option<i64>);

fn entry_key(e: &Entry) -> Key {
    (
        e.path
            .as_deref()
            .unwrap_or("")
            .trim_end_matches('.')
            .to_lowercase(),
        e.method.clone().unwrap_or_default(),
        e.status_code.map(i64::from),
    )
}

fn truth_key(t: &J) -> Key {
    (
        t.get("qname")
            .str()
            .unwrap_or("")
            .trim_end_matches('.')
            .to_lowercase(),
        t.get("qtype_name").str().unwrap_or("").to_string(),
        t.get("rcode").int(),
    )
}

fn multiset<T: Ord>(v: impl IntoIterator<Item = T>) -> BTreeMap<T, usize> {
    let mut m = BTreeMap::new();
    for x in v {
        *m.entry(x).or_insert(0) += 1;
    }
    m
}

const DNS_CAPTURES: [&str; 9] = [
    "dns_arkime_wireshark-sample",
    "dns_deepflow_nxdomain",
    "dns_ndpi_fragmented",
    "dns_suricata_tcp-multirequest",
    "dns_tcpdump_tcp",
    "dns_zeek_edns-ecs",
    "dns_zeek_two-responses",
    "mixed_ndpi_1kxun-mobile-http-dns",
    "tls_arkime_curl-tls13",
];

/// Every DNS entry of every capture with DNS accounted for against tshark: the
/// transactions one for one (question, rcode, time, answer count), the responses
/// without a query counted as many as tshark's unmatched responses, and the mDNS/LLMNR
/// entries one per frame tshark calls mdns or llmnr.
#[test]
fn every_dns_entry_is_accounted_for_by_tshark() {
    for name in DNS_CAPTURES {
        let t = truth(name);
        let (all, stats) = dissect_file(&corpus_file(name));
        let multicast: Vec<&Entry> = all.iter().filter(|e| is_multicast(e)).collect();
        let (lone, paired): (Vec<&Entry>, Vec<&Entry>) = all
            .iter()
            .filter(|e| e.protocol == Protocol::Dns)
            .partition(|e| e.flags.contains(Flags::NO_REQUEST));

        let dns = t.get("l7").get("dns");
        let transactions = dns.get("transactions").arr();
        assert_eq!(
            multiset(paired.iter().map(|e| entry_key(e))),
            multiset(transactions.iter().map(truth_key)),
            "{name}: queries"
        );
        let unmatched = dns.get("unmatched_responses").arr();
        let d = &stats.dissect.dns;
        assert_eq!(
            (d.responses_without_query + d.duplicate_responses) as usize,
            unmatched.len(),
            "{name}: responses without their query"
        );
        assert_eq!(lone.len() as u64, d.duplicate_responses_differing, "{name}");
        let unmatched_keys = multiset(unmatched.iter().map(truth_key));
        for e in &lone {
            assert!(unmatched_keys.contains_key(&entry_key(e)), "{name}: {e:?}");
        }
        let counts = t.get("frame_protocol_counts");
        let mc = counts.get("mdns").int().unwrap_or(0) + counts.get("llmnr").int().unwrap_or(0);
        assert_eq!(
            multicast.len() as i64,
            mc,
            "{name}: mDNS and LLMNR messages"
        );

        // Same start times and answer counts as tshark's, transaction by transaction.
        for tr in transactions {
            let ts = tr.get("time").time_ns().unwrap();
            let e = paired
                .iter()
                .find(|e| e.timestamp == ts && entry_key(e) == truth_key(tr))
                .unwrap_or_else(|| panic!("{name}: no entry at {ts} for {tr:?}"));
            if let Some(n) = tr.get("answers").int() {
                assert_eq!(
                    e.dns_answers.as_ref().map(Vec::len),
                    Some(n as usize),
                    "{name}: {tr:?}"
                );
                assert!(e.dns_rcode.is_some());
            } else {
                assert!(e.flags.contains(Flags::NO_RESPONSE), "{name}: {tr:?}");
            }
            let transport = if tr.get("transport").str() == Some("tcp") {
                Transport::Tcp
            } else {
                Transport::Udp
            };
            assert_eq!(e.transport, transport);
        }
    }
}

#[test]
fn wireshark_sample_record_types_and_answer_data() {
    let e = dns_entries("dns_arkime_wireshark-sample");
    assert_eq!(e.len(), 19);
    let methods: Vec<_> = e.iter().map(|e| e.method.as_deref().unwrap()).collect();
    assert_eq!(
        methods,
        [
            "TXT", "MX", "LOC", "PTR", "A", "AAAA", "AAAA", "AAAA", "AAAA", "AAAA", "AAAA", "ANY",
            "PTR", "NS", "SRV", "SRV", "SRV", "A", "A"
        ]
    );
    assert!(
        e.iter()
            .all(|e| e.flags.is_empty() && e.elapsed_time.is_some())
    );
    let answers = |i: usize| e[i].dns_answers.clone().unwrap();
    assert!(
        answers(0)[0].starts_with("google.com TXT \"v=spf1 "),
        "{:?}",
        answers(0)
    );
    assert!(answers(1).iter().all(|a| a.starts_with("google.com MX ")));
    assert!(
        answers(1)
            .iter()
            .any(|a| a.ends_with(" smtp1.google.com") || a.contains(".google.com"))
    );
    assert_eq!(
        answers(3),
        ["104.9.192.66.in-addr.arpa PTR 66-192-9-104.gen.twtelecom.net"]
    );
    assert_eq!(e[4].dns_rcode.as_deref(), Some("NOERROR"));
    // The NXDOMAIN for a made-up top-level domain.
    let nx: Vec<_> = e
        .iter()
        .filter(|e| e.status_code == Some(3))
        .map(|e| e.dns_rcode.clone())
        .collect();
    assert_eq!(nx.len(), 6);
    assert!(nx.iter().all(|r| r.as_deref() == Some("NXDOMAIN")));
    assert_eq!(answers(13).len(), 4);
    assert!(answers(13).iter().all(|a| a.starts_with("isc.org NS ")));
}

#[test]
fn two_responses_to_one_query() {
    let (e, stats) = dissect_file(&corpus_file("dns_zeek_two-responses"));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].flags, Flags::empty());
    assert_eq!(e[0].path.as_deref(), Some("www.cmu.edu"));
    assert_eq!(
        e[0].dns_answers.as_ref().unwrap()[0],
        "www.cmu.edu CNAME WWW-CMU.ANDREW.cmu.edu"
    );
    // The second repeats the first answer: counted, not shown.
    assert_eq!(stats.dissect.dns.duplicate_responses, 1);
    assert_eq!(stats.dissect.dns.duplicate_responses_differing, 0);
}

#[test]
fn duplicated_queries_in_the_mobile_capture() {
    // Five queries appear twice, 44 µs apart with the same IP id: the capture holds
    // each datagram twice. One response came; it pairs with the first copy, and the
    // copy is an entry of its own that got none (tshark: "retransmission", unanswered).
    let e = dns_entries("mixed_ndpi_1kxun-mobile-http-dns");
    let unicast: Vec<_> = e.iter().collect();
    assert_eq!(unicast.len(), 11);
    let copies: Vec<_> = unicast
        .iter()
        .filter(|e| e.flags.contains(Flags::NO_RESPONSE))
        .collect();
    assert_eq!(copies.len(), 5);
    for c in &copies {
        let s = c.summary.as_deref().unwrap();
        assert!(
            s.contains("retransmission") && s.contains("which got the response"),
            "{s}"
        );
        let first = unicast
            .iter()
            .find(|o| {
                o.flags.is_empty()
                    && o.path == c.path
                    && o.dst_ip == c.dst_ip
                    && o.timestamp < c.timestamp
            })
            .unwrap();
        assert!(c.timestamp - first.timestamp < 100_000);
    }
    // The same client port asked two resolvers with the same id: two flows, two pairs.
    let kankan: Vec<_> = unicast
        .iter()
        .filter(|e| e.path.as_deref() == Some("kankan.1kxun.com") && e.flags.is_empty())
        .collect();
    assert_eq!(kankan.len(), 2);
    assert_ne!(kankan[0].dst_ip, kankan[1].dst_ip);
    // LLMNR queries to the group: one-way, labelled, never "no response".
    let (all, _) = dissect_file(&corpus_file("mixed_ndpi_1kxun-mobile-http-dns"));
    let llmnr: Vec<_> = all
        .iter()
        .filter(|e| e.protocol == Protocol::Llmnr)
        .collect();
    assert_eq!(llmnr.len(), 91);
    assert!(
        llmnr
            .iter()
            .all(|e| e.flags.is_empty() && e.status_code.is_none())
    );
    assert!(
        llmnr
            .iter()
            .any(|e| e.path.as_deref() == Some("小佛專機") && e.method.as_deref() == Some("ANY"))
    );
}

#[test]
fn fragmented_dns_over_udp_and_tcp() {
    let e = dns_entries("dns_ndpi_fragmented");
    assert_eq!(e.len(), 22);
    let tcp: Vec<_> = e.iter().filter(|e| e.transport == Transport::Tcp).collect();
    assert_eq!(tcp.len(), 2);
    assert!(tcp.iter().all(
        |e| e.method.as_deref() == Some("DNSKEY") && e.dns_answers.as_ref().unwrap().len() == 4
    ));
    // Large DNSKEY answers came in IPv4 and IPv6 fragments and were read whole.
    let dnskey = e
        .iter()
        .filter(|e| e.method.as_deref() == Some("DNSKEY") && e.status_code == Some(0))
        .count();
    assert_eq!(dnskey, 6);
    assert!(
        e.iter()
            .filter(|e| e.flags.is_empty())
            .all(|e| e.response_size.unwrap() > 0)
    );
    // The same query again 5 s later: the first attempt went unanswered.
    let retry: Vec<_> = e
        .iter()
        .filter(|e| e.path.as_deref() == Some("weberlab.de") && e.src_port == Some(55729))
        .collect();
    assert_eq!(retry.len(), 2);
    assert_eq!(retry[0].flags, Flags::NO_RESPONSE);
    assert!(
        retry[0]
            .summary
            .as_deref()
            .unwrap()
            .contains("asked again 5.0 s later")
    );
    assert_eq!(retry[1].flags, Flags::empty());
    assert!(retry[1].elapsed_time.unwrap() < 100_000);
    // SERVFAIL of a broken DNSSEC signature.
    let fail = e
        .iter()
        .find(|e| e.path.as_deref() == Some("sigfail.verteiltesysteme.net"))
        .unwrap();
    assert_eq!(
        (fail.status_code, fail.dns_rcode.as_deref()),
        (Some(2), Some("SERVFAIL"))
    );
}

#[test]
fn tcp_many_queries_in_one_segment() {
    let e = dns_entries("dns_suricata_tcp-multirequest");
    assert_eq!(e.len(), 20);
    for (i, x) in e.iter().enumerate() {
        assert_eq!(x.transport, Transport::Tcp);
        assert_eq!(x.path.as_deref(), Some(format!("{i}.google.com").as_str()));
        assert_eq!(x.dns_rcode.as_deref(), Some("NXDOMAIN"));
        assert!(x.flags.is_empty());
    }
    // All twenty queries were in one segment.
    assert!(e.iter().all(|x| x.timestamp == e[0].timestamp));
}

#[test]
fn tcp_loss_costs_one_answer() {
    // The segment carrying the response to query 2 is removed: the reassembler reports
    // the loss; DNS finds the next response's length prefix and goes on.
    let mut frame = 0;
    let bytes = rewrite(&corpus_file("dns_suricata_tcp-multirequest"), 1, |f| {
        frame += 1;
        if frame == 12 {
            vec![]
        } else {
            vec![f.to_vec()]
        }
    });
    let (e, _) = dissect_bytes(&bytes);
    let e: Vec<_> = e
        .into_iter()
        .filter(|e| e.protocol == Protocol::Dns)
        .collect();
    assert_eq!(e.len(), 20);
    let lost: Vec<_> = e.iter().filter(|e| !e.flags.is_empty()).collect();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0].path.as_deref(), Some("2.google.com"));
    assert_eq!(lost[0].flags, Flags::NO_RESPONSE);
    assert_eq!(e.iter().filter(|e| e.status_code == Some(3)).count(), 19);
}

#[test]
fn tcp_with_nxdomain_and_answers() {
    let e = dns_entries("dns_deepflow_nxdomain");
    let got: Vec<_> = e
        .iter()
        .map(|e| {
            (
                e.method.as_deref().unwrap(),
                e.dns_rcode.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [("AAAA", "NXDOMAIN"), ("A", "NOERROR"), ("AAAA", "NXDOMAIN")]
    );
    assert_eq!(
        e[1].dns_answers.as_deref().unwrap(),
        ["dockerauth-ee-vpc.cn-shenzhen.aliyuncs.com A 100.103.26.52"]
    );
    let e = dns_entries("dns_tcpdump_tcp");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].transport, Transport::Tcp);
    assert_eq!(
        e[0].dns_answers.as_deref().unwrap(),
        [
            "www.tcpdump.org A 192.139.46.66",
            "www.tcpdump.org A 198.199.88.104"
        ]
    );
    // Sizes include the 2-byte length prefix.
    assert!(
        e[0].request_size.unwrap() > 2 && e[0].response_size.unwrap() > e[0].request_size.unwrap()
    );
}

#[test]
fn client_subnet_and_responses_without_their_query() {
    let (all, stats) = dissect_file(&corpus_file("dns_zeek_edns-ecs"));
    let e: Vec<_> = all.iter().filter(|e| e.protocol == Protocol::Dns).collect();
    let ecs = e
        .iter()
        .filter(|e| {
            e.summary
                .as_deref()
                .unwrap()
                .contains("[ECS 213.61.29.0/24]")
        })
        .count();
    assert!(ecs >= 2);
    // The trace keeps mostly answers (truncated ones among them, retried over TCP):
    // 50 responses whose query was not captured, counted and not shown.
    assert_eq!(stats.dissect.dns.responses_without_query, 50);
    assert_eq!(e.len(), 20);
    // The one TCP exchange with both halves in the capture is an entry.
    let tcp: Vec<_> = e.iter().filter(|e| e.transport == Transport::Tcp).collect();
    assert_eq!(tcp.len(), 1);
    assert_eq!(tcp[0].method.as_deref(), Some("DNSKEY"));
}

#[test]
fn detection_does_not_need_port_53() {
    // The same capture with the server on port 9953: the same entries.
    let port = |f: &[u8]| -> Vec<Vec<u8>> {
        let mut f = f.to_vec();
        // Ethernet, IPv4 without options, UDP.
        let udp = 14 + usize::from(f[14] & 0x0f) * 4;
        for at in [udp, udp + 2] {
            if f[at..at + 2] == 53u16.to_be_bytes() {
                f[at..at + 2].copy_from_slice(&9953u16.to_be_bytes());
            }
        }
        vec![f]
    };
    let bytes = rewrite(&corpus_file("dns_arkime_wireshark-sample"), 1, port);
    let (e, _) = dissect_bytes(&bytes);
    let orig = dns_entries("dns_arkime_wireshark-sample");
    assert_eq!(e.len(), orig.len());
    assert!(e.iter().all(|e| e.dst_port == Some(9953)));
    let keys = |v: &[Entry]| v.iter().map(entry_key).collect::<Vec<_>>();
    assert_eq!(keys(&e), keys(&orig));
}

#[test]
fn dns_before_tls_in_the_curl_capture() {
    let e = dns_entries("tls_arkime_curl-tls13");
    let got: Vec<_> = e
        .iter()
        .map(|e| {
            (
                e.method.as_deref().unwrap(),
                e.dns_answers.as_ref().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(got, [("A", 2), ("AAAA", 2)]);
}

#[test]
fn mdns_on_a_laptop_is_one_way() {
    let (all, _) = dissect_file(&corpus_file("grpc_packt_unary"));
    assert!(!all.iter().any(|e| e.protocol == Protocol::Dns));
    let e: Vec<_> = all
        .iter()
        .filter(|e| e.protocol == Protocol::Mdns)
        .collect();
    assert_eq!(e.len(), 9);
    assert!(
        e.iter()
            .all(|e| e.summary.as_deref().unwrap().starts_with("mDNS ") && e.flags.is_empty())
    );
    let questions: usize = e
        .iter()
        .filter_map(|e| e.dns_questions.as_ref())
        .map(Vec::len)
        .max()
        .unwrap();
    assert!(questions > 10, "DNS-SD browse queries carry many questions");
}

/// Live: dig against a dnsmasq this test starts in a network namespace of its own
/// (so it answers on port 53 and on no address of this machine), over UDP and TCP,
/// captured on the host end of the veth pair while the queries run. dnsmasq serves
/// only records given on its command line (`--no-resolv`, `--no-hosts`): nothing is
/// ever forwarded off the machine.
mod running_server {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use reef_integration::live::LiveCapture;
    use reef_schema::{Entry, Protocol, Transport};

    use crate::live_tools::{Daemon, NetNs, SETTLE, run, run_any, tool};

    fn dig(dig: &std::path::Path, server: &str, args: &[&str]) -> String {
        let out = run(
            Command::new(dig)
                .arg(format!("@{server}"))
                .args(["+tries=1", "+time=2"])
                .args(args),
            Duration::from_secs(5),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn live_dig_against_dnsmasq_over_udp_and_tcp() {
        let dnsmasq = tool("dnsmasq", "dnsmasq-base");
        let dig_bin = tool("dig", "bind9-dnsutils");
        let ns = NetNs::new(0);
        let server = ns.peer_ip.to_string();
        let _daemon = Daemon(
            ns.command(&dnsmasq)
                .args([
                    "--keep-in-foreground",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    "--pid-file=",
                    "--bind-interfaces",
                    "--port=53",
                    // Names under reef.test it does not know are NXDOMAIN.
                    "--local=/reef.test/",
                    "--host-record=www.reef.test,198.51.100.10,2001:db8::10",
                    "--txt-record=info.reef.test,hello from reef",
                    "--mx-host=reef.test,mail.reef.test,10",
                    "--cname=alias.reef.test,www.reef.test",
                ])
                .arg(format!("--listen-address={server}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // Ready when it answers (before the capture starts: not part of the test).
        let t0 = Instant::now();
        loop {
            let out = run_any(
                Command::new(&dig_bin).args([
                    &format!("@{server}"),
                    "+tries=1",
                    "+time=1",
                    "+short",
                    "www.reef.test",
                ]),
                Duration::from_secs(3),
            );
            if String::from_utf8_lossy(&out.stdout).contains("198.51.100.10") {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "dnsmasq did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }

        let cap = LiveCapture::start(&ns.host_if);
        let said = [
            dig(&dig_bin, &server, &["www.reef.test", "A"]),
            dig(&dig_bin, &server, &["www.reef.test", "AAAA"]),
            dig(&dig_bin, &server, &["alias.reef.test", "A"]),
            dig(&dig_bin, &server, &["reef.test", "MX"]),
            dig(&dig_bin, &server, &["nothere.reef.test", "A"]),
            // Not a name it serves, and it forwards nothing: refused.
            dig(&dig_bin, &server, &["example.com", "A"]),
            dig(&dig_bin, &server, &["+tcp", "info.reef.test", "TXT"]),
            dig(&dig_bin, &server, &["+tcp", "nothere.reef.test", "AAAA"]),
            // Three queries over one TCP connection.
            dig(
                &dig_bin,
                &server,
                &[
                    "+tcp",
                    "+keepopen",
                    "www.reef.test",
                    "A",
                    "reef.test",
                    "MX",
                    "gone.reef.test",
                    "TXT",
                ],
            ),
        ];
        let (entries, _) = cap.stop(SETTLE);
        assert!(said[4].contains("status: NXDOMAIN"), "{}", said[4]);
        assert!(said[5].contains("status: REFUSED"), "{}", said[5]);

        let e: Vec<&Entry> = entries
            .iter()
            .filter(|x| x.protocol == Protocol::Dns && x.dst_port == Some(53))
            .collect();
        assert!(
            e.iter()
                .all(|x| x.src_ip == ns.host_ip && x.dst_ip == ns.peer_ip && x.flags.is_empty()),
            "{e:#?}"
        );
        let got: Vec<_> = e
            .iter()
            .map(|x| {
                (
                    x.transport,
                    x.method.as_deref().unwrap(),
                    x.path.as_deref().unwrap(),
                    x.dns_rcode.as_deref().unwrap(),
                )
            })
            .collect();
        use Transport::{Tcp, Udp};
        assert_eq!(
            got,
            [
                (Udp, "A", "www.reef.test", "NOERROR"),
                (Udp, "AAAA", "www.reef.test", "NOERROR"),
                (Udp, "A", "alias.reef.test", "NOERROR"),
                (Udp, "MX", "reef.test", "NOERROR"),
                (Udp, "A", "nothere.reef.test", "NXDOMAIN"),
                (Udp, "A", "example.com", "REFUSED"),
                (Tcp, "TXT", "info.reef.test", "NOERROR"),
                (Tcp, "AAAA", "nothere.reef.test", "NXDOMAIN"),
                (Tcp, "A", "www.reef.test", "NOERROR"),
                (Tcp, "MX", "reef.test", "NOERROR"),
                (Tcp, "TXT", "gone.reef.test", "NXDOMAIN"),
            ],
            "{e:#?}"
        );
        let status: Vec<_> = e.iter().map(|x| x.status_code.unwrap()).collect();
        assert_eq!(status, [0, 0, 0, 0, 3, 5, 0, 3, 0, 0, 3]);
        let answers = |i: usize| e[i].dns_answers.clone().unwrap_or_default();
        assert_eq!(answers(0), ["www.reef.test A 198.51.100.10"]);
        assert_eq!(answers(1), ["www.reef.test AAAA 2001:db8::10"]);
        let cname = answers(2);
        assert_eq!(cname.len(), 2, "{cname:?}");
        assert!(
            cname[0].starts_with("alias.reef.test CNAME www.reef.test"),
            "{cname:?}"
        );
        assert_eq!(cname[1], "www.reef.test A 198.51.100.10");
        assert!(answers(3)[0].contains("mail.reef.test"), "{:?}", answers(3));
        assert!(answers(4).is_empty() && answers(5).is_empty());
        assert!(
            answers(6)[0].contains("hello from reef"),
            "{:?}",
            answers(6)
        );
        // The +keepopen queries share one connection; the others have one each.
        let port = |i: usize| e[i].src_port;
        assert!(port(8) == port(9) && port(9) == port(10));
        assert_ne!(port(6), port(7));
        assert!(
            e.iter()
                .all(|x| x.elapsed_time.is_some() && x.response_size.is_some())
        );
    }
}
