//! Wall-clock helpers: Unix seconds and RFC 3339 UTC timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time (the `time` crate's RFC 3339 formatter).
pub fn rfc3339(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|u| time::OffsetDateTime::from_unix_timestamp(u).ok())
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "9999-12-31T23:59:59Z".to_owned())
}

/// The current time as RFC 3339 UTC with milliseconds (`YYYY-MM-DDTHH:MM:SS.mmmZ`; the
/// fraction is left out when it is zero): journal records, whose spacing shows how soon a run
/// had every account locked.
pub fn rfc3339_millis_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(u32::from(now.millisecond()) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| rfc3339(unix_now()))
}

/// Unix milliseconds of an RFC 3339 timestamp (the journal's, or one made by
/// `directory::from_generalized`).
pub(crate) fn unix_millis(rfc3339: &str) -> Option<i128> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp_nanos() / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_format_correctly() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn now_with_milliseconds_has_at_most_three_fraction_digits() {
        let t = rfc3339_millis_now();
        assert!(
            t.ends_with('Z') && t.len() <= "2026-12-02T01:28:40.123Z".len(),
            "{t}"
        );
        assert!(t.starts_with(&rfc3339(unix_now())[..10]), "{t}");
    }
}
