//! Shared helpers of the hostile-tar tests: a byte-exact tar writer that lets every
//! header field lie (the `tar` crate normalises names and refuses odd types), and GNU
//! tar run as the oracle of what the VM's `tar -x` makes of a stream.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use bbr_artifact::tarstream::{EntryKind, TarEntryInfo};

/// Magic and version fields of a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magic {
    /// GNU: `ustar  \0` (no prefix field).
    Gnu,
    /// POSIX ustar: `ustar\0` `00`.
    Ustar,
    /// `ustar\0` with an odd version field (GNU tar still joins the prefix).
    UstarOddVersion,
}

/// One header block; every field as given.
#[derive(Debug, Clone)]
pub struct Header {
    pub name: Vec<u8>,
    pub prefix: Vec<u8>,
    pub typeflag: u8,
    pub size: u64,
    pub link: Vec<u8>,
    pub mode: u32,
    pub magic: Magic,
    pub dev: (u32, u32),
}

impl Header {
    pub fn new(name: &str, typeflag: u8) -> Header {
        Header {
            name: name.as_bytes().to_vec(),
            prefix: Vec::new(),
            typeflag,
            size: 0,
            link: Vec::new(),
            mode: if typeflag == b'5' { 0o755 } else { 0o644 },
            magic: Magic::Gnu,
            dev: (0, 0),
        }
    }

    pub fn block(&self) -> [u8; 512] {
        let mut h = [0u8; 512];
        let n = self.name.len().min(100);
        h[..n].copy_from_slice(&self.name[..n]);
        h[100..108].copy_from_slice(format!("{:07o}\0", self.mode).as_bytes());
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", self.size).as_bytes());
        h[136..148].copy_from_slice(b"14542132020\0");
        h[156] = self.typeflag;
        let l = self.link.len().min(100);
        h[157..157 + l].copy_from_slice(&self.link[..l]);
        let magic: &[u8; 8] = match self.magic {
            Magic::Gnu => b"ustar  \0",
            Magic::Ustar => b"ustar\x0000",
            Magic::UstarOddVersion => b"ustar\0  ",
        };
        h[257..265].copy_from_slice(magic);
        h[329..337].copy_from_slice(format!("{:07o}\0", self.dev.0).as_bytes());
        h[337..345].copy_from_slice(format!("{:07o}\0", self.dev.1).as_bytes());
        let p = self.prefix.len().min(155);
        h[345..345 + p].copy_from_slice(&self.prefix[..p]);
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }
}

/// PAX records `len key=value\n`.
pub fn pax_payload(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut payload = Vec::new();
    for (k, v) in records {
        let mut body = format!(" {k}=").into_bytes();
        body.extend_from_slice(v);
        body.push(b'\n');
        let mut len = body.len() + 1;
        while format!("{len}").len() + body.len() != len {
            len += 1;
        }
        payload.extend_from_slice(format!("{len}").as_bytes());
        payload.extend_from_slice(&body);
    }
    payload
}

/// A tar stream under construction.
#[derive(Debug, Default, Clone)]
pub struct Tar {
    pub data: Vec<u8>,
}

impl Tar {
    pub fn new() -> Tar {
        Tar::default()
    }

    fn pad(&mut self) {
        let rem = self.data.len() % 512;
        if rem != 0 {
            self.data.resize(self.data.len() + 512 - rem, 0);
        }
    }

    /// A header and its content (padded).
    pub fn header(mut self, h: &Header, content: &[u8]) -> Tar {
        self.data.extend_from_slice(&h.block());
        self.data.extend_from_slice(content);
        self.pad();
        self
    }

    /// A meta record (`L`, `K`, `x`, `g`) with `payload`.
    pub fn meta(self, typeflag: u8, payload: &[u8]) -> Tar {
        let mut h = Header::new("././@LongLink", typeflag);
        h.size = payload.len() as u64;
        if matches!(typeflag, b'x' | b'g') {
            h.name = b"./PaxHeaders/meta".to_vec();
            h.magic = Magic::Ustar;
        }
        self.header(&h, payload)
    }

    pub fn long_name(self, name: &str) -> Tar {
        let mut v = name.as_bytes().to_vec();
        v.push(0);
        self.meta(b'L', &v)
    }

