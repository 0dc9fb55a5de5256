//! ClusterIP allocation from the service CIDR, as the real allocator does it
//! (`pkg/registry/core/service/ipallocator`): the network and broadcast
//! addresses are never handed out; dynamic allocation takes a random free
//! address from the upper part of the range, above an offset
//! (`calculateRangeOffset`: `min(max(16, size/16), 256)`) kept for addresses
//! that users ask for, and falls back to the lower part only when the upper
//! one is full. The first host address (10.96.0.1) is kept for the
//! `kubernetes` Service and never allocated dynamically.
//!
//! The allocator keeps no state of its own: the addresses in use are those
//! of the Services in the store, read through the admission's view under the
//! store's lock, so allocation and the write that records it are one step
//! and a deleted Service frees its address at once.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::net::Ipv4Addr;

/// The service CIDR, e.g. `10.96.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceCidr {
    network: u32,
    prefix: u8,
}

/// Why a service CIDR is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to parse service CIDR {cidr:?}: {why}")]
pub struct CidrError {
    pub cidr: String,
    pub why: &'static str,
}

impl ServiceCidr {
    /// Parses `a.b.c.d/n` (IPv4, 8 <= n <= 30, host bits zero).
    pub fn parse(cidr: &str) -> Result<ServiceCidr, CidrError> {
        let err = |why| CidrError {
            cidr: cidr.to_string(),
            why,
        };
        let (addr, len) = cidr
            .split_once('/')
            .ok_or_else(|| err("no prefix length"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| err("not an IPv4 address"))?;
        let prefix: u8 = len.parse().map_err(|_| err("bad prefix length"))?;
        if !(8..=30).contains(&prefix) {
            return Err(err("prefix length must be between 8 and 30"));
        }
        let network = u32::from(addr);
        if network & !mask(prefix) != 0 {
            return Err(err("host bits are set"));
        }
        Ok(ServiceCidr { network, prefix })
    }

    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }

    /// Whether `ip` is in the CIDR at all (network and broadcast included).
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == self.network
    }

    /// Whether `ip` may be allocated: in the CIDR, not its network or
    /// broadcast address.
    pub fn allocatable(&self, ip: Ipv4Addr) -> bool {
        let n = u32::from(ip);
        self.contains(ip) && n != self.network && n != self.network + self.size() - 1
    }

    /// `calculateRangeOffset`: addresses below it are for static requests.
    fn offset(&self) -> u32 {
        let size = self.size();
        if size <= 16 {
            0
        } else {
            (size / 16).clamp(16, 256)
        }
    }

    /// A free address for a new Service, or `None` when the range is full.
    pub fn allocate(&self, in_use: &HashSet<Ipv4Addr>) -> Option<Ipv4Addr> {
        // Host addresses are network+1 ..= network+size-2; index 0 is
        // network+1 (the `kubernetes` Service's address).
        let hosts = self.size() - 2;
        let offset = self.offset().min(hosts);
        let free = |i: u32| {
            let ip = Ipv4Addr::from(self.network + 1 + i);
            (i != 0 && !in_use.contains(&ip)).then_some(ip)
        };
        let upper = hosts - offset;
        if upper > 0 {
            let start = random_below(upper);
            if let Some(ip) = (0..upper)
                .map(|k| offset + (start + k) % upper)
                .find_map(free)
            {
                return Some(ip);
            }
        }
        (0..offset).find_map(free)
    }
}

impl std::fmt::Display for ServiceCidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

/// A random number below `n` (n > 0), from the std hasher's random keys:
/// the real allocator picks at random too, and the lab needs no more.
fn random_below(n: u32) -> u32 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() % u64::from(n)) as u32
}

/// Why a requested address cannot be had, as the allocator says it
/// (`ErrAllocated`, `ErrNotInRange`).
pub fn refusal(cidr: &ServiceCidr, ip: Ipv4Addr, in_use: &HashSet<Ipv4Addr>) -> Option<String> {
    if !cidr.allocatable(ip) {
        Some(format!(
            "the provided IP ({ip}) is not in the valid range. The range of valid IPs is {cidr}"
        ))
    } else if in_use.contains(&ip) {
        Some("provided IP is already allocated".to_string())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr() -> ServiceCidr {
        ServiceCidr::parse("10.96.0.0/16").expect("valid")
    }

    #[test]
    fn parses_and_refuses_bad_cidrs() {
        assert_eq!(cidr().to_string(), "10.96.0.0/16");
        assert!(ServiceCidr::parse("10.96.0.1/16").is_err());
        assert!(ServiceCidr::parse("10.96.0.0").is_err());
        assert!(ServiceCidr::parse("10.96.0.0/31").is_err());
        assert!(ServiceCidr::parse("fd00::/108").is_err());
    }

    #[test]
    fn network_broadcast_and_outside_are_not_allocatable() {
        let c = cidr();
        assert!(!c.allocatable(Ipv4Addr::new(10, 96, 0, 0)));
        assert!(!c.allocatable(Ipv4Addr::new(10, 96, 255, 255)));
        assert!(!c.allocatable(Ipv4Addr::new(10, 97, 0, 1)));
        assert!(c.allocatable(Ipv4Addr::new(10, 96, 0, 1)));
        assert!(c.contains(Ipv4Addr::new(10, 96, 255, 255)));
    }

    #[test]
    fn dynamic_allocation_uses_the_upper_band_and_never_repeats() {
        let c = cidr();
        let mut used = HashSet::new();
        for _ in 0..2000 {
            let ip = c.allocate(&used).expect("free");
            assert!(
                u32::from(ip) >= u32::from(Ipv4Addr::new(10, 96, 1, 1)),
                "{ip}"
            );
            assert!(c.allocatable(ip));
            assert!(used.insert(ip), "{ip} handed out twice");
        }
    }

    #[test]
    fn a_full_upper_band_falls_back_to_the_lower_one_but_not_to_dot_one() {
        let c = ServiceCidr::parse("10.96.0.0/24").expect("valid");
        // /24: 254 hosts, offset 16: the upper band is 10.96.0.17..254.
        let mut used: HashSet<Ipv4Addr> = (17..=254).map(|d| Ipv4Addr::new(10, 96, 0, d)).collect();
        let ip = c.allocate(&used).expect("lower band");
        assert_eq!(ip, Ipv4Addr::new(10, 96, 0, 2));
        used.extend((2..=16).map(|d| Ipv4Addr::new(10, 96, 0, d)));
        assert_eq!(
            c.allocate(&used),
            None,
            "10.96.0.1 stays for the kubernetes Service"
        );
    }

    #[test]
    fn refusals_read_as_the_allocator_writes_them() {
        let c = cidr();
        let used = HashSet::from([Ipv4Addr::new(10, 96, 0, 10)]);
        assert_eq!(
            refusal(&c, Ipv4Addr::new(10, 96, 0, 10), &used).as_deref(),
            Some("provided IP is already allocated")
        );
        assert_eq!(
            refusal(&c, Ipv4Addr::new(10, 0, 0, 10), &used).as_deref(),
            Some(
                "the provided IP (10.0.0.10) is not in the valid range. The range of valid IPs is 10.96.0.0/16"
            )
        );
        assert_eq!(refusal(&c, Ipv4Addr::new(10, 96, 0, 11), &used), None);
    }
}
