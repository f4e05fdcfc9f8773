//! UTC calendar periods for budgets: the day and the month a timestamp falls in.

const MS_PER_DAY: u64 = 86_400_000;

/// A civil date (proleptic Gregorian, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Date {
    year: i64,
    month: u32,
    day: u32,
}

/// The civil date of a count of days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> Date {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Date { year, month, day }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(date: Date) -> i64 {
    let year = date.year - i64::from(date.month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(date.month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(date.day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn date_of(now_ms: u64) -> Date {
    civil_from_days((now_ms / MS_PER_DAY) as i64)
}

/// `YYYY-MM-DD` of the UTC day containing `now_ms`.
pub fn day_key(now_ms: u64) -> String {
    let date = date_of(now_ms);
    format!("{:04}-{:02}-{:02}", date.year, date.month, date.day)
}

/// `YYYY-MM` of the UTC month containing `now_ms`.
pub fn month_key(now_ms: u64) -> String {
    let date = date_of(now_ms);
    format!("{:04}-{:02}", date.year, date.month)
}

/// Milliseconds from `now_ms` to the next UTC midnight.
pub fn ms_to_next_day(now_ms: u64) -> u64 {
    MS_PER_DAY - now_ms % MS_PER_DAY
}

/// Milliseconds from `now_ms` to the first instant of the next UTC month.
pub fn ms_to_next_month(now_ms: u64) -> u64 {
    let date = date_of(now_ms);
    let (year, month) = if date.month == 12 {
        (date.year + 1, 1)
    } else {
        (date.year, date.month + 1)
    };
    let start = days_from_civil(Date {
        year,
        month,
        day: 1,
    });
    (start as u64 * MS_PER_DAY).saturating_sub(now_ms)
}

/// Unix milliseconds of a UTC date and time of day, or `None` when a field is out of range
/// (used to read HTTP dates).
pub fn unix_ms(year: i64, month: u32, day: u32, seconds_of_day: u32) -> Option<u64> {
    let valid = (1970..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && seconds_of_day < 86_400;
    if !valid {
        return None;
    }
    let date = Date { year, month, day };
    let days = days_from_civil(date);
    // 31 February is not a date: it would come back as a day in March.
    (civil_from_days(days) == date)
        .then(|| days as u64 * MS_PER_DAY + u64::from(seconds_of_day) * 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-27T13:38:32Z.
    const NOW: u64 = 1_795_786_712_000;

    #[test]
    fn keys_name_the_utc_day_and_month() {
        assert_eq!(day_key(NOW), "2026-11-27");
        assert_eq!(month_key(NOW), "2026-11");
        assert_eq!(day_key(0), "1970-01-01");
        // 2024-02-29T23:59:59.999Z, a leap day.
        assert_eq!(day_key(1_709_251_199_999), "2024-02-29");
        assert_eq!(day_key(1_709_251_200_000), "2024-03-01");
    }

    #[test]
    fn the_next_period_starts_at_utc_midnight() {
        let midnight = NOW - NOW % MS_PER_DAY + MS_PER_DAY;
        assert_eq!(NOW + ms_to_next_day(NOW), midnight);
        assert_eq!(day_key(midnight), "2026-11-28");
        let next_month = NOW + ms_to_next_month(NOW);
        assert_eq!(day_key(next_month), "2026-12-01");
        assert_eq!(day_key(next_month - 1), "2026-11-30");
        // December rolls over into the next year.
        let december = NOW + ms_to_next_month(NOW) + 5 * MS_PER_DAY;
        assert_eq!(day_key(december + ms_to_next_month(december)), "2027-01-01");
    }

    #[test]
    fn dates_and_times_become_unix_milliseconds() {
        assert_eq!(unix_ms(2026, 11, 27, 13 * 3_600 + 38 * 60 + 32), Some(NOW));
        assert_eq!(unix_ms(1970, 1, 1, 0), Some(0));
        assert_eq!(unix_ms(2026, 2, 31, 0), None);
        assert_eq!(unix_ms(2026, 13, 1, 0), None);
        assert_eq!(unix_ms(1969, 12, 31, 0), None);
        assert_eq!(unix_ms(2026, 1, 1, 86_400), None);
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in (-800_000..800_000).step_by(997) {
            assert_eq!(days_from_civil(civil_from_days(days)), days);
        }
    }
}
