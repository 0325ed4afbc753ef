//! Timestamp resolutions and the conversions between capture ticks and Unix nanoseconds.

/// Unit of the timestamps of one capture interface, as carried by the pcapng `if_tsresol` option.
///
/// The exponent is kept as a full `u8` so that any byte found in a file can be represented;
/// conversions saturate instead of panicking, because corrupt or exotic files (2^-70, 10^-30)
/// must not bring the pipeline down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TsResolution {
    /// One tick is 10^-n seconds.
    Decimal(u8),
    /// One tick is 2^-n seconds.
    Binary(u8),
}

/// 10^0 ..= 10^19: every power of ten that fits in a `u64`.
const POW10: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

const NS_PER_S: u64 = 1_000_000_000;

impl Default for TsResolution {
    /// pcapng says an interface without `if_tsresol` counts in microseconds.
    fn default() -> Self {
        Self::MICROSECONDS
    }
}

impl TsResolution {
    /// Classic pcap and the pcapng default.
    pub const MICROSECONDS: Self = Self::Decimal(6);
    /// Classic nanosecond pcap and what Linux capture tools usually write into pcapng.
    pub const NANOSECONDS: Self = Self::Decimal(9);

    /// Decodes the raw `if_tsresol` byte (high bit set: power of two, else power of ten).
    pub const fn from_if_tsresol(raw: u8) -> Self {
        if raw & 0x80 != 0 {
            Self::Binary(raw & 0x7f)
        } else {
            Self::Decimal(raw)
        }
    }

    /// Encodes as the raw `if_tsresol` byte; `None` when the exponent does not fit in 7 bits
    /// and so cannot be written to a file.
    pub const fn to_if_tsresol(self) -> Option<u8> {
        match self {
            Self::Decimal(n) if n < 0x80 => Some(n),
            Self::Binary(n) if n < 0x80 => Some(n | 0x80),
            _ => None,
        }
    }

    /// Converts a tick count to nanoseconds, rounding towards zero and saturating at
    /// `i64::MAX`, so that no value read from a file can overflow.
    #[inline]
    pub fn ticks_to_ns(self, ticks: u64) -> i64 {
        let ns: u64 = match self {
            Self::Decimal(n) if n <= 9 => ticks.saturating_mul(POW10[usize::from(9 - n)]),
            Self::Decimal(n) => match POW10.get(usize::from(n - 9)) {
                Some(div) => ticks / div,
                // 10^20 and beyond exceed any u64 tick count.
                None => 0,
            },
            Self::Binary(n) => {
                let wide = u128::from(ticks) * u128::from(NS_PER_S);
                u64::try_from(wide.checked_shr(u32::from(n)).unwrap_or(0)).unwrap_or(u64::MAX)
            }
        };
        i64::try_from(ns).unwrap_or(i64::MAX)
    }

    /// Converts nanoseconds to ticks, rounding down; `None` if the result does not fit in the
    /// 64-bit pcapng timestamp.
    pub fn ns_to_ticks(self, ns: u64) -> Option<u64> {
        match self {
            Self::Decimal(n) if n <= 9 => Some(ns / POW10[usize::from(9 - n)]),
            Self::Decimal(n) => match POW10.get(usize::from(n - 9)) {
                Some(mul) => ns.checked_mul(*mul),
                None => (ns == 0).then_some(0),
            },
            Self::Binary(n) => {
                let wide = u128::from(ns);
                if ns != 0 && wide.leading_zeros() < u32::from(n) {
                    return None;
                }
                let shifted = wide.checked_shl(u32::from(n)).unwrap_or(0);
                u64::try_from(shifted / u128::from(NS_PER_S)).ok()
            }
        }
    }

