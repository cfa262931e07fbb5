//! The artifact's `metadata` file, Go bbr schema (`backup/metadata.go`,
//! docs/artifact-format.md#metadata).
//!
//! Parsing is lenient like Go's `yaml.Unmarshal` into the Go structs: unknown keys are
//! ignored, missing sections default to empty, `index` may be a string or an integer.
//! Writing ([`Metadata::to_yaml`]) reproduces Go's `yaml.v2` output byte for byte, so
//! artifacts stay interchangeable with Go bbr in both directions.
//!
//! Checksum keys are file names, which are byte strings. yaml.v2 writes a name that is not
//! valid UTF-8 as a `!!binary` scalar holding its base64 (see [`crate::yaml_emit`]) and
//! decodes it back to the bytes when reading; so do we, and like yaml.v2 a `!!binary` key
//! whose bytes are valid UTF-8 reads as that text.
//!
//! serde-saphyr cannot hand such a key to us: into a `String` it refuses non-UTF-8
//! `!!binary`, and `deserialize_bytes` refuses untagged scalars, with no way to try one then
//! the other. So a document that holds a tag at all (it contains `!`; Go's metadata never
//! does unless a name is not UTF-8) is read in two passes: serde-saphyr reads the structure,
//! with the scaled limits of [`crate::yaml_limits`] and each `checksums` mapping taken only
//! as its source position (`Spanned<IgnoredAny>`); then [`tagged_checksums`] walks the
//! events of granit-parser (the parser serde-saphyr is built on, so positions agree) and
//! reads every `checksums` mapping's keys as bytes, decoding `!!binary` ones. Documents
//! without `!` take the single serde-saphyr pass they always took.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::entry_name::EntryName;
use crate::error::ArtifactError;
use crate::yaml_emit::{self, Node};
use crate::yaml_limits;

/// Tar entry name as stored in the tar (e.g. `./redis-server/dump.rdb`, any bytes) →
/// lowercase hex SHA-256 of its content.
pub type Checksums = BTreeMap<EntryName, String>;

/// The whole `metadata` document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    /// Default artifacts, grouped per instance (`instances`).
    pub instances: Vec<InstanceMetadata>,
    /// Named artifacts, i.e. backup-one-restore-all (`custom_artifacts`).
    pub custom_artifacts: Vec<ArtifactMetadata>,
    /// Start and finish time of the backup (`backup_activity`).
    pub backup_activity: BackupActivity,
}

/// One `instances[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstanceMetadata {
    /// Instance group name.
    pub name: String,
    /// BOSH instance index, as a string (`"0"`).
    pub index: String,
    /// One entry per backed-up job.
    pub artifacts: Vec<ArtifactMetadata>,
}

/// One artifact: its name (job name or custom name) and the checksums of its tar's files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArtifactMetadata {
    /// Job name for default artifacts, the artifact name for custom ones.
    pub name: String,
    /// Checksums of the files in the artifact's tar.
    pub checksums: Checksums,
}

/// `backup_activity`: times in Go layout `2006/01/02 15:04:05 MST` (see
/// [`crate::timefmt::metadata_time`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackupActivity {
    /// When the backup started.
    pub start_time: Option<String>,
    /// When the backup finished; absent until set.
    pub finish_time: Option<String>,
}

impl ArtifactMetadata {
    /// An artifact entry with the given name and checksums.
    pub fn new(name: impl Into<String>, checksums: Checksums) -> Self {
        Self {
            name: name.into(),
            checksums,
        }
    }
}

impl Metadata {
    /// Parses `metadata` text. Accepts everything Go bbr writes and reads: missing
    /// sections, unknown keys, integer indexes, no trailing newline, an empty document.
    pub fn parse(text: &str) -> Result<Metadata, ArtifactError> {
        if text.trim().is_empty() {
            // yaml.Unmarshal of an empty document leaves the struct zero.
            return Ok(Metadata::default());
        }
        let parse_error = |message: String| ArtifactError::MetadataParse {
            path: None,
            message,
        };
        if !text.contains('!') {
            // Limits scaled from the text's size: whatever our writer produced reads back.
            let raw: Option<RawMetadata<PlainChecksums>> =
                yaml_limits::from_str(text).map_err(|e| parse_error(e.to_string()))?;
            return Ok(Self::from_raw(raw.unwrap_or_default(), |c| {
                c.into_iter()
                    .map(|(k, v)| (EntryName::from(k), v.unwrap_or_default()))
                    .collect()
            }));
        }
        // serde-saphyr still reads the keys of what it ignores, so it must not decode the
        // `!!binary` ones (they need not be UTF-8); the checksums come from the event pass.
        let mut options = yaml_limits::options_for(text.len());
        options.ignore_binary_tag_for_string = true;
        let raw: Option<RawMetadata<SpannedChecksums>> =
            serde_saphyr::from_str_with_options(text, options)
                .map_err(|e| parse_error(e.to_string()))?;
        let mut by_position = tagged_checksums(text).map_err(|e| parse_error(e.to_string()))?;
        Ok(Self::from_raw(raw.unwrap_or_default(), |c| {
            let at = (c.referenced.line(), c.referenced.column());
            by_position.remove(&at).unwrap_or_default()
        }))
    }

