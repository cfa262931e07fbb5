//! Hostile tar entries (issue 10, items 2 and 3), with tars built byte by byte: device
//! nodes and FIFOs refused at restore and in a drained stream, set-uid/set-gid bits
//! stripped from the bytes a restore sends, global PAX headers and header kinds the
//! parser does not model refused, GNU long links checked like any link.

mod support;

use std::path::Path;
use std::process::Command;

use bbr_artifact::metadata::{Checksums, Metadata};
use bbr_artifact::tarstream::{apply_patches, setid_patches};
use bbr_artifact::{
    ArtifactDir, ArtifactError, EntryKind, TarHasher, TarSummary, check_entry_kind,
};
use sha2::{Digest, Sha256};
use support::{Header, Tar};

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hash(bytes: &[u8]) -> Result<TarSummary, ArtifactError> {
    let mut h = TarHasher::new();
    for chunk in bytes.chunks(300) {
        h.feed(chunk)?;
    }
    h.finish()
}

/// An artifact directory with one instance artifact `bosh/0/bosh` made of `tar`, whose
/// metadata lists `files`.
fn artifact(tar: &[u8], files: &[(&str, &[u8])]) -> (tempfile::TempDir, ArtifactDir) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = ArtifactDir::create(tmp.path(), "dep", "20240101T000000Z").expect("create");
    let sums: Checksums = files.iter().map(|(k, v)| ((*k).into(), sha(v))).collect();
    let listed = if sums.is_empty() {
        " {}\n".to_string()
    } else {
        sums.iter()
            .map(|(k, v)| format!("\n      {k}: {v}"))
            .collect::<String>()
            + "\n"
    };
    let yaml = format!(
        "instances:\n- name: bosh\n  index: \"0\"\n  artifacts:\n  - name: bosh\n    checksums:{listed}"
    );
    let meta = Metadata::parse(&yaml).expect("metadata");
    dir.write_metadata(&meta).expect("write metadata");
    std::fs::write(dir.file_path("bosh-0-bosh.tar"), tar).expect("write tar");
    (tmp, dir)
}

/// The structure check's error, which must be a corruption naming the tar and `entry`.
fn refused_at_restore(tar: &[u8], files: &[(&str, &[u8])], entry: &str) -> String {
    let (_tmp, dir) = artifact(tar, files);
    let err = dir.validate_structure().expect_err("refused");
    let msg = err.to_string();
    assert!(err.is_corruption(), "{msg}");
    assert!(msg.starts_with("Backup is corrupted: "), "{msg}");
    assert!(msg.contains("bosh-0-bosh.tar"), "names the file: {msg}");
    assert!(msg.contains(entry), "names {entry}: {msg}");
    msg
}

fn devices() -> [(Vec<u8>, &'static str, &'static str); 3] {
    [
        (
            Tar::new()
                .dir("./")
                .file("./a", b"x")
                .device("./mem", b'3', 1, 1)
                .finish(),
            "./mem",
            "character device 1,1",
        ),
        (
            Tar::new()
                .dir("./")
                .file("./a", b"x")
                .device("./sda", b'4', 8, 0)
                .finish(),
            "./sda",
            "block device 8,0",
        ),
        (
            Tar::new()
                .dir("./")
                .file("./a", b"x")
                .device("./fifo", b'6', 0, 0)
                .finish(),
            "./fifo",
            "FIFO",
        ),
    ]
}

#[test]
fn device_nodes_and_fifos_are_refused_at_restore() {
    for (tar, entry, what) in devices() {
        let msg = refused_at_restore(&tar, &[("./a", b"x")], entry);
        assert!(msg.contains(what), "{msg}");
    }
}

#[test]
fn device_nodes_and_fifos_in_a_drained_stream_are_refused() {
    for (tar, entry, what) in devices() {
        // The stream parses (its checksums are Go bbr's), and the drain's check refuses it.
        let summary = hash(&tar).expect("a well-formed stream");
        let special = summary
            .entries
            .iter()
            .find(|e| e.name == entry)
            .expect("entry reported");
        assert!(special.kind.is_special());
        let err = summary
            .entries
            .iter()
            .find_map(|e| check_entry_kind(e).err())
            .expect("refused");
        assert_eq!(err.entry(), Some(entry));
        assert!(err.to_string().contains(what), "{err}");
    }
}

