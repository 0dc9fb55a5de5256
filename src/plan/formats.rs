//! The value formats the plan's rules are made of: DNS-1123 and DNS-1035
//! names, Kubernetes quantities, chroots, host names.
//!
//! Each check is a pure predicate that returns `Err(reason)` in words an
//! operator understands; `validate` adds the field path and the position.
//! They follow the Kubernetes API server's own rules (apimachinery
//! `validation.IsDNS1123Label` and friends) so that a plan that validates
//! here is not refused later by the cluster, in the middle of a migration.

/// Most characters of a DNS-1123 or DNS-1035 label.
pub const MAX_LABEL_LEN: usize = 63;

/// Most characters of a StatefulSet name: the controller appends `-` and a
/// 10-character revision hash to it in a label value (63 at most).
pub const MAX_STATEFULSET_NAME_LEN: usize = 52;

/// A DNS-1123 label: lower-case letters, digits and `-`, starting and
/// ending with a letter or digit, at most 63 characters.
pub fn check_dns1123_label(value: &str) -> Result<(), String> {
    check_label(
        value,
        "a DNS-1123 label",
        "lower-case letters, digits and '-', starting and ending with a letter or digit",
        |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
    )
}

/// A DNS-1035 label (what a Service name must be): as DNS-1123, but the
/// first character is a letter.
pub fn check_dns1035_label(value: &str) -> Result<(), String> {
    check_label(
        value,
        "a DNS-1035 label",
        "lower-case letters, digits and '-', starting with a letter and ending with a letter or digit",
        |c| c.is_ascii_lowercase(),
    )
}

fn check_label(
    value: &str,
    what: &str,
    rule: &str,
    first_ok: fn(char) -> bool,
) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("must be {what} ({rule}), not empty"));
    }
    if value.len() > MAX_LABEL_LEN {
        return Err(format!(
            "{value:?} is not {what}: {} characters, at most {MAX_LABEL_LEN}",
            value.len()
        ));
    }
    let body_ok = value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let first = value.chars().next().is_some_and(first_ok);
    let last = value
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if body_ok && first && last {
        Ok(())
    } else {
        Err(format!("{value:?} is not {what} ({rule})"))
    }
}

/// A DNS-1123 subdomain: DNS-1123 labels joined by `.`, at most 253
/// characters (a cluster domain, a StorageClass name).
pub fn check_dns1123_subdomain(value: &str) -> Result<(), String> {
    if value.len() > 253 {
        return Err(format!("{value:?} is longer than 253 characters"));
    }
    if value.is_empty()
        || value
            .split('.')
            .any(|label| check_dns1123_label(label).is_err())
    {
        return Err(format!(
            "{value:?} is not a DNS-1123 subdomain (lower-case labels of letters, digits and '-', joined by '.')"
        ));
    }
    Ok(())
}

/// A host name as clients resolve it (RFC 1123, any case): letters,
/// digits and `-` in labels of at most 63, joined by `.`.
pub fn check_hostname(value: &str) -> Result<(), String> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let name = value.strip_suffix('.').unwrap_or(value);
    if name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is neither an IPv4 address nor a DNS name"
        ))
    }
}

/// A Kubernetes quantity as a volume size takes it: a positive decimal
/// number and an optional binary (`Ki`..`Ei`) or decimal (`k`..`E`) suffix.
/// Simpler than apimachinery's grammar (no exponents, no sign), which is
/// all a storage size needs.
pub fn check_storage_quantity(value: &str) -> Result<(), String> {
    const SUFFIXES: [&str; 12] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E",
    ];
    let number = SUFFIXES
        .iter()
        .find_map(|suffix| value.strip_suffix(suffix))
        .unwrap_or(value);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let well_formed = !whole.is_empty()
        && digits(whole)
        && digits(fraction)
        && !(number.contains('.') && fraction.is_empty());
    let positive = number.chars().any(|c| ('1'..='9').contains(&c));
    match (well_formed, positive) {
        (true, true) => Ok(()),
        (true, false) => Err(format!("{value:?} is not a positive size")),
        (false, _) => Err(format!(
            "{value:?} is not a Kubernetes quantity (a number with an optional suffix Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P or E, e.g. 10Gi)"
        )),
    }
}