    /// The document from its serde shape; `checksums` turns one artifact's raw checksums
    /// into [`Checksums`].
    fn from_raw<C>(raw: RawMetadata<C>, mut checksums: impl FnMut(C) -> Checksums) -> Metadata {
        let mut artifact = |a: RawArtifact<C>| ArtifactMetadata {
            name: a.name.unwrap_or_default(),
            checksums: a.checksums.map(&mut checksums).unwrap_or_default(),
        };
        Metadata {
            instances: raw
                .instances
                .unwrap_or_default()
                .into_iter()
                .map(|i| InstanceMetadata {
                    name: i.name.unwrap_or_default(),
                    index: i.index.unwrap_or_default(),
                    artifacts: i
                        .artifacts
                        .unwrap_or_default()
                        .into_iter()
                        .map(&mut artifact)
                        .collect(),
                })
                .collect(),
            custom_artifacts: raw
                .custom_artifacts
                .unwrap_or_default()
                .into_iter()
                .map(&mut artifact)
                .collect(),
            backup_activity: raw
                .backup_activity
                .map(|a| BackupActivity {
                    start_time: a.start_time.filter(|s| !s.is_empty()),
                    finish_time: a.finish_time.filter(|s| !s.is_empty()),
                })
                .unwrap_or_default(),
        }
    }

    /// Serialises exactly like Go bbr (`yaml.v2` of its `metadata` struct): key order
    /// `instances`, `custom_artifacts`, `backup_activity`; the first two omitted when
    /// empty; `finish_time` omitted when unset; checksum keys sorted the yaml.v2 way.
    ///
    /// `backup_activity` is omitted altogether when neither time is set (Go always
    /// writes it, but every metadata Go bbr writes has a start time, and some older
    /// fixtures lack the section); when only `finish_time` is set, `start_time: ""`
    /// is written as Go would.
    pub fn to_yaml(&self) -> String {
        let mut root: Vec<(&str, Node<'_>)> = Vec::new();
        if !self.instances.is_empty() {
            let items = self
                .instances
                .iter()
                .map(|i| {
                    Node::Struct(vec![
                        ("name", Node::Str(&i.name)),
                        ("index", Node::Str(&i.index)),
                        (
                            "artifacts",
                            Node::Seq(i.artifacts.iter().map(artifact_node).collect()),
                        ),
                    ])
                })
                .collect();
            root.push(("instances", Node::Seq(items)));
        }
        if !self.custom_artifacts.is_empty() {
            root.push((
                "custom_artifacts",
                Node::Seq(self.custom_artifacts.iter().map(artifact_node).collect()),
            ));
        }
        let activity = &self.backup_activity;
        if activity.start_time.is_some() || activity.finish_time.is_some() {
            let mut fields = vec![(
                "start_time",
                Node::Str(activity.start_time.as_deref().unwrap_or("")),
            )];
            if let Some(finish) = activity.finish_time.as_deref().filter(|s| !s.is_empty()) {
                fields.push(("finish_time", Node::Str(finish)));
            }
            root.push(("backup_activity", Node::Struct(fields)));
        }
        yaml_emit::emit(&Node::Struct(root))
    }

    /// Records a default artifact of instance `instance_name`/`index`, appending to that
    /// instance's entry or creating it (at the end) if absent.
    pub fn add_instance_artifact(
        &mut self,
        instance_name: &str,
        index: &str,
        artifact: ArtifactMetadata,
    ) {
        match self
            .instances
            .iter_mut()
            .find(|i| i.name == instance_name && i.index == index)
        {
            Some(instance) => instance.artifacts.push(artifact),
            None => self.instances.push(InstanceMetadata {
                name: instance_name.to_string(),
                index: index.to_string(),
                artifacts: vec![artifact],
            }),
        }
    }

    /// Records a custom (named) artifact.
    pub fn add_custom_artifact(&mut self, artifact: ArtifactMetadata) {
        self.custom_artifacts.push(artifact);
    }

    /// The default artifact `artifact` of instance `name`/`index`, if recorded.
    pub fn find_instance_artifact(
        &self,
        name: &str,
        index: &str,
        artifact: &str,
    ) -> Option<&ArtifactMetadata> {
        self.instances
            .iter()
            .filter(|i| i.name == name && i.index == index)
            .flat_map(|i| i.artifacts.iter())
            .find(|a| a.name == artifact)
    }

    /// The custom artifact `name`, if recorded.
    pub fn find_custom_artifact(&self, name: &str) -> Option<&ArtifactMetadata> {
        self.custom_artifacts.iter().find(|a| a.name == name)
    }
}

fn artifact_node(a: &ArtifactMetadata) -> Node<'_> {
    Node::Struct(vec![
        ("name", Node::Str(&a.name)),
        (
            "checksums",
            Node::Map(
                a.checksums
                    .iter()
                    .map(|(k, v)| (k.as_bytes(), Node::Str(v)))
                    .collect(),
            ),
        ),
    ])
}