#[test]
fn set_uid_and_set_gid_entries_are_sent_without_those_bits() {
    let mut suid = Header::new("./bin/tool", b'0');
    suid.mode = 0o4755;
    suid.size = 5;
    let mut sgid_dir = Header::new("./shared/", b'5');
    sgid_dir.mode = 0o2775;
    let tar = Tar::new()
        .dir("./")
        .dir("./bin/")
        .header(&suid, b"tool\n")
        .header(&sgid_dir, b"")
        .file("./plain", b"p")
        .finish();
    let (_tmp, dir) = artifact(&tar, &[("./bin/tool", b"tool\n"), ("./plain", b"p")]);
    let checks = dir.validate_structure().expect("set-uid is not refused");
    let setid = &checks[0].setid_entries;
    let names: Vec<_> = setid.iter().map(|e| (e.name.to_string(), e.mode)).collect();
    assert_eq!(
        names,
        [
            ("./bin/tool".to_string(), 0o4755),
            ("./shared/".to_string(), 0o2775)
        ]
    );
    assert_eq!(setid[0].header_offset, 1024);

    let patches = setid_patches(&checks[0].path, setid).expect("patches");
    assert_eq!(patches.len(), 2);
    // Applied over reads of any size, exactly the two header blocks change.
    for chunk in [1, 100, 511, 512, 513, 4096] {
        let mut sent = Vec::new();
        for (i, piece) in tar.chunks(chunk).enumerate() {
            let mut piece = piece.to_vec();
            apply_patches(&patches, (i * chunk) as u64, &mut piece);
            sent.extend_from_slice(&piece);
        }
        let changed: Vec<usize> = (0..tar.len() / 512)
            .filter(|b| tar[b * 512..(b + 1) * 512] != sent[b * 512..(b + 1) * 512])
            .collect();
        assert_eq!(changed, [2, 4], "chunk {chunk}");
        let before = hash(&tar).expect("original");
        let after = hash(&sent).expect("sent stream is a valid tar");
        assert_eq!(
            after.checksums, before.checksums,
            "content checksums unaffected"
        );
        let modes: Vec<u32> = after.entries.iter().map(|e| e.mode).collect();
        assert_eq!(modes, [0o755, 0o755, 0o755, 0o775, 0o644]);
        assert!(after.entries.iter().all(|e| !e.has_setid()));
    }
    // GNU tar reads the rewritten headers as such.
    let mut sent = tar.clone();
    apply_patches(&patches, 0, &mut sent);
    let file = _tmp.path().join("sent.tar");
    std::fs::write(&file, &sent).expect("write");
    let out = Command::new("tar")
        .arg("-tvf")
        .arg(&file)
        .output()
        .expect("tar");
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("-rwxr-xr-x"), "{listing}");
    assert!(listing.contains("drwxrwxr-x"), "{listing}");
    for line in listing.lines() {
        let mode = &line[..10];
        assert!(!mode.contains(['s', 'S']), "{line}");
    }

    // A tar changed after the check is refused rather than patched blindly.
    let mut changed = tar.clone();
    changed[1024 + 5] = b'X';
    std::fs::write(&checks[0].path, &changed).expect("rewrite");
    let err = setid_patches(&checks[0].path, setid).expect_err("changed");
    assert!(err.to_string().contains("changed since"), "{err}");
}

