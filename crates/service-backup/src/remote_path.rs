//! Remote locations (docs/service-backup.md#remote-layout):
//! `[base/][deployment/]YYYY/MM/DD[/relative path]`, in the VM's local date, with slashes
//! normalised (Go `filepath.Join` semantics: doubled and trailing slashes removed, `.` and `..`
//! resolved).

use chrono::{Datelike, NaiveDate};

/// Today's date in the VM's local time zone (the original uses Go's `time.Now()`).
pub fn local_today() -> NaiveDate {
    chrono::Local::now().date_naive()
}

/// `YYYY/MM/DD`.
pub fn date_path(date: NaiveDate) -> String {
    format!("{}/{:02}/{:02}", date.year(), date.month(), date.day())
}

/// The original's `RemotePathFunc(base, deployment)` evaluated for `date`:
/// `[base/][deployment/]YYYY/MM/DD`, normalised.
pub fn remote_path(base: &str, deployment: &str, date: NaiveDate) -> String {
    join(&[base, deployment, &date_path(date)])
}

/// Joins path parts with `/` and cleans the result like Go's `path.Clean` (a leading `/` is
/// kept; an all-empty input gives `""`).
pub fn join(parts: &[&str]) -> String {
    let joined = parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    if joined.is_empty() {
        return String::new();
    }
    clean(&joined)
}

/// Go's `path.Clean`.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|p| *p != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            p => out.push(p),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_owned(),
        (false, false) => body,
    }
}

/// An object key: [`join`] without a leading `/` (object stores have no root).
pub fn object_key(parts: &[&str]) -> String {
    join(parts).trim_start_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 1, 2).expect("date")
    }

    #[test]
    fn remote_path_table() {
        let cases: &[(&str, &str, &str)] = &[
            ("", "", "2024/01/02"),
            ("base/path", "", "base/path/2024/01/02"),
            ("", "deployment_name", "deployment_name/2024/01/02"),
            (
                "base/path",
                "deployment_name",
                "base/path/deployment_name/2024/01/02",
            ),
            ("base//path/", "", "base/path/2024/01/02"),
            ("/abs/dir/", "dep", "/abs/dir/dep/2024/01/02"),
            ("bucket/", "", "bucket/2024/01/02"),
        ];
        for (base, dep, want) in cases {
            assert_eq!(remote_path(base, dep, day()), *want, "{base:?} {dep:?}");
        }
    }

    #[test]
    fn object_keys_are_normalised() {
        let date = date_path(day());
        assert_eq!(
            object_key(&["foo/bar/", "", &date, "d1/b.txt"]),
            "foo/bar/2024/01/02/d1/b.txt"
        );
        assert_eq!(
            object_key(&["/foo//bar", "dep", &date, "/a.txt"]),
            "foo/bar/dep/2024/01/02/a.txt"
        );
        assert_eq!(object_key(&["", "", &date, "a.txt"]), "2024/01/02/a.txt");
        assert_eq!(
            object_key(&["p/./q/../r", "", &date, "x"]),
            "p/r/2024/01/02/x"
        );
    }

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("a//b", "a/b"),
            ("a/b/", "a/b"),
            ("/../a", "/a"),
            ("../a", "../a"),
            ("a/../..", ".."),
            ("./", "."),
        ] {
            assert_eq!(clean(input), want, "{input:?}");
        }
    }

    #[test]
    fn date_is_zero_padded() {
        let d = NaiveDate::from_ymd_opt(2025, 11, 9).expect("date");
        assert_eq!(date_path(d), "2025/11/09");
    }
}