// ----- serde shapes (everything optional/nullable, like Go's zero values) -----

/// `checksums` read by serde-saphyr alone (documents without tags).
type PlainChecksums = BTreeMap<String, Option<String>>;
/// `checksums` as a source position, read by [`tagged_checksums`] (documents with tags).
type SpannedChecksums = serde_saphyr::Spanned<serde::de::IgnoredAny>;

#[derive(Deserialize)]
#[serde(bound = "C: Deserialize<'de>")]
struct RawMetadata<C> {
    #[serde(default)]
    instances: Option<Vec<RawInstance<C>>>,
    #[serde(default)]
    custom_artifacts: Option<Vec<RawArtifact<C>>>,
    #[serde(default)]
    backup_activity: Option<RawActivity>,
}

impl<C> Default for RawMetadata<C> {
    fn default() -> Self {
        Self {
            instances: None,
            custom_artifacts: None,
            backup_activity: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(bound = "C: Deserialize<'de>")]
struct RawInstance<C> {
    #[serde(default)]
    name: Option<String>,
    /// serde-saphyr hands a plain scalar's raw text to a `String` (`0` → `"0"`,
    /// `007` → `"007"`), like yaml.v2 does for Go string fields.
    #[serde(default)]
    index: Option<String>,
    #[serde(default)]
    artifacts: Option<Vec<RawArtifact<C>>>,
}

#[derive(Deserialize)]
#[serde(bound = "C: Deserialize<'de>")]
struct RawArtifact<C> {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    checksums: Option<C>,
}

/// Why the event pass over a metadata document could not read its `checksums` mappings.
#[derive(Debug, thiserror::Error)]
enum ChecksumsScanError {
    /// The YAML does not scan.
    #[error(transparent)]
    Yaml(#[from] granit_parser::ScanError),
    /// A key or value of a `checksums` mapping is not a scalar.
    #[error("checksums at line {at_line}: entry at line {line}, column {column} is not a string")]
    NotAString {
        /// Where the mapping starts.
        at_line: u64,
        /// Where the entry starts.
        line: u64,
        /// Its column (1-based).
        column: u64,
    },
    /// A `!!binary` key is not base64.
    #[error("checksums key at line {line}, column {column}: !!binary is not base64: {source}")]
    KeyNotBase64 {
        /// Where the key starts.
        line: u64,
        /// Its column (1-based).
        column: u64,
        /// The decoder's reason.
        #[source]
        source: base64::DecodeError,
    },
    /// A `checksums` value that is an alias.
    #[error("checksums at line {line}, column {column}: aliases are not supported here")]
    Alias {
        /// Where the alias is.
        line: u64,
        /// Its column (1-based).
        column: u64,
    },
}

/// Every mapping that is the value of a `checksums` key, by the position (line, 1-based
/// column, as serde-saphyr reports them) of its start, with keys read as bytes: a
/// `!!binary` key base64-decoded, any other key as its text. Values read like the
/// serde path reads `Option<String>`: a null is `""`. Aliases are refused as a
/// `checksums` mapping or inside one (neither Go bbr nor we write any).
fn tagged_checksums(text: &str) -> Result<HashMap<(u64, u64), Checksums>, ChecksumsScanError> {
    use granit_parser::{Event, Parser, ScalarStyle};

    /// Where the walker is.
    enum Frame {
        /// A mapping outside any `checksums`; `key` is the last key read, `expect_key`
        /// whether the next node is a key.
        Map {
            key: Option<String>,
            expect_key: bool,
        },
        /// A sequence outside any `checksums`.
        Seq,
        /// Inside the `checksums` mapping that started at `at`.
        Checksums {
            at: (u64, u64),
            key: Option<EntryName>,
        },
    }
    let mut found: HashMap<(u64, u64), Checksums> = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        let (event, span) = next?;
        let line = span.start.line() as u64;
        let column = span.start.col() as u64 + 1;
        // Whether this node is the value of a `checksums` key (and moves its mapping on).
        let mut checksums_value = false;
        let is_node = matches!(
            event,
            Event::Scalar(..)
                | Event::MappingStart(..)
                | Event::SequenceStart(..)
                | Event::Alias(..)
        );
        if is_node {
            match stack.last_mut() {
                Some(Frame::Map { key, expect_key }) => {
                    if *expect_key {
                        *key = match &event {
                            Event::Scalar(value, ..) => Some(value.to_string()),
                            _ => None,
                        };
                    } else {
                        checksums_value = key.as_deref() == Some("checksums");
                    }
                    *expect_key = !*expect_key;
                }
                Some(Frame::Checksums { at, key }) => {
                    let Event::Scalar(value, style, _, tag) = &event else {
                        return Err(ChecksumsScanError::NotAString {
                            at_line: at.0,
                            line,
                            column,
                        });
                    };
                    match key.take() {
                        None => {
                            let binary = tag.as_ref().is_some_and(|t| {
                                t.suffix_in_namespace("tag:yaml.org,2002:").as_deref()
                                    == Some("binary")
                            });
                            *key = Some(if binary {
                                EntryName::from(decode_binary(value).map_err(|source| {
                                    ChecksumsScanError::KeyNotBase64 {
                                        line,
                                        column,
                                        source,
                                    }
                                })?)
                            } else {
                                EntryName::from(value.as_ref())
                            });
                        }
                        Some(name) => {
                            let null = tag.is_none()
                                && *style == ScalarStyle::Plain
                                && matches!(value.as_ref(), "" | "~" | "null" | "Null" | "NULL");
                            let value = if null {
                                String::new()
                            } else {
                                value.to_string()
                            };
                            found.entry(*at).or_default().insert(name, value);
                        }
                    }
                    continue;
                }
                _ => {}
            }
        }
        match event {
            Event::MappingStart(..) if checksums_value => {
                found.entry((line, column)).or_default();
                stack.push(Frame::Checksums {
                    at: (line, column),
                    key: None,
                });
            }
            Event::Alias(..) if checksums_value => {
                return Err(ChecksumsScanError::Alias { line, column });
            }
            Event::MappingStart(..) => stack.push(Frame::Map {
                key: None,
                expect_key: true,
            }),
            Event::SequenceStart(..) => stack.push(Frame::Seq),
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            _ => {}
        }
    }
    Ok(found)
}

/// The bytes of a `!!binary` scalar: base64, line breaks and blanks ignored.
fn decode_binary(value: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine as _;
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact.as_bytes())
}

#[derive(Deserialize)]
struct RawActivity {
    #[serde(default)]
    start_time: Option<String>,
    #[serde(default)]
    finish_time: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixtures() -> PathBuf {
        bbr_testkit::gobbr::dir()
    }