    pub fn long_link(self, target: &str) -> Tar {
        let mut v = target.as_bytes().to_vec();
        v.push(0);
        self.meta(b'K', &v)
    }

    pub fn pax(self, records: &[(&str, &[u8])]) -> Tar {
        self.meta(b'x', &pax_payload(records))
    }

    pub fn global_pax(self, records: &[(&str, &[u8])]) -> Tar {
        self.meta(b'g', &pax_payload(records))
    }

    pub fn file(self, name: &str, content: &[u8]) -> Tar {
        let mut h = Header::new(name, b'0');
        h.size = content.len() as u64;
        self.header(&h, content)
    }

    pub fn dir(self, name: &str) -> Tar {
        self.header(&Header::new(name, b'5'), b"")
    }

    pub fn symlink(self, name: &str, target: &str) -> Tar {
        let mut h = Header::new(name, b'2');
        h.link = target.as_bytes().to_vec();
        self.header(&h, b"")
    }

    pub fn device(self, name: &str, typeflag: u8, major: u32, minor: u32) -> Tar {
        let mut h = Header::new(name, typeflag);
        h.dev = (major, minor);
        h.mode = 0o666;
        self.header(&h, b"")
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.data.extend_from_slice(&[0u8; 1024]);
        self.data
    }
}

/// What an entry is, as GNU tar or our parser sees it, for comparison.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    pub name: String,
    /// `-`, `d`, `l`, `h`, `c`, `b`, `p`.
    pub kind: char,
    pub size: u64,
    pub link: Option<String>,
}

/// What our parser reports, in `tar -tv` terms.
pub fn ours(entries: &[TarEntryInfo]) -> Vec<Seen> {
    entries
        .iter()
        .map(|e| Seen {
            name: e.name.to_string(),
            kind: match e.kind {
                EntryKind::File => '-',
                EntryKind::Dir => 'd',
                EntryKind::Symlink => 'l',
                EntryKind::Hardlink => 'h',
                EntryKind::CharDevice { .. } => 'c',
                EntryKind::BlockDevice { .. } => 'b',
                EntryKind::Fifo => 'p',
            },
            size: e.size,
            link: e.link_name.as_ref().map(|l| l.to_string()),
        })
        .collect()
}

/// `tar -tvf` of the archive: the entries, or why GNU tar complained (non-zero exit or
/// anything on stderr).
pub fn gnu_list(archive: &Path) -> Result<Vec<Seen>, String> {
    let out = Command::new("tar")
        .arg("-tvf")
        .arg(archive)
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .output()
        .map_err(|e| format!("running tar: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() || !stderr.is_empty() {
        return Err(format!("tar -t exit {:?}: {stderr}", out.status.code()));
    }
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut seen = Vec::new();
    for line in stdout.lines() {
        // mode, owner/group, size (padded), date, time, then the name to the end.
        let fields: Vec<&str> = {
            let mut v = Vec::new();
            let mut rest = line;
            for _ in 0..5 {
                rest = rest.trim_start();
                let end = rest.find(' ').unwrap_or(rest.len());
                v.push(&rest[..end]);
                rest = &rest[end..];
            }
            v.push(rest.strip_prefix(' ').unwrap_or(rest));
            v
        };
        let kind = fields[0].chars().next().unwrap_or('?');
        let size = fields[2].parse().unwrap_or(u64::MAX);
        let rest = fields[5];
        let (name, link) = match kind {
            'l' => match rest.split_once(" -> ") {
                Some((n, l)) => (n.to_string(), Some(l.to_string())),
                None => (rest.to_string(), None),
            },
            'h' => match rest.split_once(" link to ") {
                Some((n, l)) => (n.to_string(), Some(l.to_string())),
                None => (rest.to_string(), None),
            },
            _ => (rest.to_string(), None),
        };
        seen.push(Seen {
            name,
            kind,
            size,
            link,
        });
    }
    Ok(seen)
}

/// What an extraction made: relative path -> (`f`/`d`/`l`, file size, symlink target).
pub type Tree = BTreeMap<String, (char, u64, Option<String>)>;

/// Extracts the archive into `dir` as GNU tar would on the VM (minus ownership) and
/// lists what it made: relative path -> (`f`/`d`/`l`, size of files, symlink target).
pub fn gnu_extract(archive: &Path, dir: &Path) -> Result<Tree, String> {
    let out = Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(dir)
        .args([
            "--no-same-owner",
            "--no-same-permissions",
            "--no-overwrite-dir",
        ])
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| format!("running tar: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "tar -x exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut found = BTreeMap::new();
    walk(dir, dir, &mut found);
    Ok(found)
}

fn walk(root: &Path, dir: &Path, found: &mut Tree) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in read.flatten() {
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path)
                .map(|t| t.to_string_lossy().into_owned())
                .ok();
            found.insert(rel, ('l', 0, target));
        } else if meta.is_dir() {
            found.insert(rel, ('d', 0, None));
            walk(root, &path, found);
        } else {
            found.insert(rel, ('f', meta.len(), None));
        }
    }
}

