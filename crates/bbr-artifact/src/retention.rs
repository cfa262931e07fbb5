//! Which artifacts of one location a retention policy keeps (`bbr artifact prune`), with
//! restic's `forget --keep-*` semantics plus four floors of our own. Pure: no I/O, no clock
//! (the caller passes `now`); the caller deletes what [`plan_retention`] marks for removal.
//!
//! # The contract
//!
//! **Input**: the artifacts of one location as [`ListedArtifact`]s (their `time` is the one in
//! the directory name, UTC), a [`Policy`] and `now`.
//!
//! **Groups**: artifacts are grouped by [`ListedArtifact::deployment`] and each group is
//! judged on its own. With [`Policy::deployment`] set, only that group is judged; the
//! artifacts of other deployments get no decision at all (they are neither kept nor removed).
//! Within a group, artifacts are ordered newest first (equal times keep their input order).
//!
//! **Keep rules** (restic's, ORed: an artifact is kept when any rule keeps it, and its
//! decision lists every rule that does):
//!
//! * `keep_last n` keeps the `n` newest complete artifacts ([`KeepReason::Last`]).
//! * `keep_hourly`, `keep_daily`, `keep_weekly`, `keep_monthly`, `keep_yearly n` keep the
//!   newest complete artifact of each of the last `n` calendar buckets *that contain one*
//!   (an empty day does not use up a daily count). Buckets are UTC calendar hours, days,
//!   ISO-8601 weeks (Monday to Sunday, numbered in the ISO week-year), months and years
//!   ([`KeepReason::Bucket`]). When a bucket rule still has counts left after the oldest
//!   complete artifact of the group, that oldest artifact is kept too, even though its bucket
//!   already had a newer one (restic's "oldest yearly snapshot": it maximises the history
//!   kept); its reason has `oldest: true`.
//! * A count is a number or [`Count::Unlimited`] (restic's `-1` / `unlimited`): keep every
//!   artifact the rule would select with an endless count. `0` means the rule is not set.
//! * `keep_within d` keeps every complete artifact dated strictly after `newest − d`, where
//!   `newest` is the newest complete artifact of the group dated at or before `now` (as
//!   restic: relative to the newest backup, not to `now`, so a location whose backups
//!   stopped keeps its last `d` worth of them) ([`KeepReason::Within`]). `d` is a
//!   [`CalendarDuration`] (`2y5m7d3h`, `m` = months); years, months and days are subtracted
//!   like Go's `AddDate` (31 March − 1m is 3 March, since 31 February normalises to it),
//!   then hours. A zero duration is the same as not setting the rule.
//!
//! **Floors** (ours, stronger than restic's):
//!
//! 1. The newest complete artifact of a group dated at or before `now` (or, when every
//!    complete artifact is future-dated, the newest complete one) is never removed
//!    ([`KeepReason::NewestComplete`]), whatever the policy (a future-dated artifact, e.g.
//!    from a skewed clock, takes the `keep_last 1` slot in restic and would get the real
//!    newest backup removed).
//! 2. A policy with no keep rule set (all counts zero and no non-zero `keep_within`) removes
//!    nothing: [`plan_retention`] returns [`RetentionError::EmptyPolicy`], which the CLI turns
//!    into a refusal (restic's "no policy was specified, no snapshots will be removed").
//! 3. An incomplete artifact (`incomplete` is `Some`: no readable `metadata`) never counts
//!    toward any rule (it takes no bucket, no `keep_last` slot, and is never `newest` for
//!    `keep_within`). It is removed only when it is dated strictly before
//!    `now − keep_incomplete_for` (default 24h; [`RemoveReason::IncompleteOld`]); otherwise it
//!    is kept ([`KeepReason::IncompleteRecent`]: it may be a backup in progress).
//! 4. An artifact dated after `now` is never removed by a duration rule: with `keep_within`
//!    set, every future-dated complete artifact is kept ([`KeepReason::FutureDated`]) and none
//!    of them is `newest`; a future-dated incomplete artifact is always younger than
//!    `keep_incomplete_for`. Without `keep_within`, future-dated complete artifacts take part
//!    in the count rules like any other (they are the newest, so count rules keep them first).
//!
//! Everything not kept is removed with [`RemoveReason::NotKept`].
//!
//! **Output**: a [`RetentionPlan`] with one [`Decision`] per judged artifact, in input order.
//!
//! **Durations** ([`CalendarDuration`], `FromStr`): restic's syntax, one or more
//! `<digits><unit>` with unit `y` (years), `m` (months), `d` (days), `h` (hours), e.g.
//! `2y5m7d3h`, `7d`, `24h`. `m` means **months**, as in restic, not minutes as in Go's
//! `time.ParseDuration` (`bbr_gocompat::parse_go_duration`, which is therefore not used
//! here): `15m` is fifteen months. Seconds and minutes do not exist (retention works in hours
//! and coarser); Go-style `90s` or `1.5h` is an error naming the text. Unlike restic, a unit
//! may appear only once, numbers have no sign, and empty text is an error.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};

use crate::listing::ListedArtifact;

/// How many buckets (or newest artifacts) a count rule keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// This many; `N(0)` (the default) means the rule is not set.
    N(u32),
    /// As many as there are (restic's `-1` / `unlimited`).
    Unlimited,
}

impl Default for Count {
    fn default() -> Self {
        Count::N(0)
    }
}

impl Count {
    /// True when the rule keeps something (`N(n > 0)` or `Unlimited`).
    pub fn is_set(self) -> bool {
        match self {
            Count::N(n) => n > 0,
            Count::Unlimited => true,
        }
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Count::N(n) => write!(f, "{n}"),
            Count::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// Parses a `--keep-*` count: a non-negative number, `-1` or `unlimited` (restic's two
/// spellings of [`Count::Unlimited`]).
impl FromStr for Count {
    type Err = RetentionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "unlimited" | "-1" => Ok(Count::Unlimited),
            _ if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text
                .parse::<u32>()
                .map(Count::N)
                .map_err(|_| RetentionError::Count {
                    text: text.to_string(),
                }),
            _ => Err(RetentionError::Count {
                text: text.to_string(),
            }),
        }
    }
}

/// restic's calendar duration: years, months, days and hours, each subtracted on the
/// calendar (see the module docs). `Display` writes it back in the same syntax (`2y5m7d3h`,
/// zero as `0h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CalendarDuration {
    /// `y`: calendar years.
    pub years: u32,
    /// `m`: calendar months (not minutes).
    pub months: u32,
    /// `d`: calendar days.
    pub days: u32,
    /// `h`: hours.
    pub hours: u32,
}

impl CalendarDuration {
    /// `hours` hours.
    pub const fn hours(hours: u32) -> Self {
        CalendarDuration {
            years: 0,
            months: 0,
            days: 0,
            hours,
        }
    }

    /// `days` days.
    pub const fn days(days: u32) -> Self {
        CalendarDuration {
            years: 0,
            months: 0,
            days,
            hours: 0,
        }
    }

    /// True when every part is zero.
    pub fn is_zero(&self) -> bool {
        *self == CalendarDuration::default()
    }

    /// `t` minus this duration: years and months first (the day of the month carried over
    /// like Go's `AddDate`, 31 March − 1m = 3 March), then days, then hours. `None` when the
    /// result is outside chrono's range (earlier than any artifact can be).
    pub fn before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let month0 = i64::from(t.month0()) - i64::from(self.months);
        let year = i64::from(t.year()) - i64::from(self.years) + month0.div_euclid(12);
        let month = u32::try_from(month0.rem_euclid(12)).ok()? + 1;
        let first = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, 1)?;
        let day_offset = i64::from(t.day()) - 1 - i64::from(self.days);
        let date = first.checked_add_signed(TimeDelta::try_days(day_offset)?)?;
        date.and_time(t.time())
            .and_utc()
            .checked_sub_signed(TimeDelta::try_hours(i64::from(self.hours))?)
    }
}

