//! A cron expression read in a time zone, and which of its ticks one firing fires.
//!
//! Ticks are whole seconds. The expression is matched against the zone's wall clock
//! (`croner` handles the days a clock jumps or repeats), and every tick is returned as UTC.

use chrono::{DateTime, SubsecRound, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use super::{CatchUp, LATE_TICK_GRACE, MAX_TICKS_PER_FIRE};
use crate::{Error, Result};

/// A parsed cron expression and the time zone its wall-clock times are read in.
#[derive(Debug, Clone)]
pub struct Cadence {
    cron: Cron,
    tz: Tz,
}

/// What one firing of a due schedule does.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The ticks to start runs for, oldest first.
    pub fire: Vec<DateTime<Utc>>,
    /// The schedule's next tick afterwards; `None` if the expression has no more.
    pub next: Option<DateTime<Utc>>,
}

impl Cadence {
    /// Parses `cron` (five fields, or six with seconds first) and the IANA zone `timezone`.
    pub fn parse(cron: &str, timezone: &str) -> Result<Self> {
        let tz = timezone.parse::<Tz>().map_err(|_| {
            Error::Invalid(format!(
                "invalid time zone `{timezone}`: not an IANA time zone name \
                 (such as `UTC` or `Europe/Paris`)"
            ))
        })?;
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(cron)
            .map_err(|e| {
                Error::Invalid(format!(
                    "invalid cron expression `{cron}`: {e} (expected five fields, \
                     `minute hour day-of-month month day-of-week`, or six with seconds first)"
                ))
            })?;
        Ok(Self { cron, tz })
    }

    /// The first tick at or after `at`.
    pub fn first_from(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let whole = at.trunc_subsecs(0);
        let at = if at.nanosecond() == 0 {
            whole
        } else {
            whole + TimeDelta::seconds(1)
        };
        self.search(at, true, true)
    }