/// A member name as a path relative to the extraction root (`./a/b/` -> `a/b`).
pub fn normalise(name: &str) -> String {
    name.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Our verdict on an archive: the entries when the parser and the restore checks
/// accept it, the error otherwise.
pub fn our_verdict(bytes: &[u8]) -> Result<Vec<TarEntryInfo>, bbr_artifact::ArtifactError> {
    let mut hasher = bbr_artifact::TarHasher::new();
    hasher.feed(bytes)?;
    let summary = hasher.finish()?;
    bbr_artifact::check_entries_safe(&summary.entries)?;
    Ok(summary.entries)
}

/// Compares our reading of `bytes` with GNU tar's; `Ok` when we refuse the archive or
/// GNU tar agrees exactly (listing, and the extracted tree when extraction succeeds).
pub fn agree(bytes: &[u8]) -> Result<(), String> {
    let Ok(entries) = our_verdict(bytes) else {
        return Ok(());
    };
    // Names that are not UTF-8 are carried as bytes (and checked elsewhere); GNU tar's
    // listing escapes them its own way, so the two listings are not comparable.
    if entries.iter().any(|e| {
        e.name.to_str().is_none() || e.link_name.as_ref().is_some_and(|l| l.to_str().is_none())
    }) {
        return Ok(());
    }
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let archive = scratch.path().join("archive.tar");
    std::fs::write(&archive, bytes).map_err(|e| e.to_string())?;
    let ours = ours(&entries);
    let theirs = gnu_list(&archive).map_err(|e| format!("we accept {ours:?}, GNU tar: {e}"))?;
    if ours != theirs {
        return Err(format!(
            "listing differs:\n ours {ours:?}\n GNU  {theirs:?}"
        ));
    }
    let mut names: Vec<String> = entries
        .iter()
        .map(|e| normalise(&e.name.to_string()))
        .collect();
    names.sort();
    names.dedup();
    if names.len() != entries.len() {
        return Ok(()); // a name given twice: tar's replace rules are not modelled
    }
    let root = scratch.path().join("root");
    std::fs::create_dir(&root).map_err(|e| e.to_string())?;
    let Ok(found) = gnu_extract(&archive, &root) else {
        return Ok(()); // GNU tar refusing more than we do is safe
    };
    let mut model = Tree::new();
    for e in &entries {
        let path = normalise(&e.name.to_string());
        let mut parts: Vec<&str> = path.split('/').collect();
        parts.pop();
        for n in 1..=parts.len() {
            model.entry(parts[..n].join("/")).or_insert(('d', 0, None));
        }
        if path.is_empty() {
            continue;
        }
        let value = match e.kind {
            EntryKind::File => ('f', e.size, None),
            EntryKind::Dir => ('d', 0, None),
            EntryKind::Symlink => ('l', 0, e.link_name.as_ref().map(|l| l.to_string())),
            EntryKind::Hardlink => {
                let target = normalise(
                    &e.link_name
                        .as_ref()
                        .map(|l| l.to_string())
                        .unwrap_or_default(),
                );
                match model.get(&target) {
                    Some(v) => v.clone(),
                    None => return Ok(()),
                }
            }
            _ => return Err(format!("{} accepted although special", e.name)),
        };
        model.insert(path, value);
    }
    if model != found {
        return Err(format!(
            "extraction differs:\n ours {model:?}\n GNU  {found:?}"
        ));
    }
    Ok(())
}
