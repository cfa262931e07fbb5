//! robfig/cron v3 schedules (parser options `SecondOptional | Minute | Hour | Dom | Month | Dow
//! | Descriptor`), as the original daemon parses `cron_schedule`.
//!
//! Parsing is a port of robfig's `parser.go` so the accepted syntax and the error texts match
//! (`empty spec string`, `expected 5 to 6 fields, found 7: [...]`,
//! `end of range (99) above maximum (6): 99`, ...). Each field becomes a bit set; evaluation is
//! delegated to `croner` by handing it a canonical six-field pattern (`*` where robfig keeps its
//! "star bit", otherwise an explicit list), which keeps robfig's day-of-month / day-of-week rule:
//! both restricted means OR, otherwise AND. `@every <Go duration>` is robfig's constant delay
//! schedule (whole seconds, at least one second, not wall-clock aligned). A `CRON_TZ=` or `TZ=`
//! prefix selects the zone; otherwise the VM's local zone applies.

use chrono::{DateTime, Local, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::duration::parse_go_duration;

/// A `cron_schedule` robfig/cron v3 would reject; the text is robfig's own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CronError(String);

/// The zone a field-based schedule is evaluated in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// The VM's local zone (`time.Local`).
    Local,
    /// A zone named by a `CRON_TZ=` / `TZ=` prefix.
    Named(chrono_tz::Tz),
}

/// A parsed schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Five or six cron fields, or a descriptor such as `@daily`.
    Spec {
        /// The canonical six-field pattern handed to croner.
        pattern: String,
        /// The compiled croner pattern.
        cron: Box<Cron>,
        /// Where the fields are interpreted.
        zone: Zone,
    },
    /// `@every <duration>`: this many whole seconds after the previous activation.
    Every(std::time::Duration),
}

const STAR_BIT: u64 = 1 << 63;

struct Bounds {
    min: u64,
    max: u64,
    names: &'static [(&'static str, u64)],
}

const SECONDS: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// Go's `%s` of a `[]string`: `[a b c]`.
fn go_list(fields: &[&str]) -> String {
    format!("[{}]", fields.join(" "))
}

/// Go's `strconv.Atoi` plus robfig's negative check.
fn must_parse_int(expr: &str) -> Result<u64, CronError> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    let kind = if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
        match expr.parse::<i64>() {
            Ok(num) if num < 0 => {
                return Err(CronError(format!(
                    "negative number ({num}) not allowed: {expr}"
                )));
            }
            Ok(num) => return Ok(num.unsigned_abs()),
            Err(_) => "value out of range",
        }
    } else {
        "invalid syntax"
    };
    Err(CronError(format!(
        "failed to parse int from {expr}: strconv.Atoi: parsing \"{expr}\": {kind}"
    )))
}

fn parse_int_or_name(expr: &str, bounds: &Bounds) -> Result<u64, CronError> {
    let lower = expr.to_ascii_lowercase();
    if let Some((_, value)) = bounds.names.iter().find(|(name, _)| *name == lower) {
        return Ok(*value);
    }
    must_parse_int(expr)
}

fn get_range(expr: &str, bounds: &Bounds) -> Result<u64, CronError> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single_digit = low_and_high.len() == 1;
    let (start, mut end, mut extra);
    if low_and_high[0] == "*" || low_and_high[0] == "?" {
        start = bounds.min;
        end = bounds.max;
        extra = STAR_BIT;
    } else {
        start = parse_int_or_name(low_and_high[0], bounds)?;
        end = match low_and_high.len() {
            1 => start,
            2 => parse_int_or_name(low_and_high[1], bounds)?,
            _ => return Err(CronError(format!("too many hyphens: {expr}"))),
        };
        extra = 0;
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step[1])?;
            if single_digit {
                end = bounds.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(CronError(format!("too many slashes: {expr}"))),
    };
    if start < bounds.min {
        return Err(CronError(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            bounds.min
        )));
    }
    if end > bounds.max {
        return Err(CronError(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            bounds.max
        )));
    }
    if start > end {
        return Err(CronError(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        )));
    }
    if step == 0 {
        return Err(CronError(format!(
            "step of range should be a positive number: {expr}"
        )));
    }
    let mut bits = 0_u64;
    let mut value = start;
    while value <= end {
        bits |= 1 << value;
        value += step;
    }
    Ok(bits | extra)
}

