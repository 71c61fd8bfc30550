//! The city's calendar: its time zone, and which days are working days.
//!
//! Instants are UTC; deadlines are counted in the city's time zone. A working day is a
//! Monday to Friday that is not a public holiday, or a weekend day made a working day in a
//! holiday's place (调休). Both lists are reference data.

use std::collections::BTreeSet;

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// A span of time a service level allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// Clock time: minutes, whatever the day.
    Minutes(u32),
    /// Working days: the same time of day on the n-th next working day.
    WorkingDays(u32),
}

#[derive(Debug, Clone)]
pub struct Calendar {
    tz: TimeZone,
    holidays: BTreeSet<Date>,
    extra_working_days: BTreeSet<Date>,
}

impl Calendar {
    pub fn new(tz: TimeZone, holidays: BTreeSet<Date>, extra_working_days: BTreeSet<Date>) -> Self {
        Self {
            tz,
            holidays,
            extra_working_days,
        }
    }

    /// Monday to Friday working days, no holidays, in `tz`.
    pub fn weekdays(tz: TimeZone) -> Self {
        Self::new(tz, BTreeSet::new(), BTreeSet::new())
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// Everything that decides the calendar's answers, as stable text: two calendars that
    /// describe alike count time alike.
    pub fn describe(&self) -> String {
        let dates = |set: &BTreeSet<Date>| {
            set.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "zone={} holidays={} working={}",
            self.tz
                .iana_name()
                .map_or_else(|| format!("{:?}", self.tz), str::to_owned),
            dates(&self.holidays),
            dates(&self.extra_working_days)
        )
    }

    pub fn is_working_day(&self, date: Date) -> bool {
        if self.extra_working_days.contains(&date) {
            return true;
        }
        !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
            && !self.holidays.contains(&date)
    }

    /// `from` plus `span`. Working days keep the time of day in the city's zone; a start on a
    /// day off counts from that day too (Saturday 10:00 + 1 working day = Monday 10:00).
    pub fn add(&self, from: Timestamp, span: Span) -> Timestamp {
        match span {
            Span::Minutes(m) => from
                .saturating_add(SignedDuration::from_mins(i64::from(m)))
                .unwrap_or(Timestamp::MAX),
            Span::WorkingDays(n) => {
                let zoned = from.to_zoned(self.tz.clone());
                let mut date = zoned.date();
                let mut left = n;
                while left > 0 {
                    match date.tomorrow() {
                        Ok(next) => date = next,
                        Err(_) => return Timestamp::MAX,
                    }
                    if self.is_working_day(date) {
                        left -= 1;
                    }
                }
                date.to_datetime(zoned.time())
                    .to_zoned(self.tz.clone())
                    .map(|z| z.timestamp())
                    .unwrap_or(Timestamp::MAX)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use jiff::tz::offset;

    fn shanghai() -> TimeZone {
        TimeZone::fixed(offset(8))
    }

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn working_days_skip_weekends_and_holidays_and_count_makeup_days() {
        // 2026-10-01 (Thursday) to 10-07 are the National Day holidays; Saturday 10-10 is worked.
        let holidays = (1..=7).map(|d| date(2026, 10, d)).collect();
        let calendar = Calendar::new(shanghai(), holidays, [date(2026, 10, 10)].into());
        // Wednesday 2026-09-30 16:00 in Shanghai (08:00 UTC) + 1 working day: the 8th (Thursday).
        assert_eq!(
            calendar.add(at("2026-09-30T08:00:00Z"), Span::WorkingDays(1)),
            at("2026-10-08T08:00:00Z")
        );
        // + 3 working days: Thursday 8th, Friday 9th, makeup Saturday 10th.
        assert_eq!(
            calendar.add(at("2026-09-30T08:00:00Z"), Span::WorkingDays(3)),
            at("2026-10-10T08:00:00Z")
        );
        // Friday 2026-11-20 23:30 in Shanghai + 1 working day: Monday, same time of day.
        assert_eq!(
            calendar.add(at("2026-11-20T15:30:00Z"), Span::WorkingDays(1)),
            at("2026-11-23T15:30:00Z")
        );
        assert_eq!(
            calendar.add(at("2026-11-20T15:30:00Z"), Span::Minutes(30)),
            at("2026-11-20T16:00:00Z")
        );
        assert!(!calendar.is_working_day(date(2026, 11, 22)));
        assert!(calendar.is_working_day(date(2026, 10, 10)));
    }
}
