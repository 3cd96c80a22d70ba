//! The API's rules for names, sizes and labels, as pure checks. The simulator
//! enforces them; the module and the inventory check them before anything is
//! sent, so a bad value is reported with its parameter and not as an API error.

use std::sync::LazyLock;

use regex::Regex;

/// Smallest volume size in GB.
pub const MIN_VOLUME_GB: u32 = 10;
/// Largest volume size in GB.
pub const MAX_VOLUME_GB: u32 = 10240;
/// Most volumes one server can have attached.
pub const MAX_VOLUMES_PER_SERVER: usize = 16;

static NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,62}[a-zA-Z0-9])?$").expect("valid regex")
});
static LABEL_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$").expect("valid regex")
});
static LABEL_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
        .expect("valid regex")
});

/// Checks a volume name: 1 to 64 characters, letters and digits at both ends,
/// `.`, `_` and `-` inside.
pub fn check_volume_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > 64 {
        return Err(format!(
            "is {} characters long; at most 64 are allowed",
            name.len()
        ));
    }
    if !NAME.is_match(name) {
        return Err("must start and end with a letter or digit and contain only letters, digits, '.', '_' and '-'"
            .into());
    }
    Ok(())
}

/// Checks a volume size in GB.
pub fn check_volume_size(size: i64) -> Result<(), String> {
    if !(i64::from(MIN_VOLUME_GB)..=i64::from(MAX_VOLUME_GB)).contains(&size) {
        return Err(format!(
            "must be between {MIN_VOLUME_GB} and {MAX_VOLUME_GB} (GB), got {size}"
        ));
    }
    Ok(())
}

/// Checks one label: an optional DNS-style prefix and `/`, a name of at most
/// 63 characters, and a value that is empty or follows the name's rule.
pub fn check_label(key: &str, value: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.len() > 253 || !LABEL_PREFIX.is_match(p) {
            return Err(format!(
                "label key '{key}': the prefix must be a DNS subdomain"
            ));
        }
        if p == "hetzner.cloud" || p.ends_with(".hetzner.cloud") {
            return Err(format!(
                "label key '{key}': the prefix hetzner.cloud is reserved"
            ));
        }
    }
    if !LABEL_NAME.is_match(name) {
        return Err(format!(
            "label key '{key}': must be 1-63 characters, letters or digits at both ends, '.', '_' or '-' inside"
        ));
    }
    if !value.is_empty() && !LABEL_NAME.is_match(value) {
        return Err(format!(
            "label '{key}' value '{value}': must be empty or 1-63 characters, letters or digits at both ends, \
             '.', '_' or '-' inside"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names() {
        let ok = [
            "a",
            "vol-minio-01",
            "kbv3-db-postgres-01-data",
            "A.b_c-9",
            &"x".repeat(64),
        ];
        for n in ok {
            assert_eq!(check_volume_name(n), Ok(()), "{n}");
        }
        let bad = [
            ("", "is empty"),
            ("-a", "must start and end"),
            ("a-", "must start and end"),
            ("a b", "must start and end"),
            ("ü", "must start and end"),
        ];
        for (n, want) in bad {
            assert!(check_volume_name(n).unwrap_err().contains(want), "{n}");
        }
        assert_eq!(
            check_volume_name(&"x".repeat(65)).unwrap_err(),
            "is 65 characters long; at most 64 are allowed"
        );
    }

    #[test]
    fn sizes() {
        assert!(check_volume_size(10).is_ok());
        assert!(check_volume_size(10240).is_ok());
        assert_eq!(
            check_volume_size(5).unwrap_err(),
            "must be between 10 and 10240 (GB), got 5"
        );
        assert!(check_volume_size(10241).is_err());
    }

    #[test]
    fn labels() {
        let ok = [
            ("role", "db"),
            ("kbv3.io/managed-by", "kbv3"),
            ("empty", ""),
            ("a", "1.2_3-x"),
        ];
        for (k, v) in ok {
            assert_eq!(check_label(k, v), Ok(()), "{k}={v}");
        }
        let bad = [
            ("", "x"),
            ("-a", "x"),
            ("a", "-x"),
            ("a", "has space"),
            ("hetzner.cloud/x", "y"),
            ("Bad_Prefix/x", "y"),
        ];
        for (k, v) in bad {
            assert!(check_label(k, v).is_err(), "{k}={v}");
        }
    }
}