fn get_field(field: &str, bounds: &Bounds) -> Result<u64, CronError> {
    let mut bits = 0;
    for expr in field.split(',').filter(|e| !e.is_empty()) {
        bits |= get_range(expr, bounds)?;
    }
    Ok(bits)
}

/// The croner text of one field: `*` for robfig's star bit, else the explicit values.
fn canonical(bits: u64, bounds: &Bounds) -> String {
    if bits & STAR_BIT != 0 {
        return "*".to_owned();
    }
    let values: Vec<String> = (bounds.min..=bounds.max)
        .filter(|v| bits & (1 << v) != 0)
        .map(|v| v.to_string())
        .collect();
    if values.is_empty() {
        // robfig accepts an empty field (e.g. ",") and then never fires; so do we.
        return String::new();
    }
    values.join(",")
}

fn load_zone(name: &str) -> Result<Zone, CronError> {
    match name {
        "" | "UTC" => Ok(Zone::Named(chrono_tz::Tz::UTC)),
        "Local" => Ok(Zone::Local),
        _ => name.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            CronError(format!(
                "provided bad location {name}: unknown time zone {name}"
            ))
        }),
    }
}

impl Schedule {
    /// Parses a robfig/cron v3 spec.
    pub fn parse(spec: &str) -> Result<Self, CronError> {
        if spec.is_empty() {
            return Err(CronError("empty spec string".to_owned()));
        }
        let mut zone = Zone::Local;
        let mut spec = spec;
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            let eq = spec.find('=').unwrap_or(0);
            let Some(space) = spec.find(' ') else {
                return Err(CronError(format!(
                    "provided bad location {}: missing schedule after the time zone",
                    &spec[eq + 1..]
                )));
            };
            zone = load_zone(&spec[eq + 1..space])?;
            spec = spec[space..].trim();
        }
        if spec.starts_with('@') {
            return Self::parse_descriptor(spec, zone);
        }
        let mut fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() < 5 || fields.len() > 6 {
            return Err(CronError(format!(
                "expected 5 to 6 fields, found {}: {}",
                fields.len(),
                go_list(&fields)
            )));
        }
        if fields.len() == 5 {
            fields.insert(0, "0");
        }
        Self::from_fields(
            [
                fields[0], fields[1], fields[2], fields[3], fields[4], fields[5],
            ],
            zone,
        )
    }

    fn parse_descriptor(descriptor: &str, zone: Zone) -> Result<Self, CronError> {
        let fields = match descriptor {
            "@yearly" | "@annually" => ["0", "0", "0", "1", "1", "*"],
            "@monthly" => ["0", "0", "0", "1", "*", "*"],
            "@weekly" => ["0", "0", "0", "*", "*", "0"],
            "@daily" | "@midnight" => ["0", "0", "0", "*", "*", "*"],
            "@hourly" => ["0", "0", "*", "*", "*", "*"],
            _ => {
                if let Some(text) = descriptor.strip_prefix("@every ") {
                    let nanos = parse_go_duration(text).map_err(|e| {
                        CronError(format!("failed to parse duration {descriptor}: {e}"))
                    })?;
                    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(0).max(1);
                    return Ok(Schedule::Every(std::time::Duration::from_secs(secs)));
                }
                return Err(CronError(format!("unrecognized descriptor: {descriptor}")));
            }
        };
        Self::from_fields(fields, zone)
    }

    fn from_fields(fields: [&str; 6], zone: Zone) -> Result<Self, CronError> {
        let bounds = [&SECONDS, &MINUTES, &HOURS, &DOM, &MONTHS, &DOW];
        let mut parts = Vec::with_capacity(6);
        for (field, bounds) in fields.iter().zip(bounds) {
            parts.push(canonical(get_field(field, bounds)?, bounds));
        }
        if parts.iter().any(String::is_empty) {
            return Ok(Schedule::Every(std::time::Duration::MAX));
        }
        let pattern = parts.join(" ");
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Disallowed)
            .dom_and_dow(false)
            .build()
            .parse(&pattern)
            .map_err(|e| CronError(format!("invalid schedule {pattern}: {e}")))?;
        Ok(Schedule::Spec {
            pattern,
            cron: Box::new(cron),
            zone,
        })
    }

    /// The first activation strictly after `now`, or `None` if the schedule never fires again
    /// (an impossible date such as the 30th of February).
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(delay) => {
                if *delay == std::time::Duration::MAX {
                    return None;
                }
                let truncated = now.timestamp();
                let delay = i64::try_from(delay.as_secs()).ok()?;
                Utc.timestamp_opt(truncated.checked_add(delay)?, 0).single()
            }
            Schedule::Spec { cron, zone, .. } => match zone {
                Zone::Local => next_in(cron, &now.with_timezone(&Local)),
                Zone::Named(tz) => next_in(cron, &now.with_timezone(tz)),
            },
        }
    }
}

