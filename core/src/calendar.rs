//! New Zealand dates: the law runs on Pacific/Auckland (NZST UTC+12, NZDT UTC+13), never UTC.
//! Pure functions of an instant; the clock that gives the instant is the shell's.

use std::sync::OnceLock;

/// Pacific/Auckland, from the tz database bundled into the binary (not the host's), so a
/// server on a UTC machine still keeps New Zealand dates, NZST (UTC+12) and NZDT (UTC+13).
fn auckland() -> &'static jiff::tz::TimeZone {
    static ZONE: OnceLock<jiff::tz::TimeZone> = OnceLock::new();
    ZONE.get_or_init(|| {
        jiff::tz::db()
            .get("Pacific/Auckland")
            .expect("the bundled tz database holds Pacific/Auckland")
    })
}

/// The New Zealand date at `unix_ms`.
pub fn nz_date(unix_ms: u64) -> time::Date {
    let ts = i64::try_from(unix_ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .unwrap_or(jiff::Timestamp::MAX);
    let d = ts.to_zoned_datetime(auckland().clone()).date();
    time::Date::from_calendar_date(
        i32::from(d.year()),
        time::Month::try_from(d.month() as u8).expect("jiff months are 1-12"),
        d.day() as u8,
    )
    .expect("a jiff date is a valid date")
}

/// When the New Zealand date `date` begins (NZ midnight), in Unix milliseconds.
pub fn nz_day_start_ms(date: time::Date) -> u64 {
    let civil = jiff::civil::date(date.year() as i16, date.month() as i8, date.day() as i8);
    civil
        .to_zoned_datetime(auckland().clone())
        .map(|z| z.timestamp().as_millisecond().max(0) as u64)
        .unwrap_or(u64::MAX)
}

/// A calendar date written `YYYY-MM-DD` (exactly), as protocol documents and data files give
/// them.
pub fn parse_date(text: &str) -> Option<time::Date> {
    let mut parts = text.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y, 4) && digits(m, 2) && digits(d, 2)) {
        return None;
    }
    time::Date::from_calendar_date(
        y.parse().ok()?,
        time::Month::try_from(m.parse::<u8>().ok()?).ok()?,
        d.parse().ok()?,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u8, d: u8) -> time::Date {
        time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap()
    }

    /// Unix ms of a UTC date-time.
    fn utc(y: i32, m: u8, d: u8, h: u8) -> u64 {
        (day(y, m, d)
            .with_hms(h, 0, 0)
            .unwrap()
            .assume_utc()
            .unix_timestamp()
            * 1000) as u64
    }

    #[test]
    fn new_zealand_dates_run_ahead_of_utc_in_both_seasons() {
        // NZDT (UTC+13): 11:00 UTC on 14 January is midnight of the 15th in New Zealand.
        assert_eq!(nz_date(utc(2027, 1, 14, 10)), day(2027, 1, 14));
        assert_eq!(nz_date(utc(2027, 1, 14, 11)), day(2027, 1, 15));
        // NZST (UTC+12): 12:00 UTC on 14 July is midnight of the 15th.
        assert_eq!(nz_date(utc(2027, 7, 14, 11)), day(2027, 7, 14));
        assert_eq!(nz_date(utc(2027, 7, 14, 12)), day(2027, 7, 15));
        assert_eq!(nz_day_start_ms(day(2027, 1, 15)), utc(2027, 1, 14, 11));
        assert_eq!(nz_day_start_ms(day(2027, 7, 15)), utc(2027, 7, 14, 12));
    }

    #[test]
    fn dates_parse_only_in_their_one_form() {
        assert_eq!(parse_date("2027-02-28"), Some(day(2027, 2, 28)));
        for bad in [
            "2027-2-28",
            "2027-02-29",
            "27-02-28",
            "2027-02-28x",
            "+027-02-28",
            "2027-0a-28",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
    }
}
