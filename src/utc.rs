//! Wall-clock instants as UTC text: nanoseconds since the epoch, RFC 3339 (capture headers,
//! the `ts` of JSON records) and compact stamps for file names. The caller reads the clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch (negative before 1970), saturating.
pub fn unix_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// RFC 3339 in UTC (`YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`) for nanoseconds since the epoch.
/// Hand-written (days → civil date, H. Hinnant's algorithm) to avoid a date crate for one line.
pub fn rfc3339(unix_ns: i64) -> String {
    rfc3339_digits(unix_ns, 9)
}

/// RFC 3339 in UTC with microseconds (`YYYY-MM-DDTHH:MM:SS.uuuuuuZ`, the `ts` of headless JSON
/// records): [`rfc3339`] cut to whole microseconds (truncated, never rounded up a second).
pub fn rfc3339_micros(unix_ns: i64) -> String {
    rfc3339_digits(unix_ns, 6)
}

/// RFC 3339 with `digits` (1..=9) of the fraction, truncated.
fn rfc3339_digits(unix_ns: i64, digits: u32) -> String {
    let (date, secs_of_day, nanos) = split(unix_ns);
    let (y, m, d) = date;
    let digits = digits.clamp(1, 9);
    let fraction = nanos / 10i64.pow(9 - digits);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{fraction:0width$}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
        width = digits as usize
    )
}

/// A compact UTC stamp for file names: `20231114T221320Z`.
pub fn file_stamp(unix_ns: i64) -> String {
    let ((y, m, d), s, _) = split(unix_ns);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn split(unix_ns: i64) -> ((i64, u32, u32), i64, i64) {
    let secs = unix_ns.div_euclid(1_000_000_000);
    let nanos = unix_ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let secs_of_day = secs.rem_euclid(86_400);
    (civil_from_days(days), secs_of_day, nanos)
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_answers() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        // `date -u -d @1700000000` → Tue Nov 14 22:13:20 UTC 2023
        assert_eq!(
            rfc3339(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
        // Leap day, and the day after.
        assert_eq!(
            rfc3339(951_782_400 * 1_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(
            rfc3339(951_868_800 * 1_000_000_000),
            "2000-03-01T00:00:00.000000000Z"
        );
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(file_stamp(1_700_000_000_000_000_000), "20231114T221320Z");
    }
}