fn next_in<Tz: TimeZone>(cron: &Cron, start: &DateTime<Tz>) -> Option<DateTime<Utc>> {
    // robfig gives up after five years; so do we (also bounds croner's search).
    let limit = start.with_timezone(&Utc) + chrono::Duration::days(5 * 366);
    let next = cron.find_next_occurrence(start, false).ok()?;
    let next = next.with_timezone(&Utc);
    (next <= limit).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test timestamp")
            .with_timezone(&Utc)
    }

    fn next_utc(spec: &str, from: &str) -> String {
        let spec = format!("TZ=UTC {spec}");
        let schedule = Schedule::parse(&spec).expect(&spec);
        schedule
            .next_after(utc(from))
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "never".to_owned())
    }

    #[test]
    fn parse_errors_match_robfig() {
        let cases: &[(&str, &str)] = &[
            ("", "empty spec string"),
            ("* * * * * 99", "end of range (99) above maximum (6): 99"),
            (
                "* * * * * * *",
                "expected 5 to 6 fields, found 7: [* * * * * * *]",
            ),
            ("* * * *", "expected 5 to 6 fields, found 4: [* * * *]"),
            ("   ", "expected 5 to 6 fields, found 0: []"),
            ("60 * * * *", "end of range (60) above maximum (59): 60"),
            ("* 24 * * *", "end of range (24) above maximum (23): 24"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            ("* * * 13 *", "end of range (13) above maximum (12): 13"),
            ("* * * * 7", "end of range (7) above maximum (6): 7"),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
            ("*/2/3 * * * *", "too many slashes: */2/3"),
            (
                "a * * * *",
                "failed to parse int from a: strconv.Atoi: parsing \"a\": invalid syntax",
            ),
            (
                "L * * * *",
                "failed to parse int from L: strconv.Atoi: parsing \"L\": invalid syntax",
            ),
            (
                "* * * * 1#2",
                "failed to parse int from 1#2: strconv.Atoi: parsing \"1#2\": invalid syntax",
            ),
            ("@fortnightly", "unrecognized descriptor: @fortnightly"),
            ("@every", "unrecognized descriptor: @every"),
            (
                "@every 1x",
                "failed to parse duration @every 1x: time: unknown unit \"x\" in duration \"1x\"",
            ),
            (
                "CRON_TZ=Mars/Olympus 0 * * * *",
                "provided bad location Mars/Olympus: unknown time zone Mars/Olympus",
            ),
        ];
        for (spec, want) in cases {
            let err = Schedule::parse(spec).expect_err(spec);
            assert_eq!(err.to_string(), *want, "spec {spec:?}");
        }
    }

    #[test]
    fn accepted_specs() {
        for spec in [
            "*/5 * * * * *",
            "* * * * * *",
            "0 3 * * *",
            "*/15 * * * *",
            "0 0 ? * SUN",
            "0 0 1 * MON",
            "0 30 2 * * mon-fri",
            "0 0 0 1 jan-dec/3 *",
            "1,2,3 * * * * *",
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
            "@every 1h30m",
            "@every 1.5h",
            "@every 90s",
            "CRON_TZ=Europe/Berlin 0 3 * * *",
            "TZ=America/New_York @daily",
            "TZ=UTC */5 * * * * *",
        ] {
            Schedule::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        }
    }

    #[test]
    fn next_activations() {
        let from = "2026-11-02T12:00:00Z"; // a Monday
        let cases: &[(&str, &str)] = &[
            ("*/5 * * * * *", "2026-11-02T12:00:05+00:00"),
            ("* * * * *", "2026-11-02T12:01:00+00:00"),
            ("0 3 * * *", "2026-11-03T03:00:00+00:00"),
            ("30 * * * * *", "2026-11-02T12:00:30+00:00"),
            ("@hourly", "2026-11-02T13:00:00+00:00"),
            ("@daily", "2026-11-03T00:00:00+00:00"),
            ("@midnight", "2026-11-03T00:00:00+00:00"),
            ("@weekly", "2026-11-08T00:00:00+00:00"),
            ("@monthly", "2026-12-01T00:00:00+00:00"),
            ("@yearly", "2027-01-01T00:00:00+00:00"),
            // DOM and DOW both restricted: OR (the 1st, or any Wednesday).
            ("0 0 1 * WED", "2026-11-04T00:00:00+00:00"),
            ("0 0 1 * 1", "2026-11-09T00:00:00+00:00"),
            // One of them a star: AND.
            ("0 0 * * WED", "2026-11-04T00:00:00+00:00"),
            ("0 0 3 * *", "2026-11-03T00:00:00+00:00"),
            ("0 0 ? * SUN", "2026-11-08T00:00:00+00:00"),
            // `*/2` clears robfig's star bit, so it is "restricted": OR with the weekday.
            ("0 0 */10 * FRI", "2026-11-06T00:00:00+00:00"),
            // `*/1` keeps the star bit: AND.
            ("0 0 */1 * FRI", "2026-11-06T00:00:00+00:00"),
            ("0 0 1 jan *", "2027-01-01T00:00:00+00:00"),
            ("0 0 30 2 *", "never"),
        ];
        for (spec, want) in cases {
            assert_eq!(next_utc(spec, from), *want, "spec {spec:?}");
        }
    }

    #[test]
    fn every_is_whole_seconds_from_now() {
        let schedule = Schedule::parse("@every 1h30m").expect("parse");
        let from = utc("2026-11-02T12:00:00.700Z");
        assert_eq!(schedule.next_after(from), Some(utc("2026-11-02T13:30:00Z")));
        let tiny = Schedule::parse("@every 10ms").expect("parse");
        assert_eq!(tiny.next_after(from), Some(utc("2026-11-02T12:00:01Z")));
        let fractional = Schedule::parse("@every 1.9s").expect("parse");
        assert_eq!(
            fractional.next_after(from),
            Some(utc("2026-11-02T12:00:01Z"))
        );
    }

    #[test]
    fn time_zone_prefix_shifts_activation() {
        let schedule = Schedule::parse("CRON_TZ=Europe/Berlin 0 3 * * *").expect("parse");
        // 03:00 in Berlin (CET, UTC+1) in November is 02:00 UTC.
        assert_eq!(
            schedule.next_after(utc("2026-11-02T12:00:00Z")),
            Some(utc("2026-11-03T02:00:00Z"))
        );
        let schedule = Schedule::parse("TZ=America/New_York 0 0 12 * * *").expect("parse");
        assert_eq!(
            schedule.next_after(utc("2026-11-02T12:00:00Z")),
            Some(utc("2026-11-02T17:00:00Z"))
        );
    }

    #[test]
    fn five_fields_mean_seconds_zero() {
        let schedule = Schedule::parse("TZ=UTC 15 10 * * *").expect("parse");
        match &schedule {
            Schedule::Spec { pattern, .. } => assert!(pattern.starts_with("0 15 10 ")),
            Schedule::Every(_) => panic!("expected a spec schedule"),
        }
    }
}