impl fmt::Display for CalendarDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0h");
        }
        for (n, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n != 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

/// Parses restic's duration syntax (`2y5m7d3h`; `m` = months); see the module docs.
impl FromStr for CalendarDuration {
    type Err = RetentionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |problem| RetentionError::Duration {
            text: text.to_string(),
            problem,
        };
        if text.is_empty() {
            return Err(fail(DurationProblem::Empty));
        }
        let mut d = CalendarDuration::default();
        let mut seen = [false; 4];
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(fail(DurationProblem::NoNumber {
                    at: rest.to_string(),
                }));
            }
            let (number, after) = rest.split_at(digits);
            let n: u32 = number
                .parse()
                .map_err(|_| fail(DurationProblem::TooLarge(number.to_string())))?;
            let mut chars = after.chars();
            let Some(unit) = chars.next() else {
                return Err(fail(DurationProblem::NoUnit(n)));
            };
            let (slot, field) = match unit {
                'y' => (0, &mut d.years),
                'm' => (1, &mut d.months),
                'd' => (2, &mut d.days),
                'h' => (3, &mut d.hours),
                other => return Err(fail(DurationProblem::BadUnit { n, unit: other })),
            };
            if seen[slot] {
                return Err(fail(DurationProblem::Repeated(unit)));
            }
            seen[slot] = true;
            *field = n;
            rest = chars.as_str();
        }
        Ok(d)
    }
}

/// What is wrong with a duration's text ([`RetentionError::Duration`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationProblem {
    Empty,
    /// Text where a number should start.
    NoNumber {
        at: String,
    },
    /// A number with no unit after it.
    NoUnit(u32),
    /// A unit other than y, m, d, h.
    BadUnit {
        n: u32,
        unit: char,
    },
    /// A unit given twice.
    Repeated(char),
    /// A number over 4294967295.
    TooLarge(String),
}

const UNITS: &str = "y (years), m (months), d (days) or h (hours)";

impl fmt::Display for DurationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationProblem::Empty => write!(f, "it is empty; expected e.g. 7d or 2y5m7d3h"),
            DurationProblem::NoNumber { at } => {
                write!(f, "expected a number at {at:?} (units: {UNITS})")
            }
            DurationProblem::NoUnit(n) => write!(f, "no unit after {n}; expected {UNITS}"),
            DurationProblem::BadUnit { n, unit } => write!(
                f,
                "unit {unit:?} after {n} is not one of {UNITS}; minutes and seconds are not supported"
            ),
            DurationProblem::Repeated(unit) => write!(f, "unit {unit:?} is given twice"),
            DurationProblem::TooLarge(number) => write!(f, "{number} is too large"),
        }
    }
}

/// Why a policy cannot be applied, or a count or duration cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    /// No keep rule is set: the policy would remove everything, so nothing is removed.
    #[error("the policy keeps everything: give at least one --keep-* flag")]
    EmptyPolicy,
    #[error("invalid retention duration {text:?}: {problem}")]
    Duration {
        text: String,
        problem: DurationProblem,
    },
    #[error("invalid keep count {text:?}: expected a number of artifacts, -1 or unlimited")]
    Count { text: String },
}

/// A retention policy: restic's keep rules plus our incomplete-artifact grace period and an
/// optional deployment filter. `Default` sets no rule (an empty policy) and a 24h grace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Keep the n newest complete artifacts (`--keep-last`).
    pub keep_last: Count,
    /// Keep the newest of each of the last n UTC hours with an artifact (`--keep-hourly`).
    pub keep_hourly: Count,
    /// The same per UTC day (`--keep-daily`).
    pub keep_daily: Count,
    /// The same per ISO-8601 week (`--keep-weekly`).
    pub keep_weekly: Count,
    /// The same per UTC month (`--keep-monthly`).
    pub keep_monthly: Count,
    /// The same per UTC year (`--keep-yearly`).
    pub keep_yearly: Count,
    /// Keep every complete artifact within this much of the group's newest one.
    pub keep_within: Option<CalendarDuration>,
    /// How long an incomplete artifact may be a backup in progress (relative to `now`).
    pub keep_incomplete_for: CalendarDuration,
    /// Judge only this deployment's artifacts; the others get no decision.
    pub deployment: Option<String>,
}

/// The default grace period of an incomplete artifact.
pub const DEFAULT_KEEP_INCOMPLETE_FOR: CalendarDuration = CalendarDuration::hours(24);

impl Default for Policy {
    fn default() -> Self {
        Policy {
            keep_last: Count::N(0),
            keep_hourly: Count::N(0),
            keep_daily: Count::N(0),
            keep_weekly: Count::N(0),
            keep_monthly: Count::N(0),
            keep_yearly: Count::N(0),
            keep_within: None,
            keep_incomplete_for: DEFAULT_KEEP_INCOMPLETE_FOR,
            deployment: None,
        }
    }
}

impl Policy {
    /// True when no keep rule is set (floor 2: such a policy removes nothing).
    pub fn is_empty(&self) -> bool {
        !self.keep_last.is_set()
            && self.counts().iter().all(|(c, _)| !c.is_set())
            && self.within().is_none()
    }

    fn counts(&self) -> [(Count, Period); 5] {
        [
            (self.keep_hourly, Period::Hourly),
            (self.keep_daily, Period::Daily),
            (self.keep_weekly, Period::Weekly),
            (self.keep_monthly, Period::Monthly),
            (self.keep_yearly, Period::Yearly),
        ]
    }

    fn within(&self) -> Option<CalendarDuration> {
        self.keep_within.filter(|d| !d.is_zero())
    }
}

/// `keep the last 3, 7 daily, unlimited monthly and all within 7d of the newest` (or
/// `keep everything` for an empty policy).
impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.keep_last.is_set() {
            parts.push(format!("the last {}", self.keep_last));
        }
        for (count, period) in self.counts() {
            if count.is_set() {
                parts.push(format!("{count} {period}"));
            }
        }
        if let Some(d) = self.within() {
            parts.push(format!("all within {d} of the newest"));
        }
        match parts.split_last() {
            None => f.write_str("keep everything"),
            Some((last, [])) => write!(f, "keep {last}"),
            Some((last, rest)) => write!(f, "keep {} and {last}", rest.join(", ")),
        }
    }
}

/// A calendar bucket size (UTC; weeks are ISO-8601).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Period {
    /// A number unique to the bucket holding `t`.
    fn key(self, t: DateTime<Utc>) -> i64 {
        let (y, m, d, h) = (
            i64::from(t.year()),
            i64::from(t.month()),
            i64::from(t.day()),
            i64::from(t.hour()),
        );
        match self {
            Period::Hourly => ((y * 100 + m) * 100 + d) * 100 + h,
            Period::Daily => (y * 100 + m) * 100 + d,
            Period::Weekly => {
                let week = t.iso_week();
                i64::from(week.year()) * 100 + i64::from(week.week())
            }
            Period::Monthly => y * 100 + m,
            Period::Yearly => y,
        }
    }

    /// The bucket holding `t`: `2026-12-01T10`, `2026-12-01`, `2026-W49`, `2026-12`, `2026`.
    fn label(self, t: DateTime<Utc>) -> String {
        match self {
            Period::Hourly => t.format("%Y-%m-%dT%H").to_string(),
            Period::Daily => t.format("%Y-%m-%d").to_string(),
            Period::Weekly => t.format("%G-W%V").to_string(),
            Period::Monthly => t.format("%Y-%m").to_string(),
            Period::Yearly => t.format("%Y").to_string(),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Period::Hourly => "hourly",
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
            Period::Yearly => "yearly",
        })
    }
}

/// Why an artifact is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepReason {
    /// The `rank`-th newest complete artifact (1 = newest), kept by `keep_last`: `last 3`.
    Last { rank: u32 },
    /// The newest of its bucket, kept by a bucket rule: `daily 2026-12-01`; with `oldest`,
    /// the oldest artifact of the group kept because the rule had counts left:
    /// `yearly 2014, oldest artifact (yearly has counts left)`.
    Bucket {
        period: Period,
        bucket: String,
        oldest: bool,
    },
    /// Within `keep_within` of the group's newest complete artifact: `within 7d of the newest`.
    Within { within: CalendarDuration },
    /// Dated after `now` while `keep_within` is set (floor 4).
    FutureDated,
    /// The group's newest complete artifact (floor 1).
    NewestComplete,
    /// Incomplete but younger than `keep_incomplete_for` (floor 3).
    IncompleteRecent { grace: CalendarDuration },
}

