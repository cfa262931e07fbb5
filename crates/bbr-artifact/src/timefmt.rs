//! The two timestamp layouts of an artifact (`bbr.md` §4.1, §4.2).
//!
//! * [`metadata_time`]: Go layout `2006/01/02 15:04:05 MST` in the jumpbox's local time
//!   zone, with the zone *abbreviation* (`UTC`, `CET`, `CEST`), as written to
//!   `backup_activity` in `metadata`;
//! * [`artifact_timestamp`]: UTC `YYYYMMDDTHHMMSSZ`, the suffix of the artifact directory.

use std::ffi::CStr;
use std::time::{SystemTime, UNIX_EPOCH};

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
    let secs = unix_seconds(t);
    // `time_t` is 64-bit on every platform bbr runs on.
    let tt = secs as libc::time_t;
    // SAFETY: `tm` is a plain C struct for which all-zero is a valid value;
    // `tzset` and `localtime_r` are thread-safe in glibc and only write into `tm`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let result = unsafe {
        tzset();
        libc::localtime_r(&tt, &mut tm)
    };
    if result.is_null() {
        return utc_fallback(t);
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
    let zone = if zone.is_empty() {
        let off = tm.tm_gmtoff;
        let sign = if off < 0 { '-' } else { '+' };
        let off = off.unsigned_abs();
        format!("{sign}{:02}{:02}", off / 3600, (off % 3600) / 60)
    } else {
        zone
    };
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02} {}",
        i64::from(tm.tm_year) + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        zone
    )
}

fn utc_fallback(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y/%m/%d %H:%M:%S UTC")
        .to_string()
}

/// Formats `t` in UTC as `YYYYMMDDTHHMMSSZ` (Go layout `20060102T150405Z`), the
/// timestamp part of the artifact directory name.
pub fn artifact_timestamp(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y%m%dT%H%M%SZ")
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
        let exe = std::env::current_exe().expect("current exe");
        let output = Command::new(exe)
            .args([
                "timefmt::tests::child_prints_times",
                "--exact",
                "--nocapture",
            ])
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

    #[test]
    fn child_prints_times() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        for secs in [WINTER, SUMMER] {
            println!(
                "<TIME>{}</TIME>",
                metadata_time(UNIX_EPOCH + Duration::from_secs(secs))
            );
        }
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