/// A ZooKeeper chroot: `/` followed by path segments. Returns `Ok(None)`
/// for `/` itself, which is the same as no chroot.
pub fn check_chroot(value: &str) -> Result<Option<String>, String> {
    if !value.starts_with('/') {
        return Err(format!("{value:?} must start with '/'"));
    }
    if value == "/" {
        return Ok(None);
    }
    if value.ends_with('/') {
        return Err(format!("{value:?} must not end with '/'"));
    }
    if let Some(c) = value
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == ',')
    {
        return Err(format!(
            "{value:?} holds {c:?}, which would break the connection string"
        ));
    }
    for segment in value[1..].split('/') {
        match segment {
            "" => return Err(format!("{value:?} holds an empty path segment")),
            "." | ".." => {
                return Err(format!("{value:?} holds a relative segment {segment:?}"));
            }
            _ => {}
        }
    }
    if value == "/zookeeper" || value.starts_with("/zookeeper/") {
        return Err(format!(
            "{value:?} is under /zookeeper, which ZooKeeper reserves for itself"
        ));
    }
    Ok(Some(value.to_string()))
}

/// The `{placeholder}`s a template may hold; any other `{...}` is an error.
pub fn check_placeholders(value: &str, allowed: &[&str]) -> Result<(), String> {
    let mut rest = value;
    while let Some(start) = rest.find('{') {
        let after = &rest[start..];
        let Some(end) = after.find('}') else {
            return Err(format!("{value:?} has an unclosed '{{'"));
        };
        let name = &after[..=end];
        if !allowed.contains(&name) {
            return Err(format!(
                "{value:?} holds the unknown placeholder {name}; known: {}",
                allowed.join(", ")
            ));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns1123_labels() {
        for ok in ["a", "zk", "zk-1", "1zk", "orders-2024", &"a".repeat(63)] {
            assert!(check_dns1123_label(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Zk", "zk_1", "-zk", "zk-", "zk.1", &"a".repeat(64)] {
            assert!(check_dns1123_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dns1035_labels_start_with_a_letter() {
        assert!(check_dns1035_label("zk-1").is_ok());
        assert!(check_dns1035_label("1-zk").is_err());
        assert!(check_dns1035_label("zk-").is_err());
    }

    #[test]
    fn subdomains() {
        assert!(check_dns1123_subdomain("cluster.local").is_ok());
        assert!(check_dns1123_subdomain("fast-ssd").is_ok());
        assert!(check_dns1123_subdomain("cluster..local").is_err());
        assert!(check_dns1123_subdomain("Cluster.local").is_err());
        assert!(check_dns1123_subdomain("").is_err());
    }

    #[test]
    fn hostnames() {
        assert!(check_hostname("zk1.prod.internal").is_ok());
        assert!(check_hostname("ZK1.Prod.Internal.").is_ok());
        assert!(check_hostname("zk_1.prod").is_err());
        assert!(check_hostname("zk1..prod").is_err());
        assert!(check_hostname("-zk1").is_err());
    }

    #[test]
    fn quantities() {
        for ok in ["10Gi", "1", "500M", "1.5Ti", "100k", "0.5Gi"] {
            assert!(check_storage_quantity(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "Gi", "10 Gi", "10GB", "10gi", "-1Gi", "0", "0Gi", "1.Gi", ".5Gi", "1e3",
        ] {
            assert!(check_storage_quantity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chroots() {
        assert_eq!(check_chroot("/kafka"), Ok(Some("/kafka".to_string())));
        assert_eq!(check_chroot("/a/b-c"), Ok(Some("/a/b-c".to_string())));
        assert_eq!(check_chroot("/"), Ok(None));
        for bad in [
            "kafka",
            "",
            "/kafka/",
            "/a//b",
            "/a/../b",
            "/a,b",
            "/a b",
            "/zookeeper",
            "/zookeeper/quota",
        ] {
            assert!(check_chroot(bad).is_err(), "{bad}");
        }
        assert!(check_chroot("/zookeeperish").is_ok());
    }

    #[test]
    fn placeholders() {
        assert!(check_placeholders("zk-{id}", &["{id}"]).is_ok());
        assert!(check_placeholders("{host}-{id}", &["{host}", "{id}"]).is_ok());
        assert!(check_placeholders("zk-{name}", &["{id}"]).is_err());
        assert!(check_placeholders("zk-{id", &["{id}"]).is_err());
    }
}
