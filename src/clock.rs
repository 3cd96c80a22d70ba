//! Wall-clock helpers: the one place that reads the system time.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Formats milliseconds since the epoch as RFC 3339 with whole seconds, in UTC
/// (`2026-11-26T12:00:00Z`), the form every Hetzner client accepts.
pub fn rfc3339(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_have_seconds() {
        assert_eq!(super::rfc3339(1_700_000_000_123), "2023-11-14T22:13:20Z");
    }
}