    /// The first tick strictly after `at`.
    pub fn next_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.search(at.trunc_subsecs(0), false, true)
    }

    /// The last tick at or before `at`.
    fn latest_until(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.search(at.trunc_subsecs(0), true, false)
    }

    fn search(&self, at: DateTime<Utc>, inclusive: bool, forward: bool) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&self.tz);
        let found = if forward {
            self.cron.find_next_occurrence(&local, inclusive)
        } else {
            self.cron.find_previous_occurrence(&local, inclusive)
        };
        found.ok().map(|t| t.with_timezone(&Utc))
    }

    /// What to fire for a schedule whose next tick is `due`, at `now` (the store's clock).
    pub fn plan(&self, due: DateTime<Utc>, now: DateTime<Utc>, catch_up: CatchUp) -> Plan {
        if due > now {
            return Plan {
                fire: Vec::new(),
                next: Some(due),
            };
        }
        match catch_up {
            CatchUp::All => self.plan_all(due, now),
            CatchUp::One | CatchUp::Skip => {
                // `due` is a tick itself, so a latest tick before it can only come from a
                // changed time zone rule: fire `due` then.
                let latest = self.latest_until(now).filter(|t| *t >= due).unwrap_or(due);
                let late = (now - latest).to_std().unwrap_or_default();
                let fire = catch_up == CatchUp::One || late <= LATE_TICK_GRACE;
                Plan {
                    fire: if fire { vec![latest] } else { Vec::new() },
                    next: self.next_after(now.max(latest)),
                }
            }
        }
    }

    /// Every due tick from `due`, at most [`MAX_TICKS_PER_FIRE`]; the next one stays due
    /// when the cap cut the list short.
    fn plan_all(&self, due: DateTime<Utc>, now: DateTime<Utc>) -> Plan {
        let mut fire = vec![due];
        let mut next = self.next_after(due);
        while let Some(tick) = next {
            if tick > now || fire.len() == MAX_TICKS_PER_FIRE {
                break;
            }
            fire.push(tick);
            next = self.next_after(tick);
        }
        Plan { fire, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn minutes(n: i64) -> TimeDelta {
        TimeDelta::minutes(n)
    }

    #[test]
    fn wall_clock_times_are_read_in_the_time_zone() {
        let paris = Cadence::parse("0 9 * * *", "Europe/Paris").unwrap();
        // 09:00 in Paris is 08:00 UTC in winter (CET) and 07:00 UTC in summer (CEST).
        assert_eq!(
            paris.first_from(at("2025-01-15T00:00:00Z")),
            Some(at("2025-01-15T08:00:00Z"))
        );
        assert_eq!(
            paris.first_from(at("2025-07-15T00:00:00Z")),
            Some(at("2025-07-15T07:00:00Z"))
        );
        // Across the spring change, still 09:00 on the wall clock.
        assert_eq!(
            paris.next_after(at("2025-03-29T08:00:00Z")),
            Some(at("2025-03-30T07:00:00Z"))
        );
    }

    #[test]
    fn clock_changes_skip_no_day_and_repeat_none() {
        let paris = Cadence::parse("30 2 * * *", "Europe/Paris").unwrap();
        // 2025-03-30: Paris clocks jump from 02:00 to 03:00, so 02:30 does not exist.
        let spring = paris.next_after(at("2025-03-29T12:00:00Z")).unwrap();
        assert_eq!(
            spring,
            at("2025-03-30T01:00:00Z"),
            "03:00 CEST, the end of the gap"
        );
        // 2025-10-26: 02:30 happens twice (CEST then CET); the tick fires once.
        let autumn = paris.next_after(at("2025-10-25T12:00:00Z")).unwrap();
        assert_eq!(autumn, at("2025-10-26T00:30:00Z"));
        assert_eq!(
            paris.next_after(autumn),
            Some(at("2025-10-27T01:30:00Z")),
            "not again an hour later"
        );
    }

    #[test]
    fn six_fields_count_seconds() {
        let every_second = Cadence::parse("* * * * * *", "UTC").unwrap();
        assert_eq!(
            every_second.first_from(at("2025-01-01T12:00:00Z")),
            Some(at("2025-01-01T12:00:00Z")),
            "inclusive"
        );
        assert_eq!(
            every_second.first_from(at("2025-01-01T12:00:00.5Z")),
            Some(at("2025-01-01T12:00:01Z")),
            "a tick is a whole second"
        );
        assert_eq!(
            every_second.next_after(at("2025-01-01T12:00:00Z")),
            Some(at("2025-01-01T12:00:01Z"))
        );
        assert!(
            Cadence::parse("0 0 0 1 1 * 2030", "UTC").is_err(),
            "no years"
        );
    }

    #[test]
    fn all_fires_every_missed_tick_up_to_the_cap() {
        let minutely = Cadence::parse("* * * * *", "UTC").unwrap();
        let due = at("2025-01-01T00:00:00Z");
        let plan = minutely.plan(due, due + minutes(3) + TimeDelta::seconds(30), CatchUp::All);
        assert_eq!(
            plan.fire,
            vec![due, due + minutes(1), due + minutes(2), due + minutes(3)]
        );
        assert_eq!(plan.next, Some(due + minutes(4)));

        let plan = minutely.plan(due, due + minutes(150), CatchUp::All);
        assert_eq!(plan.fire.len(), MAX_TICKS_PER_FIRE);
        assert_eq!(plan.fire.last(), Some(&(due + minutes(99))));
        assert_eq!(plan.next, Some(due + minutes(100)), "the rest stays due");
    }

    #[test]
    fn one_fires_the_latest_tick_however_late() {
        let minutely = Cadence::parse("* * * * *", "UTC").unwrap();
        let due = at("2025-01-01T00:00:00Z");
        let now = due + minutes(500) + TimeDelta::seconds(30);
        let plan = minutely.plan(due, now, CatchUp::One);
        assert_eq!(plan.fire, vec![due + minutes(500)]);
        assert_eq!(plan.next, Some(due + minutes(501)));
    }

    #[test]
    fn skip_fires_the_latest_tick_only_when_on_time() {
        let minutely = Cadence::parse("* * * * *", "UTC").unwrap();
        let due = at("2025-01-01T00:00:00Z");
        let on_time = minutely.plan(due, due + minutes(5) + TimeDelta::seconds(2), CatchUp::Skip);
        assert_eq!(
            on_time.fire,
            vec![due + minutes(5)],
            "earlier ticks dropped"
        );
        assert_eq!(on_time.next, Some(due + minutes(6)));

        let hourly = Cadence::parse("0 * * * *", "UTC").unwrap();
        let late = hourly.plan(due, due + minutes(30), CatchUp::Skip);
        assert!(late.fire.is_empty(), "30 minutes late: missed");
        assert_eq!(late.next, Some(due + minutes(60)));
    }

    #[test]
    fn a_tick_not_due_yet_fires_nothing() {
        let minutely = Cadence::parse("* * * * *", "UTC").unwrap();
        let due = at("2025-01-01T00:00:00Z");
        for policy in [CatchUp::Skip, CatchUp::One, CatchUp::All] {
            let plan = minutely.plan(due, due - TimeDelta::seconds(1), policy);
            assert_eq!(
                plan,
                Plan {
                    fire: Vec::new(),
                    next: Some(due)
                }
            );
        }
    }
}
