//! When a job is expected: a period, or a cron schedule read in an IANA time zone (daylight
//! saving included), and the deadline that follows from the last run and the grace.

use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// A job's schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Expected every this long.
    Every(Duration),
    /// Expected after each time of a cron expression, in a zone.
    Cron {
        /// The expression as written.
        text: String,
        /// The parsed expression.
        cron: Box<Cron>,
        /// The zone it is read in.
        zone: Tz,
    },
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Schedule::Every(a), Schedule::Every(b)) => a == b,
            (
                Schedule::Cron {
                    text: a, zone: za, ..
                },
                Schedule::Cron {
                    text: b, zone: zb, ..
                },
            ) => a == b && za == zb,
            _ => false,
        }
    }
}

impl Schedule {
    /// A cron schedule of five fields (or a `@daily`-style nickname) read in `zone`; the
    /// error says what is wrong and how a schedule is written.
    pub fn cron(text: &str, zone: Tz) -> Result<Schedule, String> {
        let fields = text.split_whitespace().count();
        if !text.trim_start().starts_with('@') && fields != 5 {
            return Err(format!(
                "{text:?} has {fields} fields: write five, `minute hour day-of-month month day-of-week` (e.g. `15 2 * * *`)"
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(text)
            .map_err(|e| {
                format!(
                    "{text:?} is not a cron schedule ({e}): write five fields, e.g. `15 2 * * *`"
                )
            })?;
        // A schedule that names no real date (`0 0 30 2 *`) would make every deadline
        // unreachable: refused here rather than found missing at the first ping.
        let probe = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single();
        let fires = probe
            .map(|t| {
                cron.find_next_occurrence(&t.with_timezone(&zone), false)
                    .is_ok()
            })
            .unwrap_or(false);
        if !fires {
            return Err(format!("{text:?} never happens: check the day and month"));
        }
        Ok(Schedule::Cron {
            text: text.trim().to_owned(),
            cron: Box::new(cron),
            zone,
        })
    }

    /// The schedule as shown in the `schedule` label: `every 1h`, `cron 15 2 * * * Europe/Berlin`.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Every(d) => format!("every {}", crate::config_core::dur_text(*d)),
            Schedule::Cron { text, zone, .. } => format!("cron {text} {}", zone.name()),
        }
    }

    /// The first time after `after` a run is due; `None` when the schedule has no later time
    /// (past year 5000).
    pub fn next_due(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(d) => {
                let d = chrono::Duration::from_std(*d).ok()?;
                after.checked_add_signed(d)
            }
            Schedule::Cron { cron, zone, .. } => cron
                .find_next_occurrence(&after.with_timezone(zone), false)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        }
    }

    /// The deadline of a job whose last run finished (or which was first seen) at `anchor`:
    /// the next due time plus `grace`.
    pub fn deadline(&self, anchor: DateTime<Utc>, grace: Duration) -> Option<DateTime<Utc>> {
        let due = self.next_due(anchor)?;
        due.checked_add_signed(chrono::Duration::from_std(grace).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn berlin(text: &str) -> Schedule {
        Schedule::cron(text, chrono_tz::Europe::Berlin).unwrap()
    }

    #[test]
    fn a_period_is_due_a_period_after_the_last_run() {
        let s = Schedule::Every(Duration::from_secs(3600));
        assert_eq!(
            s.deadline(utc("2026-03-29T00:30:00Z"), Duration::from_secs(300)),
            Some(utc("2026-03-29T01:35:00Z"))
        );
        assert_eq!(s.describe(), "every 1h");
    }

    #[test]
    fn a_daily_cron_keeps_its_local_hour_across_both_daylight_saving_changes() {
        let s = berlin("15 4 * * *");
        // Winter (UTC+1) to summer (UTC+2) on 2026-03-29: 04:15 local is 03:15Z, then 02:15Z.
        assert_eq!(
            s.next_due(utc("2026-03-28T03:20:00Z")),
            Some(utc("2026-03-29T02:15:00Z"))
        );
        // Summer back to winter on 2026-10-25.
        assert_eq!(
            s.next_due(utc("2026-10-24T02:20:00Z")),
            Some(utc("2026-10-25T03:15:00Z"))
        );
        assert_eq!(s.describe(), "cron 15 4 * * * Europe/Berlin");
    }

    #[test]
    fn a_time_the_spring_change_skips_is_due_right_after_the_gap() {
        // 02:30 does not exist in Berlin on 2026-03-29: clocks go from 02:00 to 03:00 local
        // (01:00Z). The run is due at the first minute after the gap, 03:00 local.
        let s = berlin("30 2 * * *");
        let due = s.next_due(utc("2026-03-28T02:00:00Z")).unwrap();
        assert_eq!(due, utc("2026-03-29T01:00:00Z"));
        // A run finished then is next due the day after, at 02:30 summer time.
        assert_eq!(s.next_due(due), Some(utc("2026-03-30T00:30:00Z")));
    }

    #[test]
    fn a_time_the_autumn_change_repeats_is_due_once() {
        // 02:30 happens twice in Berlin on 2026-10-25: 00:30Z (summer) and 01:30Z (winter).
        let s = berlin("30 2 * * *");
        let first = s.next_due(utc("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(first, utc("2026-10-25T00:30:00Z"));
        // A run that finished after the first pass is not due again in the second.
        assert_eq!(
            s.next_due(utc("2026-10-25T00:40:00Z")),
            Some(utc("2026-10-26T01:30:00Z"))
        );
    }

    #[test]
    fn the_deadline_is_the_due_time_plus_grace_in_new_york_too() {
        let s = Schedule::cron("0 9 * * 1-5", chrono_tz::America::New_York).unwrap();
        // Friday 2026-11-06 10:00 EST (15:00Z): next weekday 09:00 is Monday 2026-11-09 14:00Z.
        assert_eq!(
            s.deadline(utc("2026-11-06T15:00:00Z"), Duration::from_secs(1800)),
            Some(utc("2026-11-09T14:30:00Z"))
        );
        // Sunday 2026-03-08 the US springs forward; Monday 09:00 EDT is 13:00Z.
        assert_eq!(
            s.next_due(utc("2026-03-06T15:00:00Z")),
            Some(utc("2026-03-09T13:00:00Z"))
        );
    }

    #[test]
    fn bad_schedules_say_how_one_is_written() {
        for (text, want) in [
            ("15 2 * *", "has 4 fields"),
            ("0 15 2 * * *", "has 6 fields"),
            ("61 2 * * *", "is not a cron schedule"),
            ("0 0 30 2 *", "never happens"),
        ] {
            let e = Schedule::cron(text, chrono_tz::UTC).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
        assert!(Schedule::cron("@daily", chrono_tz::UTC).is_ok());
    }
}
