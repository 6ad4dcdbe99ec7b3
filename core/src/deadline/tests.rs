use super::*;

/// The field an invalid-argument error names.
fn field(e: BrokerError) -> Option<String> {
    match e {
        BrokerError::InvalidArgument { field, .. } => Some(field),
        _ => None,
    }
}

fn day(y: i32, m: u8, d: u8) -> Date {
    Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap()
}

/// Unix ms of a UTC date-time.
fn utc(y: i32, m: u8, d: u8, h: u8, min: u8) -> u64 {
    (day(y, m, d)
        .with_hms(h, min, 0)
        .unwrap()
        .assume_utc()
        .unix_timestamp()
        * 1000) as u64
}

#[test]
fn the_shipped_file_lists_the_observed_holidays() {
    let h = Holidays::shipped();
    assert_eq!(h.covers_through(), day(2028, 12, 31));
    // ANZAC Day 2026 falls on a Saturday and is observed on the Monday.
    assert!(h.is_working_day(day(2026, 4, 24)));
    assert!(!h.is_working_day(day(2026, 4, 27)));
    assert!(!h.is_working_day(day(2027, 6, 25)), "Matariki 2027");
    assert!(!h.is_working_day(day(2026, 12, 5)), "a Saturday");
    assert!(h.is_working_day(day(2026, 12, 4)), "a Friday");
}

#[test]
fn hours_are_clock_hours_through_nights_and_holidays() {
    let h = Holidays::shipped();
    // 22:00 NZDT on Christmas Eve 2026 (09:00 UTC), 4 hours: 02:00 NZDT on Christmas Day.
    let at = utc(2026, 12, 24, 9, 0);
    assert_eq!(
        due_ms(at, ResponseTime::Hours(4), &h),
        utc(2026, 12, 24, 13, 0)
    );
}

#[test]
fn working_days_count_from_the_nz_day_after_submission() {
    let h = Holidays::shipped();
    // Friday 4 December 2026, 23:30 NZDT, is still Friday in New Zealand (10:30 UTC).
    // 2 working days after it: Monday 7 and Tuesday 8; due at the end of Tuesday 8 (NZ
    // midnight, 11:00 UTC on the 8th).
    let friday_night = utc(2026, 12, 4, 10, 30);
    assert_eq!(
        due_ms(friday_night, ResponseTime::WorkingDays(2), &h),
        utc(2026, 12, 8, 11, 0)
    );
    // Thirty-one minutes later it is Saturday in New Zealand (still Friday in UTC): the
    // weekend does not count, so the due time is the same.
    let saturday = utc(2026, 12, 4, 11, 1);
    assert_eq!(
        due_ms(saturday, ResponseTime::WorkingDays(2), &h),
        utc(2026, 12, 8, 11, 0)
    );
    // 11:01 UTC on Thursday 3 December is 00:01 on Friday 4 in New Zealand: one working day
    // after it is Monday 7 (counted on UTC dates it would wrongly be Friday 4).
    assert_eq!(
        due_ms(utc(2026, 12, 3, 11, 1), ResponseTime::WorkingDays(1), &h),
        utc(2026, 12, 7, 11, 0)
    );
}

#[test]
fn working_days_skip_weekends_and_public_holidays() {
    let h = Holidays::shipped();
    // Thursday 24 December 2026 (NZDT), 10:00: Christmas (Fri 25), the weekend and Boxing
    // Day observed (Mon 28) are skipped; 1 working day is Tuesday 29 December.
    let christmas_eve = utc(2026, 12, 23, 21, 0);
    assert_eq!(
        due_ms(christmas_eve, ResponseTime::WorkingDays(1), &h),
        utc(2026, 12, 29, 11, 0)
    );
    // Easter 2027: Thursday 25 March; Good Friday 26 and Easter Monday 29 skipped: Tuesday 30.
    assert_eq!(
        due_ms(utc(2027, 3, 24, 23, 0), ResponseTime::WorkingDays(1), &h),
        utc(2027, 3, 30, 11, 0)
    );
}