impl fmt::Display for KeepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepReason::Last { rank } => write!(f, "last {rank}"),
            KeepReason::Bucket {
                period,
                bucket,
                oldest: false,
            } => write!(f, "{period} {bucket}"),
            KeepReason::Bucket {
                period,
                bucket,
                oldest: true,
            } => write!(
                f,
                "{period} {bucket}, oldest artifact ({period} has counts left)"
            ),
            KeepReason::Within { within } => write!(f, "within {within} of the newest"),
            KeepReason::FutureDated => {
                f.write_str("dated in the future, never removed by a duration rule")
            }
            KeepReason::NewestComplete => f.write_str("newest complete artifact"),
            KeepReason::IncompleteRecent { grace } => write!(
                f,
                "incomplete, younger than {grace} (may be a backup in progress)"
            ),
        }
    }
}

/// Why an artifact is removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveReason {
    /// Complete, and no rule or floor keeps it.
    NotKept,
    /// Incomplete and dated before `now − keep_incomplete_for` (floor 3).
    IncompleteOld { grace: CalendarDuration },
}

impl fmt::Display for RemoveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoveReason::NotKept => f.write_str("not kept by any rule"),
            RemoveReason::IncompleteOld { grace } => {
                write!(f, "incomplete and older than {grace}")
            }
        }
    }
}

/// Keep (every reason that keeps it, never empty) or remove (why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Keep(Vec<KeepReason>),
    Remove(RemoveReason),
}

impl Verdict {
    pub fn is_keep(&self) -> bool {
        matches!(self, Verdict::Keep(_))
    }
}

/// `keep: last 1, daily 2026-12-01` or `remove: not kept by any rule`.
impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Keep(reasons) => {
                f.write_str("keep: ")?;
                for (i, reason) in reasons.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{reason}")?;
                }
                Ok(())
            }
            Verdict::Remove(reason) => write!(f, "remove: {reason}"),
        }
    }
}

/// The verdict on one artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Its position in the input slice.
    pub index: usize,
    pub artifact: ListedArtifact,
    pub verdict: Verdict,
}

/// One [`Decision`] per judged artifact, in input order (artifacts of deployments the
/// policy's filter excludes have none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionPlan {
    pub decisions: Vec<Decision>,
}

impl RetentionPlan {
    /// The decisions that keep their artifact.
    pub fn kept(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| d.verdict.is_keep())
    }

    /// The decisions that remove their artifact.
    pub fn removals(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| !d.verdict.is_keep())
    }
}

/// Applies `policy` to the artifacts of one location at time `now` (see the module docs
/// for every rule). Fails only with [`RetentionError::EmptyPolicy`].
pub fn plan_retention(
    artifacts: &[ListedArtifact],
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<RetentionPlan, RetentionError> {
    if policy.is_empty() {
        return Err(RetentionError::EmptyPolicy);
    }
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, a) in artifacts.iter().enumerate() {
        if policy
            .deployment
            .as_deref()
            .is_none_or(|only| only == a.deployment)
        {
            groups.entry(a.deployment.as_str()).or_default().push(i);
        }
    }
    let mut verdicts: BTreeMap<usize, Verdict> = BTreeMap::new();
    for members in groups.values() {
        judge_group(artifacts, members, policy, now, &mut verdicts);
    }
    Ok(RetentionPlan {
        decisions: verdicts
            .into_iter()
            .map(|(index, verdict)| Decision {
                index,
                artifact: artifacts[index].clone(),
                verdict,
            })
            .collect(),
    })
}

/// One bucket rule's state while walking a group newest first (restic's `buckets[i]`).
struct BucketRule {
    period: Period,
    /// Buckets still to keep; `None` = unlimited.
    left: Option<u32>,
    last: Option<i64>,
}

