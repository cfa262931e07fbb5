//! Path-traversal checks for tar entries, run on every entry of every tar before a
//! restore uploads anything (the remote side extracts as root with `tar -x`).
//!
//! [`check_entry_safe`] looks at one entry: no absolute name, no `..` component, and
//! link targets that stay inside the extraction root when resolved lexically (symlinks
//! relative to the entry's directory, hardlinks relative to the root, as tar stores
//! them). [`check_entries_safe`] also looks across entries: nothing may be extracted
//! *through* a symlink of the archive, and no link target may leave a symlink with
//! `..` — the two ways a chain of individually harmless links can escape.
//!
//! [`check_entry_kind`] refuses character devices, block devices and FIFOs: a job's
//! artifact has no business holding one, and `tar -x` as root would create them inside
//! the restore directory. It is part of [`check_entry_safe`] (restore) and is run alone
//! on every drained tar (backup). Set-uid/set-gid bits are not refused here: a restore
//! strips them (see [`crate::tarstream::setid_patches`]).

use std::collections::HashSet;
use std::ops::ControlFlow;

use crate::entry_name::EntryName;
use crate::error::ArtifactError;
use crate::tarstream::{EntryKind, TarEntryInfo};

fn unsafe_entry(entry: &TarEntryInfo, reason: String) -> ArtifactError {
    ArtifactError::UnsafeEntry {
        file: None,
        entry: entry.name.to_string(),
        reason,
    }
}

/// Refuses device nodes and FIFOs, naming the kind and device numbers.
pub fn check_entry_kind(entry: &TarEntryInfo) -> Result<(), ArtifactError> {
    if entry.kind.is_special() {
        return Err(unsafe_entry(
            entry,
            format!(
                "{}: device nodes and FIFOs are refused in artifacts",
                entry.kind.describe()
            ),
        ));
    }
    Ok(())
}

/// The components of a relative path (raw bytes, as tar stores it), without empty and
/// `.` components.
fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

/// Refuses an entry that would be written outside the extraction root: an absolute
/// name, a name with a `..` component, or a symlink/hardlink whose target is absolute
/// or climbs above the root; and, through [`check_entry_kind`], device nodes and FIFOs.
pub fn check_entry_safe(entry: &TarEntryInfo) -> Result<(), ArtifactError> {
    check_entry_kind(entry)?;
    if entry.name.is_empty() {
        return Err(unsafe_entry(entry, "empty name".into()));
    }
    let name = entry.name.as_bytes();
    if name.starts_with(b"/") {
        return Err(unsafe_entry(entry, "absolute path".into()));
    }
    if name.split(|b| *b == b'/').any(|c| c == b"..") {
        return Err(unsafe_entry(entry, "path contains a '..' component".into()));
    }
    let is_symlink = match entry.kind {
        EntryKind::Symlink => true,
        EntryKind::Hardlink => false,
        _ => return Ok(()),
    };
    let what = if is_symlink { "symlink" } else { "hardlink" };
    let target_name = entry.link_name.clone().unwrap_or_default();
    let target = &target_name;
    if target.as_bytes().starts_with(b"/") {
        return Err(unsafe_entry(
            entry,
            format!("{what} target {target} is absolute"),
        ));
    }
    let mut depth: usize = if is_symlink {
        // A symlink's target is relative to the directory holding it.
        components(name).count().saturating_sub(1)
    } else {
        // A hardlink's target is an archive member name, relative to the root.
        0
    };
    for c in components(target.as_bytes()) {
        if c == b".." {
            if depth == 0 {
                return Err(unsafe_entry(
                    entry,
                    format!("{what} target {target} escapes the extraction root"),
                ));
            }
            depth -= 1;
        } else {
            depth += 1;
        }
    }
    Ok(())
}

/// Runs [`check_entry_safe`] on every entry and also refuses entries extracted through
/// a symlink of the same archive and link targets that leave such a symlink with `..`.
/// Returns the first refusal; [`unsafe_entries`] lists them all.
pub fn check_entries_safe(entries: &[TarEntryInfo]) -> Result<(), ArtifactError> {
    let mut first = None;
    walk_unsafe(entries, |err| {
        first = Some(err);
        ControlFlow::Break(())
    });
    first.map_or(Ok(()), Err)
}

