//! Two small value types every observation carries: [`Zxid`], the
//! transaction id whose high 32 bits count leader elections, and
//! [`Version`], the server's release, which decides whether a rolling
//! address change is safe (ZOOKEEPER-3829).

use std::fmt;
use std::str::FromStr;

/// A ZooKeeper transaction id: the high 32 bits are the leader epoch (each
/// new leader increments it), the low 32 bits count transactions within it.
/// Displayed as ZooKeeper prints it, `0x` and lower-case hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Zxid(pub u64);

impl Zxid {
    /// The leader epoch (high 32 bits). The number of elections between two
    /// observations is the difference of their epochs.
    pub fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The transaction counter within the epoch (low 32 bits).
    pub fn counter(self) -> u32 {
        self.0 as u32
    }

    /// Builds a zxid from its two halves.
    pub fn from_parts(epoch: u32, counter: u32) -> Self {
        Zxid((u64::from(epoch) << 32) | u64::from(counter))
    }

    /// Parses `0x...` hex as `srvr` prints it. A bare hex string is
    /// accepted too, as `conf` prints the config version (`version=100000000`).
    pub fn parse(s: &str) -> Option<Zxid> {
        let s = s.trim();
        let hex = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        if hex.is_empty() || hex.len() > 16 {
            return None;
        }
        u64::from_str_radix(hex, 16).ok().map(Zxid)
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl FromStr for Zxid {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Zxid::parse(s).ok_or_else(|| format!("`{s}` is not a hex zxid"))
    }
}

/// A ZooKeeper release as the server reports it (`3.8.0-<git>, built on
/// ...`). `raw` keeps the whole string for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// The full string the server printed.
    pub raw: String,
}

impl Version {
    /// Parses the leading `major.minor.patch` of a version string; what
    /// follows (`-<git id>`, `, built on ...`) stays in `raw` only.
    pub fn parse(s: &str) -> Option<Version> {
        let raw = s.trim();
        let end = raw
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(raw.len());
        let mut parts = raw[..end].split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next().unwrap_or("0").parse().ok()?;
        Some(Version {
            major,
            minor,
            patch,
            raw: raw.to_string(),
        })
    }

    /// True for the releases where a rolling change of server addresses
    /// without `reconfig` breaks the ensemble: 3.5.0 to 3.5.8 and 3.6.0 to
    /// 3.6.1 (ZOOKEEPER-3829, fixed in 3.5.9 and 3.6.2).
    pub fn affected_by_zookeeper_3829(&self) -> bool {
        matches!(
            (self.major, self.minor, self.patch),
            (3, 5, 0..=8) | (3, 6, 0..=1)
        )
    }

    /// True for 3.5 and later: dynamic configuration, `membership:` in
    /// `conf`, `;clientPort` on server lines.
    pub fn has_dynamic_config(&self) -> bool {
        (self.major, self.minor) >= (3, 5)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zxid_halves() {
        let z = Zxid::parse("0x50000001c").unwrap();
        assert_eq!(z.epoch(), 5);
        assert_eq!(z.counter(), 0x1c);
        assert_eq!(Zxid::from_parts(5, 0x1c), z);
        assert_eq!(z.to_string(), "0x50000001c");
        assert_eq!(Zxid::parse("0x0"), Some(Zxid(0)));
        assert_eq!(Zxid::parse("100000000"), Some(Zxid(1 << 32)));
        assert_eq!(Zxid::parse("0x"), None);
        assert_eq!(Zxid::parse("0xzz"), None);
        assert_eq!(Zxid::parse("0x1ffffffffffffffff"), None);
    }

    #[test]
    fn version_parses_real_strings() {
        let v = Version::parse("3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (3, 8, 0));
        assert!(v.raw.starts_with("3.8.0-$"));
        let v =
            Version::parse("3.4.14-4c25d480e66aadd371de8bd2fd8da255ac140bcf, built on 03/06/2019")
                .unwrap();
        assert_eq!(v.to_string(), "3.4.14");
        assert!(!v.has_dynamic_config());
        assert_eq!(Version::parse("garbage"), None);
    }

    #[test]
    fn zookeeper_3829_range() {
        let affected = |s: &str| Version::parse(s).unwrap().affected_by_zookeeper_3829();
        for v in ["3.5.0", "3.5.5", "3.5.8", "3.6.0", "3.6.1"] {
            assert!(affected(v), "{v}");
        }
        for v in [
            "3.4.14", "3.5.9", "3.6.2", "3.6.4", "3.7.0", "3.8.0", "3.9.2",
        ] {
            assert!(!affected(v), "{v}");
        }
    }

    proptest! {
        #[test]
        fn zxid_round_trips(n in any::<u64>()) {
            let z = Zxid(n);
            prop_assert_eq!(Zxid::parse(&z.to_string()), Some(z));
            prop_assert_eq!(Zxid::from_parts(z.epoch(), z.counter()), z);
        }

        #[test]
        fn zxid_and_version_never_panic(s in ".*") {
            let _ = Zxid::parse(&s);
            let _ = Version::parse(&s);
        }
    }
}