#[test]
fn global_pax_linkpath_before_an_innocent_symlink_is_refused() {
    let tar = Tar::new()
        .dir("./")
        .dir("./sub/")
        .global_pax(&[("linkpath", b"/etc/shadow")])
        .symlink("./config", "sub")
        .finish();
    let err = hash(&tar).expect_err("global header");
    assert!(matches!(err, ArtifactError::Unsupported { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("global PAX header") && msg.contains("linkpath"),
        "{msg}"
    );
    let msg = refused_at_restore(&tar, &[], "global PAX header");
    assert!(msg.contains("linkpath"), "{msg}");
    // Every record kind is refused; an empty global header is harmless.
    for key in ["path", "size", "mtime", "comment"] {
        let tar = Tar::new()
            .global_pax(&[(key, b"1")])
            .file("./a", b"x")
            .finish();
        assert!(hash(&tar).is_err(), "{key}");
    }
    let tar = Tar::new().meta(b'g', b"").file("./a", b"x").finish();
    assert_eq!(hash(&tar).expect("empty g").entries[0].name, "./a");
}

#[test]
fn gnu_long_link_to_an_absolute_target_is_refused() {
    let target = format!("/etc/{}", "s".repeat(120));
    for target in ["/etc/shadow", target.as_str()] {
        let tar = Tar::new()
            .dir("./")
            .long_link(target)
            .symlink("./config", "sub")
            .finish();
        let summary = hash(&tar).expect("parses");
        assert_eq!(
            summary.entries[1]
                .link_name
                .as_ref()
                .and_then(|l| l.to_str()),
            Some(target)
        );
        let msg = refused_at_restore(&tar, &[], "./config");
        assert!(msg.contains("absolute") && msg.contains(target), "{msg}");
    }
}

#[test]
fn header_kinds_gnu_tar_applies_but_we_do_not_model_are_refused() {
    for (flag, what) in [
        (b'7', "contiguous"),
        (b'D', "dump directories"),
        (b'S', "sparse"),
        (b'M', "multi-volume"),
        (b'V', "volume labels"),
        (b'N', "old GNU long-name"),
        (b'Z', "unknown type"),
    ] {
        let tar = Tar::new().header(&Header::new("./x", flag), b"").finish();
        let err = hash(&tar).expect_err(what);
        assert!(matches!(err, ArtifactError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains(what), "{err}");
        assert_eq!(err.entry(), Some("./x"));
    }
    for key in [
        "SCHILY.xattr.security.capability",
        "GNU.dumpdir",
        "GNU.volume.label",
        "SCHILY.acl.access",
        "hdrcharset",
    ] {
        let tar = Tar::new().pax(&[(key, b"v")]).file("./a", b"x").finish();
        let err = hash(&tar).expect_err(key);
        assert!(err.to_string().contains(key), "{err}");
    }
    // Header-only types with content: GNU tar and other readers disagree on what follows.
    for flag in [b'1', b'2', b'5'] {
        let mut h = Header::new("./l", flag);
        h.link = b"a".to_vec();
        h.size = 512;
        let tar = Tar::new()
            .file("./a", b"x")
            .header(&h, &[b'h'; 512])
            .finish();
        assert!(hash(&tar).is_err(), "{}", flag as char);
    }
    // Empty, NUL-holding or non-numeric PAX values.
    for (key, value) in [
        ("path", &b""[..]),
        ("path", b"./a\0b"),
        ("linkpath", b""),
        ("size", b""),
        ("size", b"+3"),
    ] {
        let tar = Tar::new().pax(&[(key, value)]).file("./hdr", b"").finish();
        assert!(hash(&tar).is_err(), "{key}={value:?}");
    }
}

#[test]
fn overrides_follow_gnu_tar_precedence() {
    // A later x header replaces an earlier one whole: its path is gone.
    let tar = Tar::new()
        .pax(&[("path", b"./first")])
        .pax(&[("mtime", b"1")])
        .file("./hdr", b"abc")
        .finish();
    assert_eq!(hash(&tar).expect("two x").entries[0].name, "./hdr");
    // PAX path beats an L record in either order; PAX linkpath beats K.
    for x_first in [true, false] {
        let mut t = Tar::new();
        if x_first {
            t = t.pax(&[("path", b"./fromX"), ("linkpath", b"toX")]);
        }
        t = t.long_name("./fromL").long_link("toK");
        if !x_first {
            t = t.pax(&[("path", b"./fromX"), ("linkpath", b"toX")]);
        }
        let summary = hash(&t.symlink("./hdr", "toHdr").finish()).expect("parses");
        assert_eq!(summary.entries[0].name, "./fromX");
        assert_eq!(
            summary.entries[0]
                .link_name
                .as_ref()
                .and_then(|l| l.to_str()),
            Some("toX")
        );
    }
    // The ustar prefix is joined whenever the magic is "ustar\0", whatever the version.
    let mut h = Header::new("hdr", b'0');
    h.prefix = b"./pre".to_vec();
    h.magic = support::Magic::UstarOddVersion;
    let tar = Tar::new().header(&h, b"").finish();
    assert_eq!(hash(&tar).expect("prefix").entries[0].name, "./pre/hdr");
    // A regular entry whose name ends in '/' is a directory to GNU tar.
    let tar = Tar::new().header(&Header::new("./d/", b'0'), b"").finish();
    assert_eq!(hash(&tar).expect("dir").entries[0].kind, EntryKind::Dir);
}

#[test]
fn gnu_tar_is_on_the_path() {
    // The oracle tests depend on it; fail loudly rather than compare against nothing.
    let out = Command::new("tar").arg("--version").output().expect("tar");
    assert!(String::from_utf8_lossy(&out.stdout).contains("GNU tar"));
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus")
            .is_dir()
    );
}
