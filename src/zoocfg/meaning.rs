//! Configs compared by what ZooKeeper reads from them, not by their bytes.
//!
//! In 3.5+ dynamic mode the server rewrites `zoo.cfg` itself at start: it
//! drops comments, reorders keys and points `dynamicConfigFile` at
//! `zoo.cfg.dynamic.<version>` (see `tests/fixtures/zoocfg/`). After a
//! restart, the question "is this still the config we wrote?" is answered
//! here: a [`Meaning`] is the key-to-value map (trimmed, last one wins) plus
//! the server entries with ZooKeeper's defaults filled in. Keys the server
//! may change on its own are dropped by the caller with [`Meaning::without`].

use std::collections::BTreeMap;

use super::ZooCfgError;
use super::document::{ZooCfg, server_entry};
use super::server_line::ServerSpec;

/// What a config means to ZooKeeper.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meaning {
    /// Every key but `server.N`, to its trimmed effective value.
    pub properties: BTreeMap<String, String>,
    /// The effective server entries, normalized (see
    /// [`ServerSpec::normalized`]).
    pub servers: BTreeMap<u32, ServerSpec>,
}

impl Meaning {
    /// The same meaning without `key`, for keys that legitimately differ,
    /// e.g. [`super::keys::DYNAMIC_CONFIG_FILE`] after a 3.5+ server's restart.
    pub fn without(mut self, key: &str) -> Self {
        self.properties.remove(key);
        self
    }
}

impl ZooCfg {
    /// What this config means; fails where [`ZooCfg::servers`] fails.
    pub fn meaning(&self) -> Result<Meaning, ZooCfgError> {
        let mut meaning = Meaning::default();
        for property in self.properties() {
            match server_entry(property)? {
                Some(entry) => {
                    meaning.servers.insert(entry.id, entry.spec.normalized());
                }
                None => {
                    meaning
                        .properties
                        .insert(property.key.to_owned(), property.value.to_owned());
                }
            }
        }
        Ok(meaning)
    }
}

/// Whether two configs mean the same to ZooKeeper. To ignore a key, compare
/// `a.meaning()?.without(key) == b.meaning()?.without(key)`.
pub fn semantic_eq(a: &ZooCfg, b: &ZooCfg) -> Result<bool, ZooCfgError> {
    Ok(a.meaning()? == b.meaning()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zoocfg::keys;

    fn cfg(text: &str) -> ZooCfg {
        ZooCfg::parse(text).unwrap()
    }

    #[test]
    fn ignores_comments_order_spacing_and_defaults() {
        let a = cfg("# c\ntickTime=500\ninitLimit = 10 \nserver.1=h:1:2;2181\n");
        let b = cfg("server.1 = h:1:2:PARTICIPANT;0.0.0.0:2181\r\ninitLimit:10\r\ntickTime 500");
        assert_eq!(semantic_eq(&a, &b), Ok(true));
    }

    #[test]
    fn sees_real_differences() {
        let a = cfg("tickTime=500\nserver.1=h:1:2\n");
        assert_eq!(
            semantic_eq(&a, &cfg("tickTime=501\nserver.1=h:1:2\n")),
            Ok(false)
        );
        assert_eq!(
            semantic_eq(&a, &cfg("tickTime=500\nserver.1=h:1:2:observer\n")),
            Ok(false)
        );
        assert_eq!(
            semantic_eq(&a, &cfg("tickTime=500\nserver.1=h:1:2\nserver.2=g:1:2\n")),
            Ok(false)
        );
        assert_eq!(
            semantic_eq(&a, &cfg("tickTime=500\nserver.1=h:1:2\nx=\n")),
            Ok(false)
        );
    }

    #[test]
    fn without_drops_a_key() {
        let a = cfg("dynamicConfigFile=/c/zoo.cfg.dynamic\nx=1\n");
        let b = cfg("x=1\ndynamicConfigFile=/c/zoo.cfg.dynamic.100000000\n");
        assert_eq!(semantic_eq(&a, &b), Ok(false));
        let key = keys::DYNAMIC_CONFIG_FILE;
        assert_eq!(
            a.meaning().unwrap().without(key),
            b.meaning().unwrap().without(key)
        );
    }

    #[test]
    fn fails_on_a_bad_server_line() {
        assert!(matches!(
            cfg("server.1=h:1").meaning(),
            Err(ZooCfgError::InvalidServerLine { line: 1, id: 1, .. })
        ));
    }
}
