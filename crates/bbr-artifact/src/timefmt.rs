//! The two timestamp layouts of an artifact (docs/artifact-format.md#layout,
//! docs/artifact-format.md#metadata).
//!
//! * [`metadata_time`]: Go layout `2006/01/02 15:04:05 MST` in the jumpbox's local time
//!   zone, with the zone *abbreviation* (`UTC`, `CET`, `CEST`), as written to
//!   `backup_activity` in `metadata`;
//! * [`artifact_timestamp`]: UTC `YYYYMMDDTHHMMSSZ`, the suffix of the artifact directory.
//!
//! And [`go_time_string`], Go's default `time.Time` formatting, which Go bbr prints in its
//! `Backup created of <name> on <time>` line (docs/log-lines.md#backup).

// Unsafe code is denied workspace-wide; this module calls libc directly. Each block
// carries its own SAFETY comment.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

unsafe extern "C" {
    /// POSIX `tzset(3)`; not exported by the `libc` crate on Linux.
    fn tzset();
}

/// Whole seconds since the Unix epoch, rounded towards negative infinity.
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() > 0 {
                secs.saturating_neg().saturating_sub(1)
            } else {
                secs.saturating_neg()
            }
        }
    }
}

/// Formats `t` like Go's `time.Now().Format("2006/01/02 15:04:05 MST")`: local time of
/// the process time zone (the `TZ` environment variable is re-read on every call) with
/// the zone abbreviation, or a numeric `-0700` offset when the zone has none.
pub fn metadata_time(t: SystemTime) -> String {
    let Some(local) = LocalTime::of(t) else {
        return utc_fallback(t);
    };
    let tm = &local.tm;
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02} {}",
        i64::from(tm.tm_year) + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        local.zone_name()
    )
}

/// When this process started, as Go's runtime counts its monotonic clock from it. Call
/// [`mark_process_start`] first thing in `main`; otherwise it is the first use.
static PROCESS_START: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Fixes the process start for [`go_time_string`]'s monotonic reading.
pub fn mark_process_start() {
    LazyLock::force(&PROCESS_START);
}

/// Formats the current time like Go's `fmt.Sprint(time.Now())`:
/// `2006-01-02 15:04:05.999999999 -0700 MST m=+0.000000001` in the local time zone, the
/// fraction without trailing zeros, then the monotonic clock since the process started.
pub fn go_time_string_now() -> String {
    go_time_string(SystemTime::now(), PROCESS_START.elapsed())
}

/// [`go_time_string_now`] for a given wall time and monotonic reading.
pub fn go_time_string(t: SystemTime, monotonic: Duration) -> String {
    let nanos = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut fraction = String::new();
    if nanos > 0 {
        fraction = format!(".{nanos:09}").trim_end_matches('0').to_string();
    }
    let (date, offset, zone) = match LocalTime::of(t) {
        Some(local) => {
            let tm = &local.tm;
            (
                format!(
                    "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                    i64::from(tm.tm_year) + 1900,
                    tm.tm_mon + 1,
                    tm.tm_mday,
                    tm.tm_hour,
                    tm.tm_min,
                    tm.tm_sec
                ),
                local.numeric_offset(),
                local.zone_name(),
            )
        }
        None => (
            chrono::DateTime::<chrono::Utc>::from(t)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            "+0000".to_string(),
            "UTC".to_string(),
        ),
    };
    format!(
        "{date}{fraction} {offset} {zone} m=+{}.{:09}",
        monotonic.as_secs(),
        monotonic.subsec_nanos()
    )
}

/// A broken-down local time with its zone.
struct LocalTime {
    tm: libc::tm,
    zone: String,
}

impl LocalTime {
    fn of(t: SystemTime) -> Option<LocalTime> {
        let secs = unix_seconds(t);
        // `time_t` is 64-bit on every platform bbr runs on.
        let tt = secs as libc::time_t;
        // SAFETY: `tm` is a plain C struct for which all-zero is a valid value.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: `tzset` and `localtime_r` are thread-safe in glibc and only write into
        // `tm`, which lives for the whole call.
        let result = unsafe {
            tzset();
            libc::localtime_r(&tt, &mut tm)
        };
        if result.is_null() {
            return None;
        }
        let zone = if tm.tm_zone.is_null() {
            String::new()
        } else {
            // SAFETY: glibc points `tm_zone` at a NUL-terminated abbreviation that it
            // never frees.
            unsafe { CStr::from_ptr(tm.tm_zone) }
                .to_string_lossy()
                .into_owned()
        };
        Some(LocalTime { tm, zone })
    }

    /// `-0700`.
    fn numeric_offset(&self) -> String {
        let off = self.tm.tm_gmtoff;
        let sign = if off < 0 { '-' } else { '+' };
        let off = off.unsigned_abs();
        format!("{sign}{:02}{:02}", off / 3600, (off % 3600) / 60)
    }

    /// The abbreviation (`UTC`, `CET`), or the numeric offset when the zone has none.
    fn zone_name(&self) -> String {
        if self.zone.is_empty() {
            self.numeric_offset()
        } else {
            self.zone.clone()
        }
    }
}

fn utc_fallback(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y/%m/%d %H:%M:%S UTC")
        .to_string()
}

/// `YYYYMMDDTHHMMSSZ` (Go layout `20060102T150405Z`), the timestamp part of the artifact
/// directory name, for formatting and parsing alike.
pub const ARTIFACT_TIMESTAMP_LAYOUT: &str = "%Y%m%dT%H%M%SZ";

