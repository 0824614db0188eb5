//! The two date formats the dashboard reads: ISO 8601 (a JavaScript `Date` in JSON) and the
//! `Date#toString` form of the reference's `handshake.time`, both in UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// Date and time of `t` in UTC: (year, month 1-12, day, hours, minutes, seconds, millis,
/// weekday 0 = Sunday).
fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32, u32, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    // Days to civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = (days + 4).rem_euclid(7) as u32;
    (
        year,
        month,
        day,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis(),
        weekday,
    )
}

/// `2026-12-01T22:03:27.123Z`, as `JSON.stringify(new Date())`.
pub(super) fn iso(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, ms, _) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// `Tue Dec 01 2026 22:03:27 GMT+0000 (Coordinated Universal Time)`, as
/// `new Date().toString()` on a host in UTC.
pub(super) fn js_string(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, _, wd) = civil(t);
    format!(
        "{} {} {d:02} {y} {h:02}:{mi:02}:{s:02} GMT+0000 (Coordinated Universal Time)",
        DAYS[wd as usize % 7],
        MONTHS[(mo as usize + 11) % 12],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_like_javascript() {
        // 2026-12-01T22:03:27.123Z, a Tuesday.
        let t = UNIX_EPOCH + Duration::from_millis(1_796_162_607_123);
        assert_eq!(iso(t), "2026-12-01T22:03:27.123Z");
        assert_eq!(
            js_string(t),
            "Tue Dec 01 2026 22:03:27 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(iso(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(iso(t), "2000-02-29T00:00:00.000Z");
    }
}