    /// Length of one tick in nanoseconds, rounded up (at least 1); used to state how much
    /// precision a round trip through this resolution loses.
    pub fn tick_ns_ceil(self) -> u64 {
        match self {
            Self::Decimal(n) if n <= 9 => POW10[usize::from(9 - n)],
            Self::Decimal(_) => 1,
            Self::Binary(n) => {
                let unit = u128::from(NS_PER_S);
                let den = 1u128.checked_shl(u32::from(n)).unwrap_or(u128::MAX);
                u64::try_from(unit.div_ceil(den)).unwrap_or(u64::MAX).max(1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_byte_round_trip() {
        for raw in 0..=u8::MAX {
            let r = TsResolution::from_if_tsresol(raw);
            assert_eq!(r.to_if_tsresol(), Some(raw));
        }
        assert_eq!(TsResolution::from_if_tsresol(6), TsResolution::MICROSECONDS);
        assert_eq!(
            TsResolution::from_if_tsresol(0x80 | 20),
            TsResolution::Binary(20)
        );
        assert_eq!(TsResolution::Decimal(200).to_if_tsresol(), None);
        assert_eq!(TsResolution::default(), TsResolution::Decimal(6));
    }

    #[test]
    fn common_resolutions() {
        assert_eq!(
            TsResolution::Decimal(6).ticks_to_ns(1_500_000),
            1_500_000_000
        );
        assert_eq!(TsResolution::Decimal(9).ticks_to_ns(7), 7);
        assert_eq!(TsResolution::Decimal(0).ticks_to_ns(3), 3_000_000_000);
        assert_eq!(TsResolution::Decimal(12).ticks_to_ns(5_000), 5);
        // 2^-20 s: 2^20 ticks are exactly one second.
        assert_eq!(TsResolution::Binary(20).ticks_to_ns(1 << 20), 1_000_000_000);
        assert_eq!(TsResolution::Binary(0).ticks_to_ns(2), 2_000_000_000);
    }

    #[test]
    fn nonsense_resolutions_saturate_instead_of_panicking() {
        for n in 0..=u8::MAX {
            for ticks in [0, 1, 12345, u64::MAX / 2, u64::MAX] {
                let d = TsResolution::Decimal(n).ticks_to_ns(ticks);
                let b = TsResolution::Binary(n).ticks_to_ns(ticks);
                assert!(d >= 0 && b >= 0);
                let _ = TsResolution::Decimal(n).ns_to_ticks(ticks);
                let _ = TsResolution::Binary(n).ns_to_ticks(ticks);
                assert!(TsResolution::Binary(n).tick_ns_ceil() >= 1);
            }
        }
        assert_eq!(TsResolution::Decimal(30).ticks_to_ns(u64::MAX), 0);
        assert_eq!(TsResolution::Binary(70).ticks_to_ns(u64::MAX), 15_624_999);
        assert_eq!(TsResolution::Binary(127).ticks_to_ns(u64::MAX), 0);
        assert_eq!(TsResolution::Decimal(0).ticks_to_ns(u64::MAX), i64::MAX);
        assert_eq!(TsResolution::Binary(0).ticks_to_ns(u64::MAX), i64::MAX);
        assert_eq!(TsResolution::Decimal(30).ns_to_ticks(1), None);
        assert_eq!(TsResolution::Decimal(30).ns_to_ticks(0), Some(0));
        assert_eq!(TsResolution::Binary(100).ns_to_ticks(1), None);
        assert_eq!(TsResolution::Binary(127).ns_to_ticks(0), Some(0));
    }

    #[test]
    fn ns_to_ticks_then_back_loses_less_than_one_tick() {
        let ns = 1_700_000_000_123_456_789u64;
        for r in [
            TsResolution::Decimal(0),
            TsResolution::Decimal(3),
            TsResolution::Decimal(6),
            TsResolution::Decimal(9),
            TsResolution::Binary(10),
            TsResolution::Binary(20),
            TsResolution::Binary(32),
        ] {
            let ticks = r.ns_to_ticks(ns).expect("fits");
            let back = r.ticks_to_ns(ticks) as u64;
            assert!(
                back <= ns && ns - back <= r.tick_ns_ceil(),
                "{r:?}: {back} vs {ns}"
            );
        }
        // Ticks finer than a nanosecond: exact for whole nanoseconds (10^-12 would overflow
        // 64 bits for present-day dates).
        assert_eq!(TsResolution::Decimal(12).ns_to_ticks(ns), None);
        let r = TsResolution::Decimal(10);
        assert_eq!(r.ticks_to_ns(r.ns_to_ticks(ns).expect("fits")), ns as i64);
    }
}