#[test]
fn the_end_of_a_day_is_nz_midnight_in_both_seasons_and_across_the_change() {
    let h = Holidays::shipped();
    // Winter (NZST, UTC+12): Monday 12 July 2027, 1 working day: end of Tuesday 13, which is
    // 12:00 UTC on the 13th.
    assert_eq!(
        due_ms(utc(2027, 7, 11, 22, 0), ResponseTime::WorkingDays(1), &h),
        utc(2027, 7, 13, 12, 0)
    );
    // Daylight time begins on Sunday 26 September 2027: Friday 24 September (NZST), 1
    // working day is Monday 27, which ends at 11:00 UTC (NZDT, UTC+13).
    assert_eq!(
        due_ms(utc(2027, 9, 23, 22, 0), ResponseTime::WorkingDays(1), &h),
        utc(2027, 9, 27, 11, 0)
    );
    // And back: daylight time ends on Sunday 2 April 2028; Friday 31 March (NZDT), 1 working
    // day is Monday 3 April, ending at 12:00 UTC (NZST).
    assert_eq!(
        due_ms(utc(2028, 3, 30, 21, 0), ResponseTime::WorkingDays(1), &h),
        utc(2028, 4, 3, 12, 0)
    );
}

#[test]
fn a_holiday_file_is_checked_entry_by_entry() {
    let ok = "covers_through = \"2027-12-31\"\n[[holiday]]\ndate = \"2027-01-01\"\nname = \"New Year's Day\"\n";
    assert!(Holidays::from_toml(ok).is_ok());
    let cases = [
        (
            ok.replace("2027-01-01", "2027-1-01"),
            "holidays.holiday[0].date",
        ),
        (
            ok.replace("2027-01-01", "2028-01-01"),
            "holidays.holiday[0].date",
        ),
        (
            ok.replace("New Year's Day", " "),
            "holidays.holiday[0].name",
        ),
        (ok.replace("2027-12-31", "soon"), "holidays.covers_through"),
        (
            format!("{ok}[[holiday]]\ndate = \"2027-01-01\"\nname = \"again\"\n"),
            "holidays.holiday[1].date",
        ),
        (format!("{ok}extra = 1\n"), "holidays"),
    ];
    for (text, field) in cases {
        let e = Holidays::from_toml(&text).expect_err(&text);
        assert_eq!(self::field(e).as_deref(), Some(field), "{text}");
    }
}

#[test]
fn response_times_are_bounded_and_ordered_by_urgency() {
    assert!(ResponseTimes::default().check().is_ok());
    let with = |routine, immediate_safety| ResponseTimes {
        routine,
        immediate_safety,
        ..ResponseTimes::default()
    };
    let cases = [
        (
            with(ResponseTime::WorkingDays(0), ResponseTime::Hours(4)),
            "document.response_times.routine.working_days",
        ),
        (
            with(ResponseTime::Hours(MAX_HOURS + 1), ResponseTime::Hours(4)),
            "document.response_times.routine.hours",
        ),
        (
            with(ResponseTime::WorkingDays(10), ResponseTime::WorkingDays(3)),
            "document.response_times",
        ),
    ];
    for (times, expected) in cases {
        assert_eq!(field(times.check().unwrap_err()).as_deref(), Some(expected));
    }
    let parsed: ResponseTimes = toml::from_str(
        "immediate_safety = { hours = 2 }\npriority = { working_days = 1 }\nroutine = { working_days = 5 }",
    )
    .unwrap();
    assert_eq!(
        parsed.for_urgency(Urgency::ImmediateSafety),
        ResponseTime::Hours(2)
    );
    assert_eq!(
        parsed.for_urgency(Urgency::Routine),
        ResponseTime::WorkingDays(5)
    );
}