    fn fixture_metadata() -> Vec<(String, String)> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(fixtures()).expect("fixtures dir") {
            let dir = entry.expect("entry").path();
            let meta = dir.join("metadata");
            if meta.is_file() {
                let text = std::fs::read_to_string(&meta).expect("read metadata");
                out.push((dir.display().to_string(), text));
            }
        }
        assert_eq!(out.len(), 4, "expected four fixture artifacts");
        out
    }

    #[test]
    fn every_fixture_parses_and_round_trips_byte_exact() {
        for (dir, text) in fixture_metadata() {
            let meta = Metadata::parse(&text).unwrap_or_else(|e| panic!("{dir}: {e}"));
            assert!(!meta.instances.is_empty(), "{dir}");
            let out = meta.to_yaml();
            assert_eq!(
                out.trim_end_matches('\n'),
                text.trim_end_matches('\n'),
                "{dir}"
            );
            assert!(out.ends_with('\n') && !out.ends_with("\n\n"));
            assert_eq!(Metadata::parse(&out).expect("reparse"), meta);
        }
    }

    #[test]
    fn redis_fixture_content() {
        let text = std::fs::read_to_string(fixtures().join("redis-backup/metadata")).expect("read");
        let meta = Metadata::parse(&text).expect("parse");
        assert_eq!(meta.instances.len(), 3);
        assert_eq!(meta.instances[0].name, "other-redis");
        assert_eq!(meta.instances[2].index, "1");
        let a = meta
            .find_instance_artifact("redis", "1", "redis-server")
            .expect("artifact");
        assert_eq!(
            a.checksums[&EntryName::from("./redis-server/dump.rdb")],
            "66f7f1c19210f601eb7e087f510cbf6c045ca70654dc4c323902204dc4c38108"
        );
        assert!(
            meta.find_instance_artifact("redis", "2", "redis-server")
                .is_none()
        );
        assert_eq!(meta.backup_activity, BackupActivity::default());
    }