fn judge_group(
    artifacts: &[ListedArtifact],
    members: &[usize],
    policy: &Policy,
    now: DateTime<Utc>,
    verdicts: &mut BTreeMap<usize, Verdict>,
) {
    // Floor 3: incomplete artifacts are judged by age alone.
    let grace = policy.keep_incomplete_for;
    let incomplete_cutoff = grace.before(now);
    let mut complete = Vec::new();
    for &i in members {
        let a = &artifacts[i];
        if a.is_complete() {
            complete.push(i);
        } else if incomplete_cutoff.is_some_and(|cutoff| a.time < cutoff) {
            verdicts.insert(i, Verdict::Remove(RemoveReason::IncompleteOld { grace }));
        } else {
            verdicts.insert(
                i,
                Verdict::Keep(vec![KeepReason::IncompleteRecent { grace }]),
            );
        }
    }
    // Newest first; a stable sort keeps the input order of equal times.
    complete.sort_by(|&a, &b| artifacts[b].time.cmp(&artifacts[a].time));
    if complete.is_empty() {
        return;
    }
    let newest_past = complete.iter().copied().find(|&i| artifacts[i].time <= now);
    let newest_complete = newest_past.unwrap_or(complete[0]);
    // keep_within: `None` threshold = everything (the subtraction left chrono's range).
    let within = policy.within().map(|d| {
        let reference = newest_past.map(|i| artifacts[i].time);
        (d, reference.and_then(|r| d.before(r)))
    });

    let left = |c: Count| match c {
        Count::N(n) => Some(n),
        Count::Unlimited => None,
    };
    let mut last_left = left(policy.keep_last);
    let mut rules: Vec<BucketRule> = policy
        .counts()
        .into_iter()
        .filter(|(c, _)| c.is_set())
        .map(|(c, period)| BucketRule {
            period,
            left: left(c),
            last: None,
        })
        .collect();

    let oldest_pos = complete.len() - 1;
    let mut rank = 0u32;
    for (pos, &i) in complete.iter().enumerate() {
        let t = artifacts[i].time;
        let mut reasons = Vec::new();
        if last_left != Some(0) {
            rank += 1;
            reasons.push(KeepReason::Last { rank });
            if let Some(n) = last_left.as_mut() {
                *n -= 1;
            }
        }
        for rule in &mut rules {
            if rule.left == Some(0) {
                continue;
            }
            let key = rule.period.key(t);
            let new_bucket = rule.last != Some(key);
            if new_bucket || pos == oldest_pos {
                rule.last = Some(key);
                if let Some(n) = rule.left.as_mut() {
                    *n -= 1;
                }
                reasons.push(KeepReason::Bucket {
                    period: rule.period,
                    bucket: rule.period.label(t),
                    oldest: !new_bucket,
                });
            }
        }
        if let Some((d, threshold)) = within {
            if t > now {
                reasons.push(KeepReason::FutureDated);
            } else if threshold.is_none_or(|th| t > th) {
                reasons.push(KeepReason::Within { within: d });
            }
        }
        if i == newest_complete {
            reasons.push(KeepReason::NewestComplete);
        }
        let verdict = if reasons.is_empty() {
            Verdict::Remove(RemoveReason::NotKept)
        } else {
            Verdict::Keep(reasons)
        };
        verdicts.insert(i, verdict);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;
    use std::path::PathBuf;

    fn at(text: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .and_utc()
    }

    fn artifact(deployment: &str, time: &str, complete: bool) -> ListedArtifact {
        let time = at(time);
        let name = format!("{deployment}_{}", time.format("%Y%m%dT%H%M%SZ"));
        ListedArtifact {
            path: PathBuf::from("/backups").join(&name),
            name,
            deployment: deployment.to_string(),
            time,
            size_bytes: 0,
            incomplete: (!complete).then(|| "no metadata".to_string()),
        }
    }

    fn complete(times: &[&str]) -> Vec<ListedArtifact> {
        times.iter().map(|t| artifact("redis", t, true)).collect()
    }

    fn dur(text: &str) -> CalendarDuration {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// `(artifact name, verdict as printed)` for every decision, in input order.
    fn printed(plan: &RetentionPlan) -> Vec<(String, String)> {
        plan.decisions
            .iter()
            .map(|d| (d.artifact.name.clone(), d.verdict.to_string()))
            .collect()
    }

    /// Only the kept ones, as `time: reasons`, newest first.
    fn kept(plan: &RetentionPlan) -> Vec<String> {
        let mut kept: Vec<&Decision> = plan.kept().collect();
        kept.sort_by_key(|d| std::cmp::Reverse(d.artifact.time));
        kept.iter()
            .map(|d| {
                let Verdict::Keep(reasons) = &d.verdict else {
                    unreachable!()
                };
                let reasons: Vec<String> = reasons.iter().map(ToString::to_string).collect();
                format!(
                    "{}: {}",
                    d.artifact.time.format("%Y-%m-%d %H:%M"),
                    reasons.join("; ")
                )
            })
            .collect()
    }

    fn plan(artifacts: &[ListedArtifact], policy: &Policy, now: &str) -> RetentionPlan {
        plan_retention(artifacts, policy, at(now)).expect("plan")
    }

    /// restic's `TestApplyPolicy` timestamps (`internal/data/snapshot_policy_test.go`), in its
    /// input order (not sorted).
    const RESTIC_TIMES: [&str; 103] = [
        "2014-09-01 10:20:30",   // 0
        "2014-09-02 10:20:30",   // 1
        "2014-09-05 10:20:30",   // 2
        "2014-09-06 10:20:30",   // 3
        "2014-09-08 10:20:30",   // 4
        "2014-09-09 10:20:30",   // 5
        "2014-09-10 10:20:30",   // 6
        "2014-09-11 10:20:30",   // 7
        "2014-09-20 10:20:30",   // 8
        "2014-09-22 10:20:30",   // 9
        "2014-08-08 10:20:30",   // 10
        "2014-08-10 10:20:30",   // 11
        "2014-08-12 10:20:30",   // 12
        "2014-08-13 10:20:30",   // 13
        "2014-08-13 10:20:30.1", // 14
        "2014-08-15 10:20:30",   // 15
        "2014-08-18 10:20:30",   // 16
        "2014-08-20 10:20:30",   // 17
        "2014-08-21 10:20:30",   // 18
        "2014-08-22 10:20:30",   // 19
        "2014-10-01 10:20:30",   // 20
        "2014-10-02 10:20:30",   // 21
        "2014-10-05 10:20:30",   // 22
        "2014-10-06 10:20:30",   // 23
        "2014-10-08 10:20:30",   // 24
        "2014-10-09 10:20:30",   // 25
        "2014-10-10 10:20:30",   // 26
        "2014-10-11 10:20:30",   // 27
        "2014-10-20 10:20:30",   // 28
        "2014-10-22 10:20:30",   // 29
        "2014-11-08 10:20:30",   // 30
        "2014-11-10 10:20:30",   // 31
        "2014-11-12 10:20:30",   // 32
        "2014-11-13 10:20:30",   // 33
        "2014-11-13 10:20:30.1", // 34
        "2014-11-15 10:20:30",   // 35
        "2014-11-18 10:20:30",   // 36
        "2014-11-20 10:20:30",   // 37
        "2014-11-21 10:20:30",   // 38
        "2014-11-22 10:20:30",   // 39
        "2015-09-01 10:20:30",   // 40
        "2015-09-02 10:20:30",   // 41
        "2015-09-05 10:20:30",   // 42
        "2015-09-06 10:20:30",   // 43
        "2015-09-08 10:20:30",   // 44
        "2015-09-09 10:20:30",   // 45
        "2015-09-10 10:20:30",   // 46
        "2015-09-11 10:20:30",   // 47
        "2015-09-20 10:20:30",   // 48
        "2015-09-22 10:20:30",   // 49
        "2015-08-08 10:20:30",   // 50
        "2015-08-10 10:20:30",   // 51
        "2015-08-12 10:20:30",   // 52
        "2015-08-13 10:20:30",   // 53
        "2015-08-13 10:20:30.1", // 54
        "2015-08-15 10:20:30",   // 55
        "2015-08-18 10:20:30",   // 56
        "2015-08-20 10:20:30",   // 57
        "2015-08-21 10:20:30",   // 58
        "2015-08-22 10:20:30",   // 59
        "2015-10-01 10:20:30",   // 60
        "2015-10-02 10:20:30",   // 61
        "2015-10-05 10:20:30",   // 62
        "2015-10-06 10:20:30",   // 63
        "2015-10-08 10:20:30",   // 64
        "2015-10-09 10:20:30",   // 65
        "2015-10-10 10:20:30",   // 66
        "2015-10-11 10:20:30",   // 67
        "2015-10-20 10:20:30",   // 68
        "2015-10-22 10:20:30",   // 69
        "2015-10-22 10:20:30",   // 70
        "2015-10-22 10:20:30",   // 71
        "2015-10-22 10:20:30",   // 72
        "2015-10-22 10:20:30",   // 73
        "2015-11-08 10:20:30",   // 74
        "2015-11-10 10:20:30",   // 75
        "2015-11-12 10:20:30",   // 76
        "2015-11-13 10:20:30",   // 77
        "2015-11-13 10:20:30.1", // 78
        "2015-11-15 10:20:30",   // 79
        "2015-11-18 10:20:30",   // 80
        "2015-11-20 10:20:30",   // 81
        "2015-11-21 10:20:30",   // 82
        "2015-11-22 10:20:30",   // 83
        "2016-01-01 01:02:03",   // 84
        "2016-01-01 01:03:03",   // 85
        "2016-01-01 07:08:03",   // 86
        "2016-01-03 07:02:03",   // 87
        "2016-01-04 10:23:03",   // 88
        "2016-01-04 11:23:03",   // 89
        "2016-01-04 12:23:03",   // 90
        "2016-01-04 12:24:03",   // 91
        "2016-01-04 12:28:03",   // 92
        "2016-01-04 12:30:03",   // 93
        "2016-01-04 16:23:03",   // 94
        "2016-01-05 09:02:03",   // 95
        "2016-01-06 08:02:03",   // 96
        "2016-01-07 10:02:03",   // 97
        "2016-01-08 20:02:03",   // 98
        "2016-01-09 21:02:03",   // 99
        "2016-01-12 21:02:03",   // 100
        "2016-01-12 21:08:03",   // 101
        "2016-01-18 12:02:03",   // 102
    ];

    /// restic's golden results (`testdata/policy_keep_snapshots_<n>`) for the policies that have an
    /// equivalent here: `<index into RESTIC_TIMES>:<rules>`, newest first, with one letter per
    /// matching rule (L last, H hourly, D daily, W weekly, M monthly, Y yearly, lowercase =
    /// restic's "oldest ... snapshot", I within); `prefix(n, c)` = the n newest, each kept by c.
    fn restic_cases() -> Vec<(usize, Policy, String)> {
        vec![
            (
                1,
                Policy { keep_last: Count::N(10), ..Policy::default() },
                "102:L 101:L 100:L 99:L 98:L 97:L 96:L 95:L 94:L 93:L".to_string(),
            ),
            (
                2,
                Policy { keep_last: Count::N(15), ..Policy::default() },
                prefix(15, "L"),
            ),
            (
                3,
                Policy { keep_last: Count::N(99), ..Policy::default() },
                prefix(99, "L"),
            ),
            (
                4,
                Policy { keep_last: Count::N(200), ..Policy::default() },
                prefix(103, "L"),
            ),
            (
                5,
                Policy { keep_hourly: Count::N(20), ..Policy::default() },
                concat!(
                    "102:H 101:H 99:H 98:H 97:H 96:H 95:H 94:H 93:H 89:H 88:H 87:H 86:H 85:H 83:H ",
                    "82:H 81:H 80:H 79:H 78:H",
                )
                .to_string(),
            ),
            (
                6,
                Policy { keep_daily: Count::N(3), ..Policy::default() },
                "102:D 101:D 99:D".to_string(),
            ),
            (
                7,
                Policy { keep_daily: Count::N(10), ..Policy::default() },
                "102:D 101:D 99:D 98:D 97:D 96:D 95:D 94:D 87:D 86:D".to_string(),
            ),
            (
                8,
                Policy { keep_daily: Count::N(30), ..Policy::default() },
                concat!(
                    "102:D 101:D 99:D 98:D 97:D 96:D 95:D 94:D 87:D 86:D 83:D 82:D 81:D 80:D 79:D ",
                    "78:D 76:D 75:D 74:D 69:D 68:D 67:D 66:D 65:D 64:D 63:D 62:D 61:D 60:D 49:D",
                )
                .to_string(),
            ),
            (
                9,
                Policy { keep_last: Count::N(5), keep_daily: Count::N(5), ..Policy::default() },
                "102:LD 101:LD 100:L 99:LD 98:LD 97:D".to_string(),
            ),
            (
                10,
                Policy { keep_last: Count::N(2), keep_daily: Count::N(10), ..Policy::default() },
                "102:LD 101:LD 99:D 98:D 97:D 96:D 95:D 94:D 87:D 86:D".to_string(),
            ),
            (
                11,
                Policy { keep_weekly: Count::N(2), ..Policy::default() },
                "102:W 101:W".to_string(),
            ),
            (
                12,
                Policy { keep_weekly: Count::N(4), ..Policy::default() },
                "102:W 101:W 99:W 87:W".to_string(),
            ),
            (
                13,
                Policy { keep_daily: Count::N(3), keep_weekly: Count::N(4), ..Policy::default() },
                "102:DW 101:DW 99:DW 87:W".to_string(),
            ),
            (
                14,
                Policy { keep_monthly: Count::N(6), ..Policy::default() },
                "102:M 83:M 69:M 49:M 59:M 39:M".to_string(),
            ),
            (
                15,
                Policy { keep_daily: Count::N(2), keep_weekly: Count::N(2), keep_monthly: Count::N(6), ..Policy::default() },
                "102:DWM 101:DW 83:M 69:M 49:M 59:M 39:M".to_string(),
            ),
            (
                16,
                Policy { keep_yearly: Count::N(10), ..Policy::default() },
                "102:Y 83:Y 39:Y 10:y".to_string(),
            ),
            (
                17,
                Policy { keep_daily: Count::N(7), keep_weekly: Count::N(2), keep_monthly: Count::N(3), keep_yearly: Count::N(10), ..Policy::default() },
                "102:DWMY 101:DW 99:D 98:D 97:D 96:D 95:D 83:MY 69:M 39:Y 10:y".to_string(),
            ),
            (
                21,
                Policy { keep_within: Some(dur("1d")), ..Policy::default() },
                "102:I".to_string(),
            ),
            (
                22,
                Policy { keep_within: Some(dur("2d")), ..Policy::default() },
                "102:I".to_string(),
            ),
            (
                23,
                Policy { keep_within: Some(dur("7d")), ..Policy::default() },
                "102:I 101:I 100:I".to_string(),
            ),
            (
                24,
                Policy { keep_within: Some(dur("1m")), ..Policy::default() },
                prefix(19, "I"),
            ),
            (
                25,
                Policy { keep_within: Some(dur("1m14d")), ..Policy::default() },
                prefix(19, "I"),
            ),
            (
                26,
                Policy { keep_within: Some(dur("1y1d1m")), ..Policy::default() },
                prefix(63, "I"),
            ),
            (
                27,
                Policy { keep_within: Some(dur("13d23h")), ..Policy::default() },
                "102:I 101:I 100:I 99:I 98:I 97:I 96:I 95:I 94:I".to_string(),
            ),
            (
                28,
                Policy { keep_within: Some(dur("2m2h")), ..Policy::default() },
                prefix(23, "I"),
            ),
            (
                29,
                Policy { keep_within: Some(dur("1y2m3d3h")), ..Policy::default() },
                prefix(68, "I"),
            ),
            (
                36,
                Policy { keep_last: Count::Unlimited, ..Policy::default() },
                prefix(103, "L"),
            ),
            (
                37,
                Policy { keep_last: Count::Unlimited, keep_hourly: Count::Unlimited, ..Policy::default() },
                concat!(
                    "102:LH 101:LH 100:L 99:LH 98:LH 97:LH 96:LH 95:LH 94:LH 93:LH 92:L 91:L 90:L ",
                    "89:LH 88:LH 87:LH 86:LH 85:LH 84:L 83:LH 82:LH 81:LH 80:LH 79:LH 78:LH 77:L ",
                    "76:LH 75:LH 74:LH 69:LH 70:L 71:L 72:L 73:L 68:LH 67:LH 66:LH 65:LH 64:LH 63:LH ",
                    "62:LH 61:LH 60:LH 49:LH 48:LH 47:LH 46:LH 45:LH 44:LH 43:LH 42:LH 41:LH 40:LH ",
                    "59:LH 58:LH 57:LH 56:LH 55:LH 54:LH 53:L 52:LH 51:LH 50:LH 39:LH 38:LH 37:LH ",
                    "36:LH 35:LH 34:LH 33:L 32:LH 31:LH 30:LH 29:LH 28:LH 27:LH 26:LH 25:LH 24:LH ",
                    "23:LH 22:LH 21:LH 20:LH 9:LH 8:LH 7:LH 6:LH 5:LH 4:LH 3:LH 2:LH 1:LH 0:LH 19:LH ",
                    "18:LH 17:LH 16:LH 15:LH 14:LH 13:L 12:LH 11:LH 10:LH",
                )
                .to_string(),
            ),
            (
                38,
                Policy { keep_hourly: Count::Unlimited, ..Policy::default() },
                concat!(
                    "102:H 101:H 99:H 98:H 97:H 96:H 95:H 94:H 93:H 89:H 88:H 87:H 86:H 85:H 83:H ",
                    "82:H 81:H 80:H 79:H 78:H 76:H 75:H 74:H 69:H 68:H 67:H 66:H 65:H 64:H 63:H 62:H ",
                    "61:H 60:H 49:H 48:H 47:H 46:H 45:H 44:H 43:H 42:H 41:H 40:H 59:H 58:H 57:H 56:H ",
                    "55:H 54:H 52:H 51:H 50:H 39:H 38:H 37:H 36:H 35:H 34:H 32:H 31:H 30:H 29:H 28:H ",
                    "27:H 26:H 25:H 24:H 23:H 22:H 21:H 20:H 9:H 8:H 7:H 6:H 5:H 4:H 3:H 2:H 1:H 0:H ",
                    "19:H 18:H 17:H 16:H 15:H 14:H 12:H 11:H 10:H",
                )
                .to_string(),
            ),
            (
                39,
                Policy { keep_daily: Count::N(3), keep_weekly: Count::N(2), keep_monthly: Count::Unlimited, keep_yearly: Count::Unlimited, ..Policy::default() },
                "102:DWMY 101:DW 99:D 83:MY 69:M 49:M 59:M 39:MY 29:M 9:M 19:M 10:my".to_string(),
            ),
        ]
    }
    fn prefix(n: usize, rules: &str) -> String {
        let order = restic_order();
        order[..n]
            .iter()
            .map(|i| format!("{i}:{rules}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// RESTIC_TIMES indices newest first (stable: equal times keep their input order).
    fn restic_order() -> Vec<usize> {
        let mut order: Vec<usize> = (0..RESTIC_TIMES.len()).collect();
        order.sort_by(|&a, &b| at(RESTIC_TIMES[b]).cmp(&at(RESTIC_TIMES[a])));
        order
    }

    fn code(reason: &KeepReason) -> Option<char> {
        Some(match reason {
            KeepReason::Last { .. } => 'L',
            KeepReason::Bucket { period, oldest, .. } => {
                let c = match period {
                    Period::Hourly => 'H',
                    Period::Daily => 'D',
                    Period::Weekly => 'W',
                    Period::Monthly => 'M',
                    Period::Yearly => 'Y',
                };
                if *oldest { c.to_ascii_lowercase() } else { c }
            }
            KeepReason::Within { .. } => 'I',
            KeepReason::NewestComplete => return None,
            other => panic!("no restic equivalent: {other}"),
        })
    }

    #[test]
    fn retention_matches_restic_golden_results() {
        let artifacts: Vec<ListedArtifact> = RESTIC_TIMES
            .iter()
            .map(|t| artifact("host", t, true))
            .collect();
        let order = restic_order();
        for (case, policy, want) in restic_cases() {
            let plan = plan(&artifacts, &policy, "2026-08-01 00:00:00");
            assert_eq!(plan.decisions.len(), artifacts.len(), "case {case}");
            let got: Vec<String> = order
                .iter()
                .filter_map(|&i| match &plan.decisions[i].verdict {
                    Verdict::Keep(reasons) => Some(format!(
                        "{i}:{}",
                        reasons.iter().filter_map(code).collect::<String>()
                    )),
                    Verdict::Remove(reason) => {
                        assert_eq!(*reason, RemoveReason::NotKept, "case {case}");
                        None
                    }
                })
                .collect();
            assert_eq!(got.join(" "), want, "restic case {case}: {policy}");
            // Floor 1 on restic's newest (2016-01-18, index 102), whatever kept it.
            let Verdict::Keep(reasons) = &plan.decisions[102].verdict else {
                panic!("case {case}: newest removed")
            };
            assert_eq!(
                reasons.last(),
                Some(&KeepReason::NewestComplete),
                "case {case}"
            );
        }
    }
    /// Our own table: 31 artifacts over hours, days, ISO weeks across year ends, months and
    /// years (in input order newest first, which the listing produces).
    const TABLE: [&str; 31] = [
        "2025-01-02 10:30:00",
        "2025-01-02 10:05:00",
        "2025-01-02 09:59:00",
        "2025-01-02 08:00:00",
        "2025-01-02 02:00:00",
        "2025-01-01 23:00:00",
        "2025-01-01 00:00:00",
        "2024-12-31 23:59:59",
        "2024-12-30 12:00:00", // Monday of ISO 2025-W01
        "2024-12-29 23:59:00", // Sunday of 2024-W52
        "2024-12-28 02:00:00",
        "2024-12-23 00:00:00",
        "2024-12-22 02:00:00",
        "2024-12-15 02:00:00",
        "2024-12-01 02:00:00",
        "2024-11-30 02:00:00",
        "2024-11-15 02:00:00",
        "2024-10-31 02:00:00",
        "2024-10-01 02:00:00",
        "2024-06-15 02:00:00",
        "2024-02-29 02:00:00",
        "2024-01-01 00:00:00",
        "2023-12-31 23:59:00",
        "2023-06-01 02:00:00",
        "2023-01-01 02:00:00", // ISO 2022-W52
        "2022-01-01 02:00:00", // ISO 2021-W52
        "2021-06-01 09:00:00",
        "2021-01-03 02:00:00", // ISO 2020-W53
        "2020-12-31 02:00:00", // ISO 2020-W53 too
        "2019-07-04 02:00:00",
        "2019-07-04 01:00:00",
    ];
    const NOW: &str = "2025-01-03 00:00:00";

    #[test]
    fn retention_keep_hourly_keeps_the_newest_of_the_last_hours_with_an_artifact() {
        let policy = Policy {
            keep_hourly: Count::N(3),
            ..Policy::default()
        };
        let plan = plan(&complete(&TABLE), &policy, NOW);
        assert_eq!(
            kept(&plan),
            [
                "2025-01-02 10:30: hourly 2025-01-02T10; newest complete artifact",
                "2025-01-02 09:59: hourly 2025-01-02T09",
                "2025-01-02 08:00: hourly 2025-01-02T08",
            ]
        );
        assert_eq!(plan.decisions.len(), 31);
        assert!(
            plan.removals()
                .all(|d| d.verdict == Verdict::Remove(RemoveReason::NotKept))
        );
        assert_eq!(
            plan.decisions[1].verdict.to_string(),
            "remove: not kept by any rule"
        );
    }

    #[test]
    fn retention_keep_weekly_uses_iso_weeks_and_unlimited_keeps_the_oldest_too() {
        let policy = Policy {
            keep_weekly: Count::N(4),
            ..Policy::default()
        };
        assert_eq!(
            kept(&plan(&complete(&TABLE), &policy, NOW)),
            [
                "2025-01-02 10:30: weekly 2025-W01; newest complete artifact",
                "2024-12-29 23:59: weekly 2024-W52",
                "2024-12-22 02:00: weekly 2024-W51",
                "2024-12-15 02:00: weekly 2024-W50",
            ]
        );
        let policy = Policy {
            keep_weekly: Count::Unlimited,
            ..Policy::default()
        };
        assert_eq!(
            kept(&plan(&complete(&TABLE), &policy, NOW)),
            [
                "2025-01-02 10:30: weekly 2025-W01; newest complete artifact",
                "2024-12-29 23:59: weekly 2024-W52",
                "2024-12-22 02:00: weekly 2024-W51",
                "2024-12-15 02:00: weekly 2024-W50",
                "2024-12-01 02:00: weekly 2024-W48",
                "2024-11-15 02:00: weekly 2024-W46",
                "2024-10-31 02:00: weekly 2024-W44",
                "2024-10-01 02:00: weekly 2024-W40",
                "2024-06-15 02:00: weekly 2024-W24",
                "2024-02-29 02:00: weekly 2024-W09",
                "2024-01-01 00:00: weekly 2024-W01",
                "2023-12-31 23:59: weekly 2023-W52",
                "2023-06-01 02:00: weekly 2023-W22",
                "2023-01-01 02:00: weekly 2022-W52",
                "2022-01-01 02:00: weekly 2021-W52",
                "2021-06-01 09:00: weekly 2021-W22",
                "2021-01-03 02:00: weekly 2020-W53",
                "2019-07-04 02:00: weekly 2019-W27",
                "2019-07-04 01:00: weekly 2019-W27, oldest artifact (weekly has counts left)",
            ]
        );
    }

    #[test]
    fn retention_keep_monthly_yearly_and_last_alone() {
        let monthly = Policy {
            keep_monthly: Count::N(3),
            ..Policy::default()
        };
        assert_eq!(
            kept(&plan(&complete(&TABLE), &monthly, NOW)),
            [
                "2025-01-02 10:30: monthly 2025-01; newest complete artifact",
                "2024-12-31 23:59: monthly 2024-12",
                "2024-11-30 02:00: monthly 2024-11",
            ]
        );
        let yearly = Policy {
            keep_yearly: Count::N(10),
            ..Policy::default()
        };
        assert_eq!(
            kept(&plan(&complete(&TABLE), &yearly, NOW)),
            [
                "2025-01-02 10:30: yearly 2025; newest complete artifact",
                "2024-12-31 23:59: yearly 2024",
                "2023-12-31 23:59: yearly 2023",
                "2022-01-01 02:00: yearly 2022",
                "2021-06-01 09:00: yearly 2021",
                "2020-12-31 02:00: yearly 2020",
                "2019-07-04 02:00: yearly 2019",
                "2019-07-04 01:00: yearly 2019, oldest artifact (yearly has counts left)",
            ]
        );
        // Exactly used up: no count left for the oldest.
        let two_years = Policy {
            keep_yearly: Count::N(2),
            ..Policy::default()
        };
        assert_eq!(
            kept(&plan(&complete(&TABLE), &two_years, NOW)),
            [
                "2025-01-02 10:30: yearly 2025; newest complete artifact",
                "2024-12-31 23:59: yearly 2024",
            ]
        );
        let last = Policy {
            keep_last: Count::N(2),
            ..Policy::default()
        };
        assert_eq!(
            kept(&plan(&complete(&TABLE), &last, NOW)),
            [
                "2025-01-02 10:30: last 1; newest complete artifact",
                "2025-01-02 10:05: last 2",
            ]
        );
        let all = Policy {
            keep_last: Count::Unlimited,
            ..Policy::default()
        };
        let plan = plan(&complete(&TABLE), &all, NOW);
        assert_eq!(plan.kept().count(), 31);
        assert_eq!(plan.decisions[30].verdict.to_string(), "keep: last 31");
    }

    /// restic's documentation example on three years of daily backups.
    #[test]
    fn retention_restic_doc_example_daily_weekly_monthly_yearly() {
        let mut times = Vec::new();
        let mut day = NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
        while day.year() < 2027 {
            times.push(format!("{day} 02:00:00"));
            day = day.succ_opt().expect("next day");
        }
        let times: Vec<&str> = times.iter().map(String::as_str).collect();
        assert_eq!(times.len(), 366 + 365 + 365);
        let policy = Policy {
            keep_daily: Count::N(7),
            keep_weekly: Count::N(5),
            keep_monthly: Count::N(12),
            keep_yearly: Count::N(75),
            ..Policy::default()
        };
        let plan = plan(&complete(&times), &policy, "2027-01-01 00:00:00");
        assert_eq!(
            kept(&plan),
            [
                "2026-12-31 02:00: daily 2026-12-31; weekly 2026-W53; monthly 2026-12; yearly 2026; newest complete artifact",
                "2026-12-30 02:00: daily 2026-12-30",
                "2026-12-29 02:00: daily 2026-12-29",
                "2026-12-28 02:00: daily 2026-12-28",
                "2026-12-27 02:00: daily 2026-12-27; weekly 2026-W52",
                "2026-12-26 02:00: daily 2026-12-26",
                "2026-12-25 02:00: daily 2026-12-25",
                "2026-12-20 02:00: weekly 2026-W51",
                "2026-12-13 02:00: weekly 2026-W50",
                "2026-12-06 02:00: weekly 2026-W49",
                "2026-11-30 02:00: monthly 2026-11",
                "2026-10-31 02:00: monthly 2026-10",
                "2026-09-30 02:00: monthly 2026-09",
                "2026-08-31 02:00: monthly 2026-08",
                "2026-07-31 02:00: monthly 2026-07",
                "2026-06-30 02:00: monthly 2026-06",
                "2026-05-31 02:00: monthly 2026-05",
                "2026-04-30 02:00: monthly 2026-04",
                "2026-03-31 02:00: monthly 2026-03",
                "2026-02-28 02:00: monthly 2026-02",
                "2026-01-31 02:00: monthly 2026-01",
                "2025-12-31 02:00: yearly 2025",
                "2024-12-31 02:00: yearly 2024",
                "2024-01-01 02:00: yearly 2024, oldest artifact (yearly has counts left)",
            ]
        );
        assert_eq!(plan.removals().count(), times.len() - 24);
    }

    #[test]
    fn retention_keep_within_is_relative_to_the_newest_artifact_not_now() {
        let times = [
            "2020-01-10 00:00:00",
            "2020-01-09 00:00:00",
            "2020-01-08 00:00:00",
            "2020-01-07 00:00:00", // exactly 3d before the newest: not within
            "2020-01-06 00:00:00",
        ];
        let policy = Policy {
            keep_within: Some(dur("3d")),
            ..Policy::default()
        };
        assert_eq!(
            kept(&plan(&complete(&times), &policy, "2026-08-01 00:00:00")),
            [
                "2020-01-10 00:00: within 3d of the newest; newest complete artifact",
                "2020-01-09 00:00: within 3d of the newest",
                "2020-01-08 00:00: within 3d of the newest",
            ]
        );
        // Months subtract like Go's AddDate: 31 March - 1m = 3 March (not 28 February).
        let times = [
            "2015-03-31 12:00:00",
            "2015-03-03 13:00:00",
            "2015-03-03 12:00:00",
            "2015-03-01 12:00:00",
        ];
        let policy = Policy {
            keep_within: Some(dur("1m")),
            keep_last: Count::N(1),
            ..Policy::default()
        };
        assert_eq!(
            kept(&plan(&complete(&times), &policy, "2026-08-01 00:00:00")),
            [
                "2015-03-31 12:00: last 1; within 1m of the newest; newest complete artifact",
                "2015-03-03 13:00: within 1m of the newest",
            ]
        );
    }

    #[test]
    fn retention_calendar_duration_subtracts_like_go_add_date() {
        let cases = [
            ("2015-03-31 12:00:00", "1m", "2015-03-03 12:00:00"),
            ("2016-02-29 00:00:00", "1y", "2015-03-01 00:00:00"),
            ("2024-01-01 01:00:00", "1d2h", "2023-12-30 23:00:00"),
            ("2024-03-15 00:00:00", "14m", "2023-01-15 00:00:00"),
            ("2024-03-15 00:00:00", "1y2m3d4h", "2023-01-11 20:00:00"),
            ("2024-03-15 00:00:00", "48h", "2024-03-13 00:00:00"),
        ];
        for (from, d, want) in cases {
            assert_eq!(dur(d).before(at(from)), Some(at(want)), "{from} - {d}");
        }
        assert_eq!(dur("4000000000y").before(at("2024-01-01 00:00:00")), None);
        // Out of range means "everything is within".
        let policy = Policy {
            keep_within: Some(dur("4000000000y")),
            ..Policy::default()
        };
        let plan = plan(&complete(&TABLE), &policy, NOW);
        assert_eq!(plan.kept().count(), 31);
    }

    #[test]
    fn retention_combined_rules_list_every_reason() {
        let policy = Policy {
            keep_last: Count::N(2),
            keep_daily: Count::N(2),
            keep_monthly: Count::Unlimited,
            keep_within: Some(dur("2h")),
            ..Policy::default()
        };
        let kept = kept(&plan(&complete(&TABLE[..12]), &policy, NOW));
        assert_eq!(
            kept,
            [
                "2025-01-02 10:30: last 1; daily 2025-01-02; monthly 2025-01; within 2h of the newest; newest complete artifact",
                "2025-01-02 10:05: last 2; within 2h of the newest",
                "2025-01-02 09:59: within 2h of the newest",
                "2025-01-01 23:00: daily 2025-01-01",
                "2024-12-31 23:59: monthly 2024-12",
                "2024-12-23 00:00: monthly 2024-12, oldest artifact (monthly has counts left)",
            ]
        );
    }

    #[test]
    fn retention_floor_newest_complete_survives_a_future_dated_artifact() {
        let artifacts = complete(&[
            "2026-09-01 00:00:00", // a skewed clock
            "2026-07-31 00:00:00",
            "2026-07-30 00:00:00",
        ]);
        let policy = Policy {
            keep_last: Count::N(1),
            ..Policy::default()
        };
        assert_eq!(
            printed(&plan(&artifacts, &policy, "2026-08-01 00:00:00")),
            [
                (
                    "redis_20260901T000000Z".to_string(),
                    "keep: last 1".to_string()
                ),
                (
                    "redis_20260731T000000Z".to_string(),
                    "keep: newest complete artifact".to_string()
                ),
                (
                    "redis_20260730T000000Z".to_string(),
                    "remove: not kept by any rule".to_string()
                ),
            ]
        );
    }

    #[test]
    fn retention_floor_future_dated_artifacts_are_never_removed_by_keep_within() {
        let artifacts = vec![
            artifact("redis", "2026-08-05 00:00:00", true),
            artifact("redis", "2026-08-06 00:00:00", false),
            artifact("redis", "2026-07-31 12:00:00", true),
            artifact("redis", "2026-07-30 13:00:00", true),
            artifact("redis", "2026-07-29 00:00:00", true),
        ];
        let policy = Policy {
            keep_within: Some(dur("1d")),
            ..Policy::default()
        };
        // The reference is 07-31 (the newest not in the future), not 08-05.
        assert_eq!(
            printed(&plan(&artifacts, &policy, "2026-08-01 00:00:00"))
                .into_iter()
                .map(|(_, v)| v)
                .collect::<Vec<_>>(),
            [
                "keep: dated in the future, never removed by a duration rule",
                "keep: incomplete, younger than 24h (may be a backup in progress)",
                "keep: within 1d of the newest; newest complete artifact",
                "keep: within 1d of the newest",
                "remove: not kept by any rule",
            ]
        );
        // Every complete artifact in the future: all kept, the newest is the floor.
        let all_future = complete(&["2026-08-03 00:00:00", "2026-08-02 00:00:00"]);
        assert_eq!(
            kept(&plan(&all_future, &policy, "2026-08-01 00:00:00")),
            [
                "2026-08-03 00:00: dated in the future, never removed by a duration rule; newest complete artifact",
                "2026-08-02 00:00: dated in the future, never removed by a duration rule",
            ]
        );
    }

    #[test]
    fn retention_floor_incomplete_artifacts_count_for_nothing_and_expire_after_the_grace() {
        let artifacts = vec![
            artifact("redis", "2026-08-01 11:00:00", false),
            artifact("redis", "2026-07-31 12:00:00", false), // exactly 24h: not older
            artifact("redis", "2026-07-31 11:59:59", false),
            artifact("redis", "2026-07-30 00:00:00", true),
            artifact("redis", "2026-07-29 00:00:00", true),
            artifact("redis", "2026-01-01 00:00:00", false),
        ];
        let mut policy = Policy {
            keep_last: Count::N(1),
            ..Policy::default()
        };
        let young = "keep: incomplete, younger than 24h (may be a backup in progress)";
        let old = "remove: incomplete and older than 24h";
        let verdicts = |policy: &Policy| -> Vec<String> {
            plan(&artifacts, policy, "2026-08-01 12:00:00")
                .decisions
                .iter()
                .map(|d| d.verdict.to_string())
                .collect()
        };
        assert_eq!(
            verdicts(&policy),
            [
                young,
                young,
                old,
                "keep: last 1; newest complete artifact",
                "remove: not kept by any rule",
                old,
            ]
        );
        policy.keep_incomplete_for = dur("2d");
        assert_eq!(
            verdicts(&policy)[2],
            "keep: incomplete, younger than 2d (may be a backup in progress)"
        );
        assert_eq!(verdicts(&policy)[5], "remove: incomplete and older than 2d");
        // Only incomplete artifacts: nothing to rank, only the grace applies.
        let only = vec![artifact("redis", "2026-08-01 11:00:00", false)];
        let plan = plan(&only, &policy, "2026-08-01 12:00:00");
        assert_eq!(plan.kept().count(), 1);
    }

    #[test]
    fn retention_floor_empty_policy_removes_nothing() {
        let artifacts = complete(&TABLE);
        let now = at(NOW);
        let empty = [
            Policy::default(),
            Policy {
                keep_last: Count::N(0),
                keep_daily: Count::N(0),
                ..Policy::default()
            },
            Policy {
                keep_within: Some(dur("0d")),
                keep_incomplete_for: dur("1h"),
                ..Policy::default()
            },
        ];
        for policy in empty {
            assert!(policy.is_empty(), "{policy:?}");
            assert_eq!(
                plan_retention(&artifacts, &policy, now),
                Err(RetentionError::EmptyPolicy)
            );
        }
        assert_eq!(
            RetentionError::EmptyPolicy.to_string(),
            "the policy keeps everything: give at least one --keep-* flag"
        );
        assert_eq!(Policy::default().to_string(), "keep everything");
    }

    #[test]
    fn retention_groups_by_deployment_and_filters_one() {
        let artifacts = vec![
            artifact("redis", "2026-07-31 00:00:00", true),
            artifact("my_dep", "2026-07-30 00:00:00", true),
            artifact("redis", "2026-07-29 00:00:00", true),
            artifact("my_dep", "2026-07-28 00:00:00", true),
            artifact("my_dep", "2026-07-27 00:00:00", true),
        ];
        let mut policy = Policy {
            keep_last: Count::N(1),
            ..Policy::default()
        };
        let plan_all = plan(&artifacts, &policy, "2026-08-01 00:00:00");
        assert_eq!(
            printed(&plan_all),
            [
                (
                    "redis_20260731T000000Z".to_string(),
                    "keep: last 1; newest complete artifact".to_string()
                ),
                (
                    "my_dep_20260730T000000Z".to_string(),
                    "keep: last 1; newest complete artifact".to_string()
                ),
                (
                    "redis_20260729T000000Z".to_string(),
                    "remove: not kept by any rule".to_string()
                ),
                (
                    "my_dep_20260728T000000Z".to_string(),
                    "remove: not kept by any rule".to_string()
                ),
                (
                    "my_dep_20260727T000000Z".to_string(),
                    "remove: not kept by any rule".to_string()
                ),
            ]
        );
        let indices: Vec<usize> = plan_all.decisions.iter().map(|d| d.index).collect();
        assert_eq!(indices, [0, 1, 2, 3, 4]);

        policy.deployment = Some("my_dep".to_string());
        let filtered = plan(&artifacts, &policy, "2026-08-01 00:00:00");
        let indices: Vec<usize> = filtered.decisions.iter().map(|d| d.index).collect();
        assert_eq!(indices, [1, 3, 4]);
        let removed: Vec<&str> = filtered
            .removals()
            .map(|d| d.artifact.name.as_str())
            .collect();
        assert_eq!(
            removed,
            ["my_dep_20260728T000000Z", "my_dep_20260727T000000Z"]
        );

        policy.deployment = Some("absent".to_string());
        assert!(
            plan(&artifacts, &policy, "2026-08-01 00:00:00")
                .decisions
                .is_empty()
        );
    }

    #[test]
    fn retention_parses_restic_durations_and_names_bad_text() {
        let ok = [
            ("2y5m7d3h", (2, 5, 7, 3), "2y5m7d3h"),
            ("5d7m", (0, 7, 5, 0), "7m5d"),
            ("24h", (0, 0, 0, 24), "24h"),
            ("15m", (0, 15, 0, 0), "15m"),
            ("0d", (0, 0, 0, 0), "0h"),
            ("9999y", (9999, 0, 0, 0), "9999y"),
        ];
        for (text, (years, months, days, hours), shown) in ok {
            let d = dur(text);
            assert_eq!(
                d,
                CalendarDuration {
                    years,
                    months,
                    days,
                    hours
                },
                "{text}"
            );
            assert_eq!(d.to_string(), shown);
        }
        let bad = [
            ("", DurationProblem::Empty),
            ("90s", DurationProblem::BadUnit { n: 90, unit: 's' }),
            ("1.5h", DurationProblem::BadUnit { n: 1, unit: '.' }),
            ("2w", DurationProblem::BadUnit { n: 2, unit: 'w' }),
            ("-1d", DurationProblem::NoNumber { at: "-1d".into() }),
            (" 5d", DurationProblem::NoNumber { at: " 5d".into() }),
            ("d", DurationProblem::NoNumber { at: "d".into() }),
            ("7", DurationProblem::NoUnit(7)),
            ("1d2h1d", DurationProblem::Repeated('d')),
            (
                "99999999999d",
                DurationProblem::TooLarge("99999999999".into()),
            ),
            (
                "\u{7c0}d",
                DurationProblem::NoNumber {
                    at: "\u{7c0}d".into(),
                },
            ),
        ];
        for (text, problem) in bad {
            assert_eq!(
                text.parse::<CalendarDuration>(),
                Err(RetentionError::Duration {
                    text: text.to_string(),
                    problem
                }),
                "{text:?}"
            );
        }
        assert_eq!(
            "90s".parse::<CalendarDuration>().unwrap_err().to_string(),
            "invalid retention duration \"90s\": unit 's' after 90 is not one of y (years), \
             m (months), d (days) or h (hours); minutes and seconds are not supported"
        );
    }

    #[test]
    fn retention_parses_counts() {
        assert_eq!("3".parse(), Ok(Count::N(3)));
        assert_eq!("0".parse(), Ok(Count::N(0)));
        assert_eq!("-1".parse(), Ok(Count::Unlimited));
        assert_eq!("unlimited".parse(), Ok(Count::Unlimited));
        for text in ["", "-2", "x", "3.5", "+3", "99999999999"] {
            assert_eq!(
                text.parse::<Count>(),
                Err(RetentionError::Count {
                    text: text.to_string()
                }),
                "{text:?}"
            );
        }
        assert_eq!(
            "-2".parse::<Count>().unwrap_err().to_string(),
            "invalid keep count \"-2\": expected a number of artifacts, -1 or unlimited"
        );
    }

    #[test]
    fn retention_policy_display() {
        let policy = Policy {
            keep_last: Count::N(3),
            keep_daily: Count::N(7),
            keep_monthly: Count::Unlimited,
            keep_within: Some(dur("7d")),
            ..Policy::default()
        };
        assert_eq!(
            policy.to_string(),
            "keep the last 3, 7 daily, unlimited monthly and all within 7d of the newest"
        );
        let policy = Policy {
            keep_yearly: Count::N(2),
            ..Policy::default()
        };
        assert_eq!(policy.to_string(), "keep 2 yearly");
    }
}
