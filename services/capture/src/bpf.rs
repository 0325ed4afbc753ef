//! Classic BPF programs for the capture sockets, so that the kernel drops what the
//! worker must not see (its own NATS traffic) and, when targets are set, everything not
//! to or from a target address — before a packet is ever copied to user space.
//!
//! The sockets are SOCK_DGRAM, so offset 0 is the network header and the ethertype comes
//! from the ancillary `SKF_AD_PROTOCOL` load.

use std::net::IpAddr;

use crate::sys::SockFilter;

/// The kernel's limit on a classic BPF program (BPF_MAXINSNS).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// What the kernel filter keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterSpec {
    /// TCP endpoints whose traffic is never captured (the worker's own NATS connection).
    pub exclude: Vec<(IpAddr, u16)>,
    /// When not empty, only packets from or to one of these addresses are captured.
    pub targets: Vec<IpAddr>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error(
        "{targets} capture targets need {needed} BPF instructions, more than the kernel's \
         {MAX_INSTRUCTIONS}; capture fewer pods or none (all traffic)"
    )]
    TooLarge { targets: usize, needed: usize },
}

const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const LD_H_IND: u16 = 0x48;
const LDX_B_MSH: u16 = 0xb1;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

const SKF_AD_PROTOCOL: u32 = 0xffff_f000;
const ETH_P_IP: u32 = 0x0800;
const ETH_P_IPV6: u32 = 0x86dd;
const IPPROTO_TCP: u32 = 6;
/// Bytes a packet keeps when accepted: all of it.
const ACCEPT_LEN: u32 = 0x0004_0000;

#[derive(Clone, Copy)]
enum Label {
    Accept,
    Drop,
    AfterV4Exclusions,
    AfterV6Exclusions,
    V6,
}

enum Ins {
    Op(SockFilter),
    /// An unconditional jump to a label; offsets are resolved at the end.
    JumpTo(Label),
    Mark(Label),
}

struct Prog(Vec<Ins>);

impl Prog {
    fn op(&mut self, code: u16, jt: u8, jf: u8, k: u32) {
        self.0.push(Ins::Op(SockFilter { code, jt, jf, k }));
    }

    fn ja(&mut self, l: Label) {
        self.0.push(Ins::JumpTo(l));
    }

    fn mark(&mut self, l: Label) {
        self.0.push(Ins::Mark(l));
    }

    /// Resolves labels: conditional jumps only ever skip a few instructions within a
    /// block, and far jumps are `ja` with a 32-bit offset, so programs of any length
    /// resolve.
    fn assemble(self) -> Vec<SockFilter> {
        let mut pos = Vec::new();
        let mut n = 0u32;
        for ins in &self.0 {
            pos.push(n);
            if !matches!(ins, Ins::Mark(_)) {
                n += 1;
            }
        }
        let where_is = |want: Label| {
            self.0
                .iter()
                .zip(&pos)
                .find(|(i, _)| matches!(i, Ins::Mark(l) if *l as u8 == want as u8))
                .map_or(n, |(_, p)| *p)
        };
        let mut out = Vec::with_capacity(n as usize);
        for (ins, p) in self.0.iter().zip(&pos) {
            match ins {
                Ins::Op(f) => out.push(*f),
                Ins::JumpTo(l) => out.push(SockFilter {
                    code: JA,
                    jt: 0,
                    jf: 0,
                    k: where_is(*l) - p - 1,
                }),
                Ins::Mark(_) => {}
            }
        }
        out
    }
}

fn v6_words(ip: &std::net::Ipv6Addr) -> [u32; 4] {
    let o = ip.octets();
    [0, 4, 8, 12].map(|i| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]))
}

/// Jumps to `to` when the IPv6 address at `base` is `ip`: nine instructions.
fn v6_equal_then(p: &mut Prog, base: u32, ip: &std::net::Ipv6Addr, to: Label) {
    let w = v6_words(ip);
    for (i, word) in w.iter().enumerate() {
        p.op(LD_W_ABS, 0, 0, base + 4 * i as u32);
        // Not equal: skip to the end of the block (the remaining loads, compares and
        // the final jump).
        p.op(JEQ_K, 0, (7 - 2 * i) as u8, *word);
    }
    p.ja(to);
}