    const SPEC_EXAMPLE: &str = r#"instances:
- name: other-redis
  index: "0"
  artifacts:
  - name: redis-server
    checksums:
      ./redis-server/appendonly.aof: be1b7e4e577b7cbcd556ec75f2f4b2e2d3afca1e40f8ce5a2b748b462cf4bd53
      ./redis-server/dump.rdb: 3f1baf2147d8e9bc91fdbf21f7d384601d0c20130064a1f02d5d096ccf94a3fe
- name: redis
  index: "0"
  artifacts:
  - name: redis-server
    checksums:
      ./redis-server/appendonly.aof: be1b7e4e577b7cbcd556ec75f2f4b2e2d3afca1e40f8ce5a2b748b462cf4bd53
      ./redis-server/dump.rdb: ba3589985f5f4869fe62d155faee8e59c328b42875cb7e3fbb18c7b8152a92d2
- name: redis
  index: "1"
  artifacts:
  - name: redis-server
    checksums:
      ./redis-server/appendonly.aof: be1b7e4e577b7cbcd556ec75f2f4b2e2d3afca1e40f8ce5a2b748b462cf4bd53
      ./redis-server/dump.rdb: 66f7f1c19210f601eb7e087f510cbf6c045ca70654dc4c323902204dc4c38108
custom_artifacts:
- name: redis-server-redis-test-backup-one-restore-all
  checksums:
    ./redis/redis-backup: 8d7fa73732d6dba6f6af01621552d3a6d814d2042c959465d0562a97c3f796b0
backup_activity:
  start_time: 2017/01/23 14:10:02 UTC
  finish_time: 2017/01/23 14:10:31 UTC
"#;

    #[test]
    fn spec_example_round_trips() {
        let meta = Metadata::parse(SPEC_EXAMPLE).expect("parse");
        assert_eq!(meta.custom_artifacts.len(), 1);
        assert_eq!(
            meta.backup_activity.start_time.as_deref(),
            Some("2017/01/23 14:10:02 UTC")
        );
        assert_eq!(meta.to_yaml(), SPEC_EXAMPLE);
    }

    #[test]
    fn builds_the_spec_example_with_helpers() {
        let sums = |aof: &str, rdb: &str| -> Checksums {
            [
                ("./redis-server/appendonly.aof".into(), aof.to_string()),
                ("./redis-server/dump.rdb".into(), rdb.to_string()),
            ]
            .into_iter()
            .collect()
        };
        let aof = "be1b7e4e577b7cbcd556ec75f2f4b2e2d3afca1e40f8ce5a2b748b462cf4bd53";
        let mut meta = Metadata {
            backup_activity: BackupActivity {
                start_time: Some("2017/01/23 14:10:02 UTC".into()),
                finish_time: None,
            },
            ..Metadata::default()
        };
        meta.add_instance_artifact(
            "other-redis",
            "0",
            ArtifactMetadata::new(
                "redis-server",
                sums(
                    aof,
                    "3f1baf2147d8e9bc91fdbf21f7d384601d0c20130064a1f02d5d096ccf94a3fe",
                ),
            ),
        );
        meta.add_instance_artifact(
            "redis",
            "0",
            ArtifactMetadata::new(
                "redis-server",
                sums(
                    aof,
                    "ba3589985f5f4869fe62d155faee8e59c328b42875cb7e3fbb18c7b8152a92d2",
                ),
            ),
        );
        meta.add_instance_artifact(
            "redis",
            "1",
            ArtifactMetadata::new(
                "redis-server",
                sums(
                    aof,
                    "66f7f1c19210f601eb7e087f510cbf6c045ca70654dc4c323902204dc4c38108",
                ),
            ),
        );
        meta.add_custom_artifact(ArtifactMetadata::new(
            "redis-server-redis-test-backup-one-restore-all",
            [(
                "./redis/redis-backup".into(),
                "8d7fa73732d6dba6f6af01621552d3a6d814d2042c959465d0562a97c3f796b0".to_string(),
            )]
            .into_iter()
            .collect(),
        ));
        meta.backup_activity.finish_time = Some("2017/01/23 14:10:31 UTC".into());
        assert_eq!(meta.to_yaml(), SPEC_EXAMPLE);
        assert!(
            meta.find_custom_artifact("redis-server-redis-test-backup-one-restore-all")
                .is_some()
        );
        assert!(meta.find_custom_artifact("nope").is_none());
    }

