//! When a request is due: its protocol's response time for its urgency, counted in clock
//! hours or in New Zealand working days (Monday to Friday, not a public holiday, on NZ dates).
//!
//! Working days follow the statutes' way of counting ("within N working days after the day on
//! which the request is received"): the day of submission does not count, and the request is
//! due at the end (NZ midnight) of the Nth working day after it. Public holidays come from a
//! data file ([`Holidays::from_toml`]; the broker ships [`SHIPPED_HOLIDAYS`]), data rather than
//! code so a new year's dates need no release; the dates in it are the observed ones
//! (Mondayised where the law moves them). Regional anniversary days are not in it.

use std::collections::BTreeSet;

use serde::Deserialize;
use time::{Date, Duration, Weekday};

use crate::calendar::{nz_date, nz_day_start_ms, parse_date};
use crate::domain::Urgency;
use crate::error::BrokerError;

/// The longest response time a protocol may state, so a due time is always within reach of
/// the holiday data and of the arithmetic.
pub const MAX_HOURS: u32 = 24 * 31;
/// See [`MAX_HOURS`].
pub const MAX_WORKING_DAYS: u32 = 60;

/// A response time, as a protocol states it.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ResponseTime {
    /// Clock hours from submission, nights, weekends and holidays included.
    Hours(u32),
    /// NZ working days after the day of submission.
    WorkingDays(u32),
}

impl ResponseTime {
    /// Checks it is within bounds; an error names `field` (the time's own path).
    pub fn check(self, field: &str) -> Result<(), BrokerError> {
        let (n, max, unit) = match self {
            Self::Hours(n) => (n, MAX_HOURS, "hours"),
            Self::WorkingDays(n) => (n, MAX_WORKING_DAYS, "working_days"),
        };
        if n == 0 || n > max {
            return Err(BrokerError::invalid(
                format!("{field}.{unit}"),
                format!("must be 1 to {max}"),
            ));
        }
        Ok(())
    }
}

/// The collection window when neither the protocol nor the broker's configuration sets one:
/// a request not acknowledged within 5 NZ working days expires (NHS MESH's window).
pub const DEFAULT_COLLECTION_WINDOW: ResponseTime = ResponseTime::WorkingDays(5);

/// The response time for each urgency, from a protocol's `[response_times]` section; a
/// protocol without one gets [`ResponseTimes::default`].
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ResponseTimes {
    /// Someone may be at risk now.
    pub immediate_safety: ResponseTime,
    /// As soon as practicable.
    pub priority: ResponseTime,
    /// The protocol's usual turnaround.
    pub routine: ResponseTime,
}

impl Default for ResponseTimes {
    /// Urgent matters move in hours (4); priority within 2 working days, routine within 10.
    fn default() -> Self {
        Self {
            immediate_safety: ResponseTime::Hours(4),
            priority: ResponseTime::WorkingDays(2),
            routine: ResponseTime::WorkingDays(10),
        }
    }
}

impl ResponseTimes {
    /// Checks each time is within bounds, and that urgency never gives a later due time:
    /// immediate-safety at most priority, priority at most routine (compared as the
    /// hours they can take at most).
    pub fn check(&self) -> Result<(), BrokerError> {
        self.immediate_safety
            .check("document.response_times.immediate_safety")?;
        self.priority.check("document.response_times.priority")?;
        self.routine.check("document.response_times.routine")?;
        // Compared on the least each can give: N working days are at least N × 24 hours.
        let least = |t: ResponseTime| match t {
            ResponseTime::Hours(h) => u64::from(h),
            ResponseTime::WorkingDays(d) => u64::from(d) * 24,
        };
        let ordered = least(self.immediate_safety) <= least(self.priority)
            && least(self.priority) <= least(self.routine);
        if !ordered {
            return Err(BrokerError::invalid(
                "document.response_times",
                "a more urgent request must not be given longer than a less urgent one",
            ));
        }
        Ok(())
    }

    /// The response time for `urgency`.
    pub fn for_urgency(&self, urgency: Urgency) -> ResponseTime {
        match urgency {
            Urgency::ImmediateSafety => self.immediate_safety,
            Urgency::Priority => self.priority,
            Urgency::Routine => self.routine,
        }
    }
}

/// One public holiday in the data file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayEntry {
    date: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayFile {
    /// The last NZ date the file is complete for.
    covers_through: String,
    #[serde(rename = "holiday")]
    holidays: Vec<HolidayEntry>,
}

/// New Zealand's national public holidays (observed dates), as the data file lists them, and
/// the last date the list is complete for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holidays {
    dates: BTreeSet<Date>,
    covers_through: Date,
}

/// The holidays shipped with the broker.
pub const SHIPPED_HOLIDAYS: &str = include_str!("../data/nz-public-holidays.toml");

