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

use std::collections::{HashMap, HashSet};
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

/// The rules of [`check_entries_safe`] applied entry by entry, in stream order, for a tar
/// that is checked while it streams to `tar -x` ([`crate::gate`]): each entry is judged
/// against the entries before it only, before anything after it is known.
///
/// The batch rule is order-independent: an entry is refused when its path goes through a
/// symlink of the archive, or when its link target leaves such a symlink with `..`,
/// wherever that symlink stands. Here, for an entry `E` and a symlink `S` of the archive:
///
/// * `S` before (or equal to) `E`: `E` is refused with the batch rule's words;
/// * `S` after `E`: `S` is refused instead, since `E` was already let through: a symlink
///   is refused when the path of an earlier entry went through it (`the path of the
///   earlier entry ./S/x goes through this symlink`) or when the target of an earlier link
///   left it with `..` (`the target of the earlier link ./c leaves this symlink with
///   '..'`).
///
/// So a whole tar is refused exactly when [`check_entries_safe`] refuses it, only the
/// entry named may be the later one of the offending pair. Refusing the later symlink is
/// enough: while `S` is not yet a symlink, `tar -x` wrote `E` into a real directory
/// inside the root (or resolved its link target through one), and no entry after the
/// refusal reaches `tar`.
///
/// Memory is linear in the bytes of the names and link targets seen (each path prefix is
/// interned once); time is linear in those bytes too.
#[derive(Debug, Default)]
pub struct StreamSafety {
    /// Interned path prefixes: the parent's id (8 bytes, little-endian) followed by the
    /// component, to the prefix's id (the root, the empty path, is 0).
    nodes: HashMap<Vec<u8>, u64>,
    /// Scratch key for lookups.
    key: Vec<u8>,
    /// The symlinks seen so far, by prefix id, with their name (`a/b`, normalised).
    symlinks: HashMap<u64, EntryName>,
    /// Directories earlier entries were extracted into, with the first such entry
    /// (an index into `names`).
    parents: HashMap<u64, usize>,
    /// Prefixes that earlier link targets left with `..`, with the first such link.
    left: HashMap<u64, usize>,
    /// Names of the earlier entries referred to by `parents` and `left`.
    names: Vec<EntryName>,
}

const ROOT: u64 = 0;

impl StreamSafety {
    /// A checker that has seen no entry yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn node(&mut self, parent: u64, component: &[u8]) -> u64 {
        self.key.clear();
        self.key.extend_from_slice(&parent.to_le_bytes());
        self.key.extend_from_slice(component);
        if let Some(&id) = self.nodes.get(self.key.as_slice()) {
            return id;
        }
        let id = self.nodes.len() as u64 + 1;
        self.nodes.insert(self.key.clone(), id);
        id
    }

    /// Index of `name` in `names`, pushed the first time it is needed for this entry.
    fn name_index(
        names: &mut Vec<EntryName>,
        pushed: &mut Option<usize>,
        name: &EntryName,
    ) -> usize {
        *pushed.get_or_insert_with(|| {
            names.push(name.clone());
            names.len() - 1
        })
    }

    /// Checks the next entry of the stream ([`check_entry_safe`] and the cross-entry
    /// rules against the entries before it) and records it for the entries after it.
    pub fn check(&mut self, entry: &TarEntryInfo) -> Result<(), ArtifactError> {
        check_entry_safe(entry)?;
        let parts: Vec<&[u8]> = components(entry.name.as_bytes()).collect();
        let mut ids = Vec::with_capacity(parts.len());
        let mut cur = ROOT;
        for c in &parts {
            cur = self.node(cur, c);
            ids.push(cur);
        }
        let own = ids.last().copied();
        let ancestors = &ids[..ids.len().saturating_sub(1)];
        if let Some(link) = ancestors.iter().find_map(|id| self.symlinks.get(id)) {
            return Err(unsafe_entry(
                entry,
                format!("path goes through the symlink ./{link} of the archive"),
            ));
        }
        let is_link = matches!(entry.kind, EntryKind::Symlink | EntryKind::Hardlink);
        if entry.kind == EntryKind::Symlink
            && let Some(own) = own
        {
            if let Some(&earlier) = self.parents.get(&own) {
                return Err(unsafe_entry(
                    entry,
                    format!(
                        "the path of the earlier entry {} goes through this symlink",
                        self.names[earlier]
                    ),
                ));
            }
            if let Some(&earlier) = self.left.get(&own) {
                return Err(unsafe_entry(
                    entry,
                    format!(
                        "the target of the earlier link {} leaves this symlink with '..'",
                        self.names[earlier]
                    ),
                ));
            }
            // Before the walk of its own target, as the batch rule counts it too.
            self.symlinks
                .entry(own)
                .or_insert_with(|| EntryName::from(parts.join(&b'/')));
        }
        let mut pushed = None;
        if is_link {
            // The walk of the batch rule: (prefix id, first symlink among its prefixes).
            let mut stack: Vec<(u64, Option<u64>)> = Vec::new();
            if entry.kind == EntryKind::Symlink {
                for &id in ancestors {
                    let first = stack.last().and_then(|t| t.1);
                    stack.push((id, first.or(self.symlinks.contains_key(&id).then_some(id))));
                }
            }
            // Prefixes of `stack` below this length are already in `left`.
            let mut marked = 0;
            let target = entry
                .link_name
                .as_ref()
                .map(EntryName::as_bytes)
                .unwrap_or_default();
            for c in components(target) {
                if c == b".." {
                    if let Some(link) = stack.last().and_then(|t| t.1) {
                        let link = &self.symlinks[&link];
                        return Err(unsafe_entry(
                            entry,
                            format!(
                                "link target leaves the symlink ./{link} of the archive with '..'"
                            ),
                        ));
                    }
                    for &(id, _) in &stack[marked.min(stack.len())..] {
                        if !self.left.contains_key(&id) {
                            let i = Self::name_index(&mut self.names, &mut pushed, &entry.name);
                            self.left.insert(id, i);
                        }
                    }
                    stack.pop();
                    marked = stack.len();
                } else {
                    let (parent, first) = stack.last().copied().unwrap_or((ROOT, None));
                    let id = self.node(parent, c);
                    stack.push((id, first.or(self.symlinks.contains_key(&id).then_some(id))));
                }
            }
        }
        for &id in ancestors {
            if !self.parents.contains_key(&id) {
                let i = Self::name_index(&mut self.names, &mut pushed, &entry.name);
                self.parents.insert(id, i);
            }
        }
        Ok(())
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