    #[test]
    fn add_instance_artifact_appends_to_existing_instance() {
        let mut meta = Metadata::default();
        meta.add_instance_artifact("bosh", "0", ArtifactMetadata::new("a", Checksums::new()));
        meta.add_instance_artifact("bosh", "1", ArtifactMetadata::new("a", Checksums::new()));
        meta.add_instance_artifact("bosh", "0", ArtifactMetadata::new("b", Checksums::new()));
        assert_eq!(meta.instances.len(), 2);
        assert_eq!(meta.instances[0].artifacts.len(), 2);
        assert_eq!(meta.instances[0].artifacts[1].name, "b");
        assert_eq!(
            meta.to_yaml(),
            "instances:\n- name: bosh\n  index: \"0\"\n  artifacts:\n  - name: a\n    checksums: {}\n  - name: b\n    checksums: {}\n- name: bosh\n  index: \"1\"\n  artifacts:\n  - name: a\n    checksums: {}\n"
        );
    }

    #[test]
    fn lenient_parsing() {
        let text = "instances:\n- name: bosh\n  index: 0\n  extra: [1, 2]\n  artifacts:\n  - name: bosh\n    checksums:\n      ./backup: abc\nunknown_key: {a: b}\n";
        let meta = Metadata::parse(text).expect("parse");
        assert_eq!(meta.instances[0].index, "0");
        assert!(meta.custom_artifacts.is_empty());
        assert_eq!(meta.backup_activity, BackupActivity::default());

        let meta = Metadata::parse("custom_artifacts:\n- name: x\n  checksums:\n").expect("parse");
        assert!(meta.instances.is_empty());
        assert!(meta.custom_artifacts[0].checksums.is_empty());

        let meta = Metadata::parse("instances:\ncustom_artifacts: []\n").expect("parse");
        assert_eq!(meta, Metadata::default());

        // Scalars keep their raw text, as yaml.v2 does for Go string fields.
        let meta = Metadata::parse(
            "instances:\n- name: true\n  index: 007\n  artifacts:\n  - name: 0123\n    checksums:\n      ./a: 1.50\n      ./b: ~\n      ./c: 0x1F\n",
        )
        .expect("parse");
        assert_eq!(meta.instances[0].name, "true");
        assert_eq!(meta.instances[0].index, "007");
        let a = &meta.instances[0].artifacts[0];
        assert_eq!(a.name, "0123");
        assert_eq!(a.checksums[&EntryName::from("./a")], "1.50");
        assert_eq!(a.checksums[&EntryName::from("./b")], "");
        assert_eq!(a.checksums[&EntryName::from("./c")], "0x1F");

        assert_eq!(Metadata::parse("").expect("empty"), Metadata::default());
        assert_eq!(Metadata::parse("\n\n").expect("blank"), Metadata::default());

        let meta = Metadata::parse("backup_activity:\n  start_time: \"2017/01/23 14:10:02 UTC\"\n")
            .expect("parse");
        assert_eq!(
            meta.to_yaml(),
            "backup_activity:\n  start_time: 2017/01/23 14:10:02 UTC\n"
        );
    }

