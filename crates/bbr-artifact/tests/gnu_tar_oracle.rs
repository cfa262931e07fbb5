//! Differential tests of the tar parser against GNU tar, the program that extracts
//! artifacts on the VM: proptest generates small archives mixing ustar fields and the
//! prefix, GNU `L`/`K` records, PAX `x` and `g` records (path, linkpath, size), every
//! entry type and set-uid modes; whenever our parser and the restore checks accept one,
//! `tar -tv` and an extraction into a scratch directory must agree exactly with what we
//! report. An archive that ever disagreed is saved under `tests/corpus/`, and every
//! corpus file is replayed by [`corpus_archives_agree_with_gnu_tar`].

mod support;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use support::{Header, Magic, Tar, agree, pax_payload};

const NAMES: &[&str] = &[
    "a",
    "./b",
    "c/",
    "./d/e",
    "./f/",
    "sub/a",
    "./nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn",
    "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp/qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
];
const TARGETS: &[&str] = &[
    "a",
    "./b",
    "../a",
    "sub/a",
    "/nonexistent-bbr-oracle/x",
    "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt",
];
/// Entry types the restore accepts, and (picked less often) those it refuses.
const TYPES: &[u8] = b"000\x0012255";
const REFUSED_TYPES: &[u8] = b"7346DVMS";

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

#[derive(Debug, Clone)]
struct Spec {
    typeflag: u8,
    name: usize,
    /// 0 field, 1 prefix, 2 L, 3 x path, 4 L decoy + x path, 5 x decoy then x path.
    name_via: u8,
    target: usize,
    /// 0 field, 1 K, 2 x linkpath, 3 K decoy + x linkpath.
    link_via: u8,
    content: usize,
    /// 0 header, 1 x size with a lying header, 2 header and x agree, 3 a non-zero size
    /// on any type.
    size_via: u8,
    magic: u8,
    /// 0 none, 1 empty x, 2 empty g, 3 g path, 4 g linkpath, 5 x mtime, 6 x xattr,
    /// 7 g size, 8 x empty path.
    extra: u8,
    x_first: bool,
    setuid: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    let typeflag = prop_oneof![
        12 => proptest::sample::select(TYPES),
        1 => proptest::sample::select(REFUSED_TYPES),
    ];
    let size_via = prop_oneof![12 => 0u8..3, 1 => Just(3u8)];
    let extra = prop_oneof![6 => Just(0u8), 4 => 1u8..9];
    (
        (typeflag, 0..NAMES.len(), 0u8..6, 0..TARGETS.len(), 0u8..4),
        (
            0usize..4,
            size_via,
            0u8..3,
            extra,
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (typeflag, name, name_via, target, link_via),
                (content, size_via, magic, extra, x_first, setuid),
            )| Spec {
                typeflag,
                name,
                name_via,
                target,
                link_via,
                content,
                size_via,
                magic,
                extra,
                x_first,
                setuid,
            },
        )
}