impl Holidays {
    /// Parses the data file: `covers_through = "YYYY-MM-DD"` and `[[holiday]]` entries with a
    /// `date` and a `name`. Errors name the entry.
    pub fn from_toml(text: &str) -> Result<Self, BrokerError> {
        let file: HolidayFile = toml::from_str(text)
            .map_err(|e| BrokerError::invalid("holidays", e.message().to_string()))?;
        let covers_through = parse_date(&file.covers_through)
            .ok_or_else(|| BrokerError::invalid("holidays.covers_through", "must be YYYY-MM-DD"))?;
        let mut dates = BTreeSet::new();
        for (i, h) in file.holidays.iter().enumerate() {
            let field = format!("holidays.holiday[{i}]");
            let date = parse_date(&h.date).ok_or_else(|| {
                BrokerError::invalid(format!("{field}.date"), "must be YYYY-MM-DD")
            })?;
            if !crate::text::says_something(&h.name) {
                return Err(BrokerError::invalid(format!("{field}.name"), "is required"));
            }
            if date > covers_through {
                return Err(BrokerError::invalid(
                    format!("{field}.date"),
                    "is after covers_through",
                ));
            }
            if !dates.insert(date) {
                return Err(BrokerError::invalid(
                    format!("{field}.date"),
                    "is listed twice",
                ));
            }
        }
        Ok(Self {
            dates,
            covers_through,
        })
    }

    /// The holidays shipped with the broker.
    pub fn shipped() -> Self {
        Self::from_toml(SHIPPED_HOLIDAYS).expect("the shipped holiday file parses")
    }

    /// The last NZ date the list is complete for; past it only weekends are known.
    pub fn covers_through(&self) -> Date {
        self.covers_through
    }

    /// Whether `date` is a NZ working day: Monday to Friday and not a public holiday.
    pub fn is_working_day(&self, date: Date) -> bool {
        !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
            && !self.dates.contains(&date)
    }
}

/// What the broker computes deadlines with besides a protocol: the public holidays, and the
/// collection window of protocols that set none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calendar {
    /// The public holidays working days skip.
    pub holidays: Holidays,
    /// The collection window when the protocol sets none.
    pub collection_window: ResponseTime,
}

impl Default for Calendar {
    /// The shipped holidays and [`DEFAULT_COLLECTION_WINDOW`].
    fn default() -> Self {
        Self {
            holidays: Holidays::shipped(),
            collection_window: DEFAULT_COLLECTION_WINDOW,
        }
    }
}

impl Calendar {
    /// The deadlines of a request submitted at `submitted_ms` with `urgency` under `protocol`
    /// (`None`: the defaults, [`ResponseTimes::default`] and this calendar's window).
    pub fn deadlines(
        &self,
        submitted_ms: u64,
        urgency: Urgency,
        protocol: Option<&crate::protocol::Protocol>,
    ) -> Deadlines {
        let times = protocol.map(|p| p.response_times).unwrap_or_default();
        let window = protocol.and_then(|p| p.collection_window);
        deadlines(
            submitted_ms,
            urgency,
            &times,
            window.unwrap_or(self.collection_window),
            &self.holidays,
        )
    }
}

/// A request's two deadlines, fixed when it is submitted (and recorded in its record, so later
/// changes to the holiday data or the protocol do not move them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// When it must be answered by (Unix ms).
    pub due_ms: u64,
    /// When it expires if its recipient has not acknowledged it (Unix ms).
    pub expires_ms: u64,
}

/// The deadlines of a request submitted at `submitted_ms` with `urgency`, under a protocol
/// with `times` and a collection window of `window`.
pub fn deadlines(
    submitted_ms: u64,
    urgency: Urgency,
    times: &ResponseTimes,
    window: ResponseTime,
    holidays: &Holidays,
) -> Deadlines {
    Deadlines {
        due_ms: due_ms(submitted_ms, times.for_urgency(urgency), holidays),
        expires_ms: due_ms(submitted_ms, window, holidays),
    }
}

/// When a request submitted at `submitted_ms` (Unix ms) is due, given its protocol's time for
/// its urgency: in Unix ms.
pub fn due_ms(submitted_ms: u64, time: ResponseTime, holidays: &Holidays) -> u64 {
    match time {
        ResponseTime::Hours(h) => submitted_ms.saturating_add(u64::from(h) * 3_600_000),
        ResponseTime::WorkingDays(n) => {
            let mut day = nz_date(submitted_ms);
            let mut left = n;
            while left > 0 {
                let Some(next) = day.checked_add(Duration::days(1)) else {
                    return u64::MAX;
                };
                day = next;
                if holidays.is_working_day(day) {
                    left -= 1;
                }
            }
            // The end of that day is the start of the next, in NZ time (23 or 25 hours long
            // on the days the clocks change).
            day.checked_add(Duration::days(1))
                .map_or(u64::MAX, nz_day_start_ms)
        }
    }
}

#[cfg(test)]
mod tests;
