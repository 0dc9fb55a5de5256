//! zklab: the lab where zkmigrate is rehearsed and proven (DESIGN section 8).
//!
//! # Layout
//!
//! - [`testkit`]: real ZooKeeper 3.8 ensembles on loopback addresses, for
//!   tests: started with Debian's package, stopped on drop.
pub mod testkit;
