//! Cron schedules of materializations: parsing (standard five fields — minute, hour,
//! day of month, month, day of week — evaluated in UTC) and the next run after a time.
//! One place, so apply-time validation and the scheduler can never disagree.

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds};
use croner::Cron;

/// Parse a five-field cron expression.
///
/// # Errors
/// A message saying what is wrong and what a valid expression looks like.
pub fn parse(expression: &str) -> Result<Cron, String> {
    if expression.trim().is_empty() {
        return Err("must not be empty: write five fields, e.g. `*/15 * * * *`".into());
    }
    if expression.len() > 256 {
        return Err("longer than 256 bytes".into());
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .build()
        .parse(expression)
        .map_err(|e| {
            format!(
                "`{}` is not a cron expression ({e}); write five fields, minute hour day-of-month month day-of-week, in UTC, e.g. `*/15 * * * *` or `0 3 * * MON`",
                expression.escape_debug()
            )
        })
}

/// The first time strictly after `after` that `expression` matches, or `None` when it
/// never does again (e.g. `0 0 30 2 *`).
///
/// # Errors
/// As [`parse`].
pub fn next_after(expression: &str, after: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, String> {
    let cron = parse(expression)?;
    Ok(cron.find_next_occurrence(&after, false).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn next_runs_follow_the_expression_in_utc() {
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 10, 7, 30).unwrap();
        assert_eq!(
            next_after("*/15 * * * *", t).unwrap(),
            Some(Utc.with_ymd_and_hms(2026, 11, 23, 10, 15, 0).unwrap())
        );
        assert_eq!(
            next_after("0 3 * * *", t).unwrap(),
            Some(Utc.with_ymd_and_hms(2026, 11, 24, 3, 0, 0).unwrap())
        );
        // Strictly after: a time on the schedule gives the next one.
        let on = Utc.with_ymd_and_hms(2026, 11, 23, 10, 15, 0).unwrap();
        assert_eq!(
            next_after("*/15 * * * *", on).unwrap(),
            Some(Utc.with_ymd_and_hms(2026, 11, 23, 10, 30, 0).unwrap())
        );
    }

    #[test]
    fn bad_expressions_are_refused_with_a_hint() {
        for bad in [
            "",
            "   ",
            "every minute",
            "* * * *",
            "61 * * * *",
            "* 25 * * *",
            "0 0 * * * *",
            "*/0 * * * *",
            "'; DROP TABLE schedules; --",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(
                err.contains("five fields") || err.contains("256"),
                "{bad:?}: {err}"
            );
        }
        assert!(parse(&"1,".repeat(200)).is_err());
    }
}