/// Formats `t` in UTC as [`ARTIFACT_TIMESTAMP_LAYOUT`].
pub fn artifact_timestamp(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format(ARTIFACT_TIMESTAMP_LAYOUT)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::Duration;

    /// 2017-01-23 14:10:02 UTC (the fixtures' backup time).
    const WINTER: u64 = 1_485_180_602;
    /// 2017-07-01 12:00:00 UTC.
    const SUMMER: u64 = 1_498_910_400;

    const CHILD_ENV: &str = "BBR_ARTIFACT_TIMEFMT_CHILD";

    #[test]
    fn artifact_timestamp_is_utc_compact() {
        let t = UNIX_EPOCH + Duration::from_secs(WINTER);
        assert_eq!(artifact_timestamp(t), "20170123T141002Z");
        assert_eq!(artifact_timestamp(UNIX_EPOCH), "19700101T000000Z");
        let t = UNIX_EPOCH + Duration::from_millis(WINTER * 1000 + 999);
        assert_eq!(artifact_timestamp(t), "20170123T141002Z");
    }

    #[test]
    fn unix_seconds_floors() {
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_millis(1500)), 1);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_millis(1500)), -2);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(2)), -2);
    }

    /// Runs in a child process (this very test binary) with `TZ` set, so that no
    /// environment variable of the test process is ever mutated.
    fn in_child(tz: &str) -> Vec<String> {
        in_child_running(tz, "timefmt::tests::child_prints_times")
    }

    fn in_child_running(tz: &str, test: &str) -> Vec<String> {
        let exe = std::env::current_exe().expect("current exe");
        let output = Command::new(exe)
            .args([test, "--exact", "--ignored", "--nocapture"])
            .arg("--test-threads=1")
            .env(CHILD_ENV, "1")
            .env("TZ", tz)
            .output()
            .expect("spawn child test");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "child failed: {stdout}");
        // libtest may print its own text on the same lines: look for the markers.
        stdout
            .split("<TIME>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</TIME>").map(|(t, _)| t.to_string()))
            .collect()
    }

    /// Not a test of its own: the body of the child process of [`in_child_running`], run with
    /// `--ignored` and the zone under test in `TZ`.
    #[test]
    #[ignore = "run in a child process by the tests that set TZ"]
    fn child_prints_times() {
        assert!(
            std::env::var_os(CHILD_ENV).is_some(),
            "run only as the child of in_child_running"
        );
        for secs in [WINTER, SUMMER] {
            println!(
                "<TIME>{}</TIME>",
                metadata_time(UNIX_EPOCH + Duration::from_secs(secs))
            );
        }
    }

    /// Not a test of its own: the body of the child process of [`in_child_running`], run with
    /// `--ignored` and the zone under test in `TZ`.
    #[test]
    #[ignore = "run in a child process by the tests that set TZ"]
    fn child_prints_go_times() {
        assert!(
            std::env::var_os(CHILD_ENV).is_some(),
            "run only as the child of in_child_running"
        );
        let winter = UNIX_EPOCH + Duration::from_nanos(WINTER * 1_000_000_000 + 520_000_000);
        println!(
            "<TIME>{}</TIME>",
            go_time_string(winter, Duration::from_nanos(12_093_456_789))
        );
        let summer = UNIX_EPOCH + Duration::from_secs(SUMMER);
        println!(
            "<TIME>{}</TIME>",
            go_time_string(summer, Duration::from_nanos(1))
        );
    }

    /// Go's `time.Time.String()`: fraction without trailing zeros (none when zero), numeric
    /// offset and abbreviation, the monotonic reading with nine decimals.
    #[test]
    fn go_time_string_matches_go() {
        assert_eq!(
            in_child_running("UTC0", "timefmt::tests::child_prints_go_times"),
            [
                "2017-01-23 14:10:02.52 +0000 UTC m=+12.093456789",
                "2017-07-01 12:00:00 +0000 UTC m=+0.000000001"
            ]
        );
        assert_eq!(
            in_child_running(
                "CET-1CEST,M3.5.0,M10.5.0/3",
                "timefmt::tests::child_prints_go_times"
            ),
            [
                "2017-01-23 15:10:02.52 +0100 CET m=+12.093456789",
                "2017-07-01 14:00:00 +0200 CEST m=+0.000000001"
            ]
        );
    }

    #[test]
    fn metadata_time_in_utc() {
        assert_eq!(
            in_child("UTC0"),
            ["2017/01/23 14:10:02 UTC", "2017/07/01 12:00:00 UTC"]
        );
    }

    #[test]
    fn metadata_time_uses_zone_abbreviation_and_dst() {
        assert_eq!(
            in_child("CET-1CEST,M3.5.0,M10.5.0/3"),
            ["2017/01/23 15:10:02 CET", "2017/07/01 14:00:00 CEST"]
        );
        assert_eq!(
            in_child("EST5EDT,M3.2.0,M11.1.0"),
            ["2017/01/23 09:10:02 EST", "2017/07/01 08:00:00 EDT"]
        );
    }

    #[test]
    fn metadata_time_numeric_zone_abbreviation() {
        // POSIX TZ with an angle-bracketed numeric name, as tzdata uses for many zones.
        assert_eq!(
            in_child("<+03>-3"),
            ["2017/01/23 17:10:02 +03", "2017/07/01 15:00:00 +03"]
        );
    }

    #[test]
    fn metadata_time_in_this_process_has_the_layout() {
        let s = metadata_time(UNIX_EPOCH + Duration::from_secs(WINTER));
        let (datetime, zone) = s.rsplit_once(' ').expect("zone");
        assert_eq!(datetime.len(), "2017/01/23 14:10:02".len(), "{s}");
        assert!(!zone.is_empty());
    }
}