/// Every refusal [`check_entries_safe`] would make, one per unsafe entry, in stream order
/// (the deep validation of `bbr artifact validate` reports them all).
pub fn unsafe_entries(entries: &[TarEntryInfo]) -> Vec<ArtifactError> {
    let mut all = Vec::new();
    walk_unsafe(entries, |err| {
        all.push(err);
        ControlFlow::Continue(())
    });
    all
}

/// Calls `found` with the refusal of each unsafe entry, in stream order, until it breaks.
fn walk_unsafe(entries: &[TarEntryInfo], mut found: impl FnMut(ArtifactError) -> ControlFlow<()>) {
    let symlinks: HashSet<Vec<u8>> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::Symlink)
        .map(|e| {
            components(e.name.as_bytes())
                .collect::<Vec<_>>()
                .join(&b'/')
        })
        .collect();
    let symlink_prefix = |parts: &[&[u8]]| -> Option<EntryName> {
        (1..=parts.len())
            .map(|n| parts[..n].join(&b'/'))
            .find(|p| symlinks.contains(p))
            .map(EntryName::from)
    };
    let check = |entry: &TarEntryInfo| -> Result<(), ArtifactError> {
        check_entry_safe(entry)?;
        if symlinks.is_empty() {
            return Ok(());
        }
        let parts: Vec<&[u8]> = components(entry.name.as_bytes()).collect();
        if let Some(parent) = parts.split_last().map(|(_, parent)| parent)
            && let Some(link) = symlink_prefix(parent)
        {
            return Err(unsafe_entry(
                entry,
                format!("path goes through the symlink ./{link} of the archive"),
            ));
        }
        let mut stack: Vec<&[u8]> = match entry.kind {
            EntryKind::Symlink => parts[..parts.len().saturating_sub(1)].to_vec(),
            EntryKind::Hardlink => Vec::new(),
            _ => return Ok(()),
        };
        let target = entry
            .link_name
            .as_ref()
            .map(EntryName::as_bytes)
            .unwrap_or_default();
        for c in components(target) {
            if c == b".." {
                if let Some(link) = symlink_prefix(&stack) {
                    return Err(unsafe_entry(
                        entry,
                        format!("link target leaves the symlink ./{link} of the archive with '..'"),
                    ));
                }
                stack.pop();
            } else {
                stack.push(c);
            }
        }
        Ok(())
    };
    for entry in entries {
        if let Err(err) = check(entry)
            && found(err).is_break()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> TarEntryInfo {
        TarEntryInfo {
            name: name.into(),
            kind: EntryKind::File,
            size: 0,
            link_name: None,
            mode: 0o644,
            header_offset: 0,
        }
    }

    fn link(name: &str, kind: EntryKind, target: &str) -> TarEntryInfo {
        TarEntryInfo {
            name: name.into(),
            kind,
            size: 0,
            link_name: Some(target.into()),
            mode: 0o777,
            header_offset: 0,
        }
    }

    fn reason(err: ArtifactError) -> String {
        match err {
            ArtifactError::UnsafeEntry { reason, .. } => reason,
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn ordinary_entries_are_safe() {
        for name in [
            "./",
            "./a",
            "./a/b/c",
            "a",
            "a/./b",
            "./.hidden",
            "./a..b",
            "./...",
            "./a/",
        ] {
            check_entry_safe(&file(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        for (name, target) in [
            ("./a/l", "b"),
            ("./a/l", "../b"),
            ("./a/b/l", "../../c"),
            ("./l", "."),
            ("./l", "./x/../y"),
            ("./a/l", ""),
        ] {
            check_entry_safe(&link(name, EntryKind::Symlink, target))
                .unwrap_or_else(|e| panic!("{name} -> {target}: {e}"));
        }
        check_entry_safe(&link("./a/h", EntryKind::Hardlink, "./a/orig")).expect("hardlink");
        check_entry_safe(&link("./a/h", EntryKind::Hardlink, "./a/../orig")).expect("hardlink");
    }

    #[test]
    fn absolute_and_dotdot_names_are_refused() {
        let err = check_entry_safe(&file("/etc/passwd")).expect_err("absolute");
        assert_eq!(
            err.to_string(),
            "unsafe tar entry /etc/passwd: absolute path"
        );
        for name in ["../evil", "./../evil", "./a/../../evil", "./a/..", ".."] {
            let err = check_entry_safe(&file(name)).expect_err(name);
            assert_eq!(err.entry(), Some(name));
            assert!(reason(err).contains("'..'"), "{name}");
        }
        assert!(check_entry_safe(&file("")).is_err());
    }

    #[test]
    fn escaping_link_targets_are_refused() {
        for (name, kind, target, why) in [
            ("./l", EntryKind::Symlink, "..", "escapes"),
            ("./a/l", EntryKind::Symlink, "../..", "escapes"),
            ("./a/l", EntryKind::Symlink, "../../etc", "escapes"),
            ("./a/l", EntryKind::Symlink, "b/../../../x", "escapes"),
            ("./l", EntryKind::Symlink, "/etc/shadow", "absolute"),
            ("./h", EntryKind::Hardlink, "/etc/shadow", "absolute"),
            // A hardlink target is relative to the root, not to the entry's directory.
            ("./a/b/h", EntryKind::Hardlink, "../x", "escapes"),
        ] {
            let err = check_entry_safe(&link(name, kind, target)).expect_err(target);
            assert_eq!(err.entry(), Some(name));
            let msg = reason(err);
            assert!(msg.contains(why) && msg.contains(target), "{msg}");
        }
    }

    #[test]
    fn entries_through_symlinks_are_refused() {
        let entries = vec![
            file("./"),
            link("./dir", EntryKind::Symlink, "sub"),
            file("./dir/x"),
        ];
        let err = check_entries_safe(&entries).expect_err("through symlink");
        assert_eq!(err.entry(), Some("./dir/x"));
        assert!(err.to_string().contains("symlink ./dir"), "{err}");

        // The classic chain: each link is lexically inside the root, together they escape.
        let entries = vec![
            TarEntryInfo {
                name: "./a/".into(),
                kind: EntryKind::Dir,
                size: 0,
                link_name: None,
                mode: 0o755,
                header_offset: 0,
            },
            link("./a/b", EntryKind::Symlink, ".."),
            link("./c", EntryKind::Symlink, "a/b/.."),
        ];
        for e in &entries {
            check_entry_safe(e).expect("individually safe");
        }
        let err = check_entries_safe(&entries).expect_err("chain");
        assert_eq!(err.entry(), Some("./c"));
        assert!(
            err.to_string().contains("leaves the symlink ./a/b"),
            "{err}"
        );

        // Links into symlinked directories without '..' are fine.
        let entries = vec![
            link("./s", EntryKind::Symlink, "real"),
            link("./t", EntryKind::Symlink, "s/file"),
            file("./real/file"),
        ];
        check_entries_safe(&entries).expect("safe");
    }

    #[test]
    fn unsafe_entries_lists_every_refusal_and_check_entries_safe_the_first() {
        let mut fifo = file("./pipe");
        fifo.kind = EntryKind::Fifo;
        let entries = vec![
            file("./"),
            file("../a"),
            file("./fine"),
            link("./l", EntryKind::Symlink, "/etc"),
            file("./l/x"),
            fifo,
        ];
        let all = unsafe_entries(&entries);
        let names: Vec<Option<&str>> = all.iter().map(ArtifactError::entry).collect();
        assert_eq!(
            names,
            [Some("../a"), Some("./l"), Some("./l/x"), Some("./pipe")]
        );
        let first = check_entries_safe(&entries).expect_err("unsafe");
        assert_eq!(first.to_string(), all[0].to_string());
        assert!(unsafe_entries(&[file("./"), file("./a")]).is_empty());
    }

    #[test]
    fn devices_and_fifos_are_refused() {
        for (kind, what) in [
            (
                EntryKind::CharDevice { major: 1, minor: 1 },
                "character device 1,1",
            ),
            (
                EntryKind::BlockDevice { major: 8, minor: 0 },
                "block device 8,0",
            ),
            (EntryKind::Fifo, "FIFO"),
        ] {
            let mut e = file("./mem");
            e.kind = kind;
            let err = check_entry_safe(&e).expect_err(what);
            assert_eq!(err.entry(), Some("./mem"));
            assert!(reason(err).starts_with(what), "{what}");
            assert!(check_entries_safe(&[file("./a"), e.clone()]).is_err());
            assert!(check_entry_kind(&e).is_err());
        }
        let mut setuid = file("./bin");
        setuid.mode = 0o4755;
        check_entry_safe(&setuid).expect("set-uid files are not refused here");
    }
}