fn build(tar: Tar, s: &Spec) -> Tar {
    let name = NAMES[s.name];
    let target = TARGETS[s.target];
    let is_link = matches!(s.typeflag, b'1' | b'2');
    let content = if matches!(s.typeflag, b'0' | b'\0' | b'7') || s.size_via == 3 {
        vec![b'z'; s.content]
    } else {
        Vec::new()
    };
    let mut h = Header::new("hdrname", s.typeflag);
    h.magic = match s.magic {
        0 => Magic::Gnu,
        1 => Magic::Ustar,
        _ => Magic::UstarOddVersion,
    };
    h.mode = if s.setuid { 0o4755 } else { 0o644 };
    h.dev = (1, 1);
    let mut x: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut long_name = None;
    let mut long_link = None;
    let mut decoy_x = false;
    match s.name_via {
        0 => h.name = name.as_bytes().to_vec(),
        1 => match name.rsplit_once('/') {
            Some((p, n)) if !n.is_empty() => {
                h.prefix = p.as_bytes().to_vec();
                h.name = n.as_bytes().to_vec();
            }
            _ => h.name = name.as_bytes().to_vec(),
        },
        2 => long_name = Some(name.to_string()),
        3 => x.push(("path", name.as_bytes().to_vec())),
        4 => {
            long_name = Some("decoy".to_string());
            x.push(("path", name.as_bytes().to_vec()));
        }
        _ => {
            decoy_x = true;
            x.push(("path", name.as_bytes().to_vec()));
        }
    }
    if is_link || s.link_via > 0 {
        match s.link_via {
            0 => h.link = target.as_bytes().to_vec(),
            1 => long_link = Some(target.to_string()),
            2 => x.push(("linkpath", target.as_bytes().to_vec())),
            _ => {
                long_link = Some("decoy".to_string());
                x.push(("linkpath", target.as_bytes().to_vec()));
            }
        }
    }
    h.size = content.len() as u64;
    match s.size_via {
        1 => {
            x.push(("size", content.len().to_string().into_bytes()));
            h.size = 7;
        }
        2 => x.push(("size", content.len().to_string().into_bytes())),
        _ => {}
    }
    let mut tar = tar;
    match s.extra {
        1 => tar = tar.meta(b'x', b""),
        2 => tar = tar.meta(b'g', b""),
        3 => tar = tar.global_pax(&[("path", b"./gp")]),
        4 => tar = tar.global_pax(&[("linkpath", b"/nonexistent-bbr-oracle/g")]),
        5 => x.push(("mtime", b"1".to_vec())),
        6 => x.push(("SCHILY.xattr.user.k", b"v".to_vec())),
        7 => tar = tar.global_pax(&[("size", b"1")]),
        8 => x.push(("path", Vec::new())),
        _ => {}
    }
    let records: Vec<(&str, &[u8])> = x.iter().map(|(k, v)| (*k, v.as_slice())).collect();
    let emit_x = |tar: Tar| {
        let tar = if decoy_x {
            tar.pax(&[("path", b"./decoy")])
        } else {
            tar
        };
        if records.is_empty() {
            tar
        } else {
            tar.meta(b'x', &pax_payload(&records))
        }
    };
    if s.x_first {
        tar = emit_x(tar);
    }
    if let Some(n) = &long_name {
        tar = tar.long_name(n);
    }
    if let Some(l) = &long_link {
        tar = tar.long_link(l);
    }
    if !s.x_first {
        tar = emit_x(tar);
    }
    tar.header(&h, &content)
}

fn archive(specs: &[Spec]) -> Vec<u8> {
    specs.iter().fold(Tar::new().dir("./"), build).finish()
}

/// Saves a disagreeing archive for the corpus test and returns its path.
fn save(bytes: &[u8]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    let path = corpus().join(format!("proptest-{:016x}.tar", h.finish()));
    let _ = std::fs::create_dir_all(corpus());
    let _ = std::fs::write(&path, bytes);
    path
}

proptest! {
    #![proptest_config(Config {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    })]

    #[test]
    fn parser_agrees_with_gnu_tar(specs in proptest::collection::vec(spec(), 1..4)) {
        let bytes = archive(&specs);
        if let Err(why) = agree(&bytes) {
            let saved = save(&bytes);
            prop_assert!(false, "{why}\nsaved as {}", saved.display());
        }
    }
}

/// The generator is not vacuous: a good share of its archives is accepted (and so
/// compared with GNU tar), and some are refused.
#[test]
fn generated_archives_are_both_accepted_and_refused() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec(spec(), 1..4);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..300 {
        let specs = strategy.new_tree(&mut runner).expect("tree").current();
        match support::our_verdict(&archive(&specs)) {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    eprintln!("accepted {accepted}, refused {refused} of 300");
    assert!(accepted >= 30, "only {accepted} of 300 accepted");
    assert!(refused >= 30, "only {refused} of 300 refused");
}

#[test]
fn corpus_archives_agree_with_gnu_tar() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("tests/corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "corpus too small: {files:?}");
    let mut failures = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).expect("read corpus file");
        if let Err(why) = agree(&bytes) {
            failures.push(format!("{}: {why}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