/// Builds the program for `spec`.
pub fn compile(spec: &FilterSpec) -> Result<Vec<SockFilter>, FilterError> {
    let mut p = Prog(Vec::new());
    p.op(LD_W_ABS, 0, 0, SKF_AD_PROTOCOL);
    p.op(JEQ_K, 1, 0, ETH_P_IP);
    p.ja(Label::V6);

    // IPv4. Exclusions apply to TCP first fragments only: later fragments have no ports.
    p.op(LD_B_ABS, 0, 0, 9);
    p.op(JEQ_K, 1, 0, IPPROTO_TCP);
    p.ja(Label::AfterV4Exclusions);
    p.op(LD_H_ABS, 0, 0, 6);
    p.op(JSET_K, 0, 1, 0x1fff);
    p.ja(Label::AfterV4Exclusions);
    for (ip, port) in &spec.exclude {
        let IpAddr::V4(v4) = ip else { continue };
        for (addr_at, port_at) in [(12, 0), (16, 2)] {
            p.op(LD_W_ABS, 0, 0, addr_at);
            p.op(JEQ_K, 0, 4, u32::from(*v4));
            p.op(LDX_B_MSH, 0, 0, 0);
            p.op(LD_H_IND, 0, 0, port_at);
            p.op(JEQ_K, 0, 1, u32::from(*port));
            p.ja(Label::Drop);
        }
    }
    p.mark(Label::AfterV4Exclusions);
    let v4_targets: Vec<_> = spec
        .targets
        .iter()
        .filter_map(|t| match t {
            IpAddr::V4(v) => Some(*v),
            IpAddr::V6(v) => v.to_ipv4_mapped(),
        })
        .collect();
    if spec.targets.is_empty() {
        p.ja(Label::Accept);
    } else {
        for addr_at in [12, 16] {
            p.op(LD_W_ABS, 0, 0, addr_at);
            for t in &v4_targets {
                p.op(JEQ_K, 0, 1, u32::from(*t));
                p.ja(Label::Accept);
            }
        }
        p.ja(Label::Drop);
    }

    // IPv6 (or anything else, which is dropped).
    p.mark(Label::V6);
    p.op(JEQ_K, 1, 0, ETH_P_IPV6);
    p.ja(Label::Drop);
    // Exclusions when TCP follows the fixed header directly.
    p.op(LD_B_ABS, 0, 0, 6);
    p.op(JEQ_K, 1, 0, IPPROTO_TCP);
    p.ja(Label::AfterV6Exclusions);
    for (ip, port) in &spec.exclude {
        let IpAddr::V6(v6) = ip else { continue };
        for (addr_at, port_at) in [(8u32, 40u32), (24, 42)] {
            let w = v6_words(v6);
            for (i, word) in w.iter().enumerate() {
                p.op(LD_W_ABS, 0, 0, addr_at + 4 * i as u32);
                p.op(JEQ_K, 0, (9 - 2 * i) as u8, *word);
            }
            p.op(LD_H_ABS, 0, 0, port_at);
            p.op(JEQ_K, 0, 1, u32::from(*port));
            p.ja(Label::Drop);
        }
    }
    p.mark(Label::AfterV6Exclusions);
    let v6_targets: Vec<_> = spec
        .targets
        .iter()
        .filter_map(|t| match t {
            IpAddr::V6(v) if v.to_ipv4_mapped().is_none() => Some(*v),
            _ => None,
        })
        .collect();
    if spec.targets.is_empty() {
        p.ja(Label::Accept);
    } else {
        for base in [8, 24] {
            for t in &v6_targets {
                v6_equal_then(&mut p, base, t, Label::Accept);
            }
        }
        p.ja(Label::Drop);
    }

    p.mark(Label::Accept);
    p.op(RET_K, 0, 0, ACCEPT_LEN);
    p.mark(Label::Drop);
    p.op(RET_K, 0, 0, 0);

    let prog = p.assemble();
    if prog.len() > MAX_INSTRUCTIONS {
        return Err(FilterError::TooLarge {
            targets: spec.targets.len(),
            needed: prog.len(),
        });
    }
    Ok(prog)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic BPF interpreter for the instructions `compile` uses: what the kernel
    /// would return for a packet (bytes from the network header) of `ethertype`.
    fn run(prog: &[SockFilter], ethertype: u16, pkt: &[u8]) -> u32 {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        let load = |at: u32, n: usize| -> Option<u32> {
            let at = at as usize;
            let b = pkt.get(at..at + n)?;
            Some(b.iter().fold(0u32, |v, b| v << 8 | u32::from(*b)))
        };
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                LD_W_ABS if i.k == SKF_AD_PROTOCOL => a = u32::from(ethertype),
                LD_W_ABS => match load(i.k, 4) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_H_ABS => match load(i.k, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_B_ABS => match load(i.k, 1) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_H_IND => match load(x + i.k, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LDX_B_MSH => match load(i.k, 1) {
                    Some(v) => x = (v & 0xf) * 4,
                    None => return 0,
                },
                JA => pc += i.k as usize,
                JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                JSET_K => pc += usize::from(if a & i.k != 0 { i.jt } else { i.jf }),
                RET_K => return i.k,
                other => panic!("unexpected instruction {other:#x}"),
            }
        }
    }

    fn v4_tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&[0; 16]);
        p
    }

    fn v6_tcp(src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
        let s: std::net::Ipv6Addr = src.parse().unwrap();
        let d: std::net::Ipv6Addr = dst.parse().unwrap();
        let mut p = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
        p.extend_from_slice(&s.octets());
        p.extend_from_slice(&d.octets());
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&[0; 16]);
        p
    }

    #[test]
    fn no_spec_accepts_ip_and_drops_the_rest() {
        let prog = compile(&FilterSpec::default()).unwrap();
        assert_eq!(
            run(&prog, 0x0800, &v4_tcp([1, 1, 1, 1], 1, [2, 2, 2, 2], 2)),
            ACCEPT_LEN
        );
        assert_eq!(
            run(&prog, 0x86dd, &v6_tcp("fd00::1", 1, "fd00::2", 2)),
            ACCEPT_LEN
        );
        assert_eq!(run(&prog, 0x0806, &[0; 28]), 0, "ARP");
    }

    #[test]
    fn the_workers_own_nats_traffic_is_dropped_both_ways() {
        let spec = FilterSpec {
            exclude: vec![
                ("10.0.0.5".parse().unwrap(), 4222),
                ("fd00::5".parse().unwrap(), 4222),
            ],
            targets: vec![],
        };
        let prog = compile(&spec).unwrap();
        let nats = [10, 0, 0, 5];
        assert_eq!(
            run(&prog, 0x0800, &v4_tcp([10, 0, 0, 9], 50000, nats, 4222)),
            0
        );
        assert_eq!(
            run(&prog, 0x0800, &v4_tcp(nats, 4222, [10, 0, 0, 9], 50000)),
            0
        );
        // Same host, other port; other host, same port: kept.
        assert_ne!(
            run(&prog, 0x0800, &v4_tcp([10, 0, 0, 9], 50000, nats, 80)),
            0
        );
        assert_ne!(
            run(
                &prog,
                0x0800,
                &v4_tcp([10, 0, 0, 9], 50000, [10, 0, 0, 6], 4222)
            ),
            0
        );
        assert_eq!(
            run(&prog, 0x86dd, &v6_tcp("fd00::9", 40000, "fd00::5", 4222)),
            0
        );
        assert_eq!(
            run(&prog, 0x86dd, &v6_tcp("fd00::5", 4222, "fd00::9", 40000)),
            0
        );
        assert_ne!(
            run(&prog, 0x86dd, &v6_tcp("fd00::9", 40000, "fd00::6", 4222)),
            0
        );
        // A later fragment carries no ports: kept rather than guessed at.
        let mut frag = v4_tcp([10, 0, 0, 9], 50000, nats, 4222);
        frag[6] = 0x00;
        frag[7] = 0x10;
        assert_ne!(run(&prog, 0x0800, &frag), 0);
    }

    #[test]
    fn targets_keep_only_their_traffic() {
        let spec = FilterSpec {
            exclude: vec![],
            targets: vec!["10.1.0.7".parse().unwrap(), "fd00::7".parse().unwrap()],
        };
        let prog = compile(&spec).unwrap();
        assert_ne!(
            run(&prog, 0x0800, &v4_tcp([10, 1, 0, 7], 1, [8, 8, 8, 8], 2)),
            0
        );
        assert_ne!(
            run(&prog, 0x0800, &v4_tcp([8, 8, 8, 8], 1, [10, 1, 0, 7], 2)),
            0
        );
        assert_eq!(
            run(&prog, 0x0800, &v4_tcp([8, 8, 8, 8], 1, [10, 1, 0, 8], 2)),
            0
        );
        assert_ne!(run(&prog, 0x86dd, &v6_tcp("fd00::1", 1, "fd00::7", 2)), 0);
        assert_ne!(run(&prog, 0x86dd, &v6_tcp("fd00::7", 1, "fd00::1", 2)), 0);
        assert_eq!(run(&prog, 0x86dd, &v6_tcp("fd00::1", 1, "fd00::8", 2)), 0);
    }

    #[test]
    fn long_target_lists_resolve_and_the_limit_is_reported() {
        let many: Vec<IpAddr> = (0..500u32)
            .map(|i| IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)))
            .collect();
        let spec = FilterSpec {
            exclude: vec![("10.9.9.9".parse().unwrap(), 4222)],
            targets: many,
        };
        let prog = compile(&spec).unwrap();
        assert_ne!(
            run(&prog, 0x0800, &v4_tcp([10, 0, 1, 243], 1, [1, 1, 1, 1], 2)),
            0
        );
        assert_eq!(
            run(&prog, 0x0800, &v4_tcp([10, 0, 2, 0], 1, [1, 1, 1, 1], 2)),
            0
        );
        let too_many = FilterSpec {
            exclude: vec![],
            targets: (0..300u128)
                .map(|i| IpAddr::V6(std::net::Ipv6Addr::from(0xfd00_u128 << 112 | i)))
                .collect(),
        };
        assert!(matches!(
            compile(&too_many),
            Err(FilterError::TooLarge { .. })
        ));
    }
}