    #[test]
    fn malformed_metadata_names_the_problem() {
        for bad in [
            "instances: [\n",
            "instances:\n- name: [a, b]\n",
            "instances: 5\n",
            "instances:\n- artifacts:\n  - checksums: [a]\n",
            "- just\n- a list\n",
        ] {
            let err = Metadata::parse(bad).expect_err(bad);
            let msg = err.to_string();
            assert!(
                msg.starts_with("failed to unmarshal metadata: "),
                "{bad:?}: {msg}"
            );
            assert!(
                msg.len() > "failed to unmarshal metadata: ".len() + 5,
                "{msg}"
            );
        }
    }

    /// `count` checksums spread over 100 directories, as a job's tar would list them.
    fn many_checksums(prefix: &str, count: usize) -> Checksums {
        (0..count)
            .map(|i| {
                (
                    format!("./{prefix}dir{:02}/file-{i:07}", i % 100).into(),
                    format!("{i:064x}"),
                )
            })
            .collect()
    }

    #[test]
    fn a_million_checksums_in_one_job_read_back() {
        let mut meta = Metadata::default();
        meta.add_instance_artifact(
            "bosh",
            "0",
            ArtifactMetadata::new("bosh", many_checksums("", 1_000_000)),
        );
        meta.backup_activity.start_time = Some("2024/01/02 03:04:05 UTC".into());
        let yaml = meta.to_yaml();
        assert!(yaml.len() > 85_000_000, "{}", yaml.len());
        let back = Metadata::parse(&yaml).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.instances[0].artifacts[0].checksums.len(), 1_000_000);
        assert!(
            back == meta,
            "the metadata read back differs from what was written"
        );
    }

    #[test]
    fn many_jobs_and_instances_read_back() {
        let mut meta = Metadata::default();
        for instance in 0..50 {
            for job in 0..20 {
                meta.add_instance_artifact(
                    "group",
                    &instance.to_string(),
                    ArtifactMetadata::new(format!("job-{job}"), many_checksums("j", 200)),
                );
            }
        }
        meta.add_custom_artifact(ArtifactMetadata::new("custom", many_checksums("c", 10_000)));
        meta.backup_activity.start_time = Some("2024/01/02 03:04:05 UTC".into());
        meta.backup_activity.finish_time = Some("2024/01/02 04:04:05 UTC".into());
        let yaml = meta.to_yaml();
        let back = Metadata::parse(&yaml).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.instances.len(), 50);
        assert!(
            back == meta,
            "the metadata read back differs from what was written"
        );
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_refused() {
        // A billion laughs hidden in an unknown key of otherwise valid metadata.
        let mut bomb =
            String::from("instances:\n- name: bosh\n  index: \"0\"\nlol0: &a0 [\"lol\"]\n");
        for i in 1..=10 {
            let items = vec![format!("*a{}", i - 1); 10].join(", ");
            bomb.push_str(&format!("lol{i}: &a{i} [{items}]\n"));
        }
        let msg = Metadata::parse(&bomb).expect_err("bomb").to_string();
        assert!(
            msg.starts_with("failed to unmarshal metadata: ")
                && (msg.contains("budget breached") || msg.contains("alias replay limit")),
            "{msg}"
        );
        let deep = format!(
            "instances:\n- name: bosh\n  index: \"0\"\nextra: {}1{}\n",
            "[".repeat(200),
            "]".repeat(200)
        );
        let msg = Metadata::parse(&deep).expect_err("deep").to_string();
        assert!(
            msg.starts_with("failed to unmarshal metadata: ") && msg.contains("Depth"),
            "{msg}"
        );
    }

    #[test]
    fn emits_quotes_for_names_that_need_them() {
        let mut meta = Metadata::default();
        let mut sums = Checksums::new();
        sums.insert("./file10".into(), "0".into());
        sums.insert("./file9".into(), "a".repeat(64));
        sums.insert("./with space: colon".into(), "1e5".into());
        meta.add_instance_artifact("true", "12", ArtifactMetadata::new("null", sums));
        let yaml = meta.to_yaml();
        assert_eq!(
            yaml,
            format!(
                "instances:\n- name: \"true\"\n  index: \"12\"\n  artifacts:\n  - name: \"null\"\n    checksums:\n      ./file9: {}\n      ./file10: \"0\"\n      './with space: colon': \"1e5\"\n",
                "a".repeat(64)
            )
        );
        assert_eq!(Metadata::parse(&yaml).expect("reparse"), meta);
    }

    /// A name of 51 bytes at most has a single-line base64: a plain `!!binary` key.
    #[test]
    fn short_non_utf8_key_is_a_plain_binary_key() {
        let mut sums = Checksums::new();
        sums.insert(EntryName::from(b"./\xff".to_vec()), "aa".into());
        sums.insert(EntryName::from(b"./caf\xe9".to_vec()), "bb".into());
        sums.insert("./z".into(), "cc".into());
        let mut meta = Metadata::default();
        meta.add_custom_artifact(ArtifactMetadata::new("c", sums));
        let yaml = meta.to_yaml();
        // yaml.v2 sorts by runes, an invalid byte being U+FFFD, which is not a letter and
        // so sorts before `c` and `z`.
        assert_eq!(
            yaml,
            "custom_artifacts:\n- name: c\n  checksums:\n    !!binary Li//: aa\n    !!binary Li9jYWbp: bb\n    ./z: cc\n"
        );
        assert_eq!(Metadata::parse(&yaml).expect("reparse"), meta);
    }

    /// 52 bytes and more: base64 lines of 70 characters, each ending in a line break, as
    /// a literal scalar, which libyaml writes as a complex key.
    #[test]
    fn long_non_utf8_key_is_a_complex_binary_key() {
        let mut name = b"./".to_vec();
        name.extend(std::iter::repeat_n(0xe9u8, 58));
        let mut sums = Checksums::new();
        sums.insert(EntryName::from(name), "aa".into());
        let mut meta = Metadata::default();
        meta.add_instance_artifact("redis", "0", ArtifactMetadata::new("job", sums));
        let yaml = meta.to_yaml();
        // base64.b64encode(b"./" + b"\xe9" * 58): 80 characters, cut after 70.
        let line1 = "Li/p6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6e";
        assert_eq!(line1.len(), 70);
        assert_eq!(
            yaml,
            format!(
                "instances:\n- name: redis\n  index: \"0\"\n  artifacts:\n  - name: job\n    checksums:\n      ? !!binary |\n        {line1}\n        np6enp6enp\n      : aa\n"
            )
        );
        assert_eq!(Metadata::parse(&yaml).expect("reparse"), meta);
    }

    /// What Go's yaml.v2 wrote reads back; a `!!binary` key holding UTF-8 is that text, and
    /// plain keys in the same document keep their meaning (nulls, quoting).
    #[test]
    fn binary_keys_read_back_to_their_bytes() {
        let text = "instances:\n- name: r\n  index: \"0\"\n  artifacts:\n  - name: j\n    checksums:\n      !!binary Li9h: x\n      !!binary Li//: y\n      './q r': z\n      ./n: ~\n      ? !!binary |\n        Li/p\n      : w\ncustom_artifacts:\n- name: c\n  checksums:\n    ./p: v\n";
        let meta = Metadata::parse(text).expect("parse");
        let sums = &meta.instances[0].artifacts[0].checksums;
        assert_eq!(sums[&EntryName::from("./a")], "x");
        assert_eq!(sums[&EntryName::from(b"./\xff".to_vec())], "y");
        assert_eq!(sums[&EntryName::from(b"./\xe9".to_vec())], "w");
        assert_eq!(sums[&EntryName::from("./q r")], "z");
        assert_eq!(sums[&EntryName::from("./n")], "");
        assert_eq!(sums.len(), 5);
        assert_eq!(
            meta.custom_artifacts[0].checksums[&EntryName::from("./p")],
            "v"
        );
        let bad = "instances:\n- artifacts:\n  - checksums:\n      !!binary '***': x\n";
        let err = Metadata::parse(bad).expect_err("not base64");
        assert!(err.to_string().contains("line 4"), "{err}");
    }

    #[test]
    fn checksums_scan_errors_name_the_position() {
        let bad = "instances:\n- artifacts:\n  - checksums:\n      !!binary '***': x\n";
        let err = tagged_checksums(bad).expect_err("not base64");
        assert!(
            matches!(
                err,
                ChecksumsScanError::KeyNotBase64 {
                    line: 4,
                    column: 16,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("checksums key at line 4, column 16: !!binary is not base64: "),
            "{err}"
        );
        let alias = "a: &x {f: s}\ninstances:\n- artifacts:\n  - checksums: *x\n";
        let err = tagged_checksums(alias).expect_err("alias");
        assert_eq!(
            err.to_string(),
            "checksums at line 4, column 16: aliases are not supported here"
        );
        let nested = "instances:\n- artifacts:\n  - checksums:\n      f: [s]\n";
        let err = tagged_checksums(nested).expect_err("not a string");
        assert_eq!(
            err.to_string(),
            "checksums at line 4: entry at line 4, column 10 is not a string"
        );
    }
}
