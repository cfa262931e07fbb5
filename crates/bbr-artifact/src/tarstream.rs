//! Streaming tar parsing and hashing.
//!
//! [`TarHasher`] is fed the raw bytes of an uncompressed tar stream exactly as they
//! arrive (arbitrary chunk boundaries, including inside headers) and SHA-256 hashes the
//! content of every entry straight from the fed slices: only the 512-byte headers (and
//! the small GNU long-name / PAX records) are ever copied.
//!
//! It applies every header kind the VM's GNU tar 1.34 applies, in GNU tar's precedence
//! (checked against `tar -tv` and extraction, see `tests/gnu_tar_oracle.rs`), and refuses
//! whatever it does not model, so that the names, types, link targets and sizes it
//! reports are what `tar -x` creates:
//!
//! * the entry name is the PAX `path` of the last `x` header before the entry, else the
//!   last GNU `L` record, else `prefix/name` when the magic is `ustar\0` (whatever the
//!   version field), else the name field; likewise the link target from PAX `linkpath`,
//!   the last `K` record, the link field; the size from PAX `size`, else the size field;
//! * a later `x` header replaces an earlier one (an empty `x` clears it); a PAX value
//!   that is empty, holds a NUL or is not a decimal number where one is due is refused;
//! * PAX keywords other than `path`, `linkpath`, `size` and the plain metadata ones
//!   (`atime`, `mtime`, `ctime`, `uid`, `gid`, `uname`, `gname`, `comment`, `charset`)
//!   are refused, naming the keyword (GNU sparse maps, dumpdirs, volume and xattr/ACL
//!   records);
//! * a global `g` header holding any record is refused (GNU tar applies it to every
//!   following entry); an empty one is accepted;
//! * entry types: `0`/`\0` (a directory when the name ends in `/`), `1`, `2`, `5`,
//!   and `3`/`4`/`6` (devices and FIFOs, reported so that [`crate::safety`] can refuse
//!   them by name); every other type (`7`, `D`, `S`, `M`, `V`, `N`, ...) is refused;
//! * header-only types (links, directories, devices, FIFOs) with a non-zero size, link
//!   entries without a target, and empty names are refused (GNU tar would skip or fail
//!   on them where another reader would not).
//!
//! The checksums follow Go bbr's local `CalculateChecksum`
//! (docs/artifact-format.md#checksums): every entry except directories and `./`, keyed
//! by the name as stored in the tar, with symlinks, hardlinks and devices hashed as empty
//! content. [`TarSummary::file_checksums`] gives instead what `find . -type f | xargs
//! shasum` would report after extraction (regular files, hardlinks resolved to their
//! target), which is what the remote side records in `metadata`.
//!
//! [`hash_tar_file`] hashes a tar file; [`scan_tar_file`] only walks its headers,
//! seeking over the content.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::entry_name::EntryName;
use crate::error::ArtifactError;
use crate::metadata::Checksums;

pub(crate) const BLOCK: usize = 512;
/// Largest GNU long-name or PAX record accepted (they are buffered in memory).
pub(crate) const META_LIMIT: u64 = 1 << 20;
/// Read size of [`hash_tar_file`].
const READ_CHUNK: usize = 256 * 1024;
/// SHA-256 of the empty string.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What kind of filesystem object a tar entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file (`0`, `\0`, `7`).
    File,
    /// A directory (`5`, GNU dump-dir `D`, or a `\0` entry whose name ends in `/`).
    Dir,
    /// A symbolic link (`2`).
    Symlink,
    /// A hard link to an earlier entry (`1`).
    Hardlink,
    /// A character device (`3`), with its major and minor numbers.
    CharDevice {
        /// Major device number.
        major: u32,
        /// Minor device number.
        minor: u32,
    },
    /// A block device (`4`), with its major and minor numbers.
    BlockDevice {
        /// Major device number.
        major: u32,
        /// Minor device number.
        minor: u32,
    },
    /// A FIFO (`6`).
    Fifo,
}

impl EntryKind {
    /// Whether this is a device node or a FIFO (refused by [`crate::safety`]).
    pub fn is_special(self) -> bool {
        matches!(
            self,
            Self::CharDevice { .. } | Self::BlockDevice { .. } | Self::Fifo
        )
    }

    /// `character device 1,1`, `block device 8,0`, `FIFO`, `regular file`, ...
    pub fn describe(self) -> String {
        match self {
            Self::File => "regular file".into(),
            Self::Dir => "directory".into(),
            Self::Symlink => "symlink".into(),
            Self::Hardlink => "hardlink".into(),
            Self::CharDevice { major, minor } => format!("character device {major},{minor}"),
            Self::BlockDevice { major, minor } => format!("block device {major},{minor}"),
            Self::Fifo => "FIFO".into(),
        }
    }
}

/// The set-uid and set-gid bits of a mode.
pub const SETID_BITS: u32 = 0o6000;

/// One entry of a tar stream (meta records such as PAX or GNU long names excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntryInfo {
    /// The name exactly as stored (after PAX / GNU long-name overrides), e.g. `./a/b`:
    /// any bytes, as on the file system.
    pub name: EntryName,
    /// The entry type.
    pub kind: EntryKind,
    /// Content size in bytes (0 for header-only types).
    pub size: u64,
    /// Target of a symlink or hardlink, as stored (any bytes).
    pub link_name: Option<EntryName>,
    /// The permission bits of the header's mode field (`0o7777` at most).
    pub mode: u32,
    /// Offset in the stream of the entry's own header block (after its `L`/`K`/`x`
    /// records), where [`strip_setid`] can rewrite it.
    pub header_offset: u64,
}

impl TarEntryInfo {
    /// Whether the mode has the set-uid or set-gid bit.
    pub fn has_setid(&self) -> bool {
        self.mode & SETID_BITS != 0
    }
}

/// A replacement for the 512-byte header block at `offset` of a tar stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderPatch {
    /// The entry whose header this is.
    pub entry: EntryName,
    /// Offset of the header block in the stream.
    pub offset: u64,
    /// The mode before the rewrite.
    pub old_mode: u32,
    /// The rewritten block.
    pub block: [u8; BLOCK],
}

/// The header `block` with the set-uid and set-gid bits cleared from its mode field and
/// the header checksum recomputed; `None` when its checksum or mode field is invalid.
pub fn strip_setid(block: &[u8; BLOCK]) -> Option<[u8; BLOCK]> {
    verify_checksum(block).ok()?;
    let mode = parse_numeric(&block[100..108]).ok()?;
    let mut out = *block;
    out[100..108]
        .copy_from_slice(format!("{:07o}\0", mode & 0o7777 & !u64::from(SETID_BITS)).as_bytes());
    out[148..156].copy_from_slice(b"        ");
    let sum: u64 = out.iter().map(|&b| u64::from(b)).sum();
    out[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Some(out)
}

/// Overlays the parts of `patches` that fall inside `buf`, which holds the stream bytes
/// starting at offset `start`.
pub fn apply_patches(patches: &[HeaderPatch], start: u64, buf: &mut [u8]) {
    let end = start + buf.len() as u64;
    for p in patches {
        let (p_start, p_end) = (p.offset, p.offset + BLOCK as u64);
        if p_end <= start || p_start >= end {
            continue;
        }
        let from = p_start.max(start);
        let to = p_end.min(end);
        let (b0, b1) = ((from - start) as usize, (to - start) as usize);
        let (s0, s1) = ((from - p_start) as usize, (to - p_start) as usize);
        buf[b0..b1].copy_from_slice(&p.block[s0..s1]);
    }
}

/// Reads the header blocks of `entries` that carry a set-uid or set-gid bit from the tar
/// file at `path` and returns them rewritten by [`strip_setid`]. Fails when a block read
/// back is not the header it was (the file changed since it was scanned).
pub fn setid_patches(
    path: &Path,
    entries: &[TarEntryInfo],
) -> Result<Vec<HeaderPatch>, ArtifactError> {
    use std::os::unix::fs::FileExt;
    let wanted: Vec<&TarEntryInfo> = entries.iter().filter(|e| e.has_setid()).collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let read_err = |cause| ArtifactError::ReadFile {
        path: path.to_path_buf(),
        cause,
    };
    let file = File::open(path).map_err(read_err)?;
    let mut patches = Vec::with_capacity(wanted.len());
    for e in wanted {
        let mut block = [0u8; BLOCK];
        file.read_exact_at(&mut block, e.header_offset)
            .map_err(read_err)?;
        let mode = parse_numeric(&block[100..108]).ok();
        let stripped =
            strip_setid(&block).filter(|_| mode.map(|m| m & 0o7777) == Some(u64::from(e.mode)));
        let Some(stripped) = stripped else {
            return Err(corrupt(
                Some(e.name.to_string()),
                format!(
                    "the header at offset {} changed since the tar was checked",
                    e.header_offset
                ),
            )
            .with_file(path));
        };
        patches.push(HeaderPatch {
            entry: e.name.clone(),
            offset: e.header_offset,
            old_mode: e.mode,
            block: stripped,
        });
    }
    Ok(patches)
}

/// The result of reading a whole tar stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TarSummary {
    /// Go bbr's local checksums: every non-directory entry except `./`, symlinks and
    /// hardlinks as the SHA-256 of empty content. Empty for [`scan_tar_file`].
    pub checksums: Checksums,
    /// All entries in stream order, directories included.
    pub entries: Vec<TarEntryInfo>,
    /// Number of bytes of the stream, including padding and the end-of-archive blocks.
    pub total_bytes: u64,
}

impl TarSummary {
    /// Names of the files that extracting the tar creates as regular files: regular
    /// file entries plus hardlinks whose target is one (what `find . -type f` lists).
    pub fn file_names(&self) -> Vec<EntryName> {
        self.file_map(|_| ()).into_keys().collect()
    }

    /// What `find . -type f | xargs shasum -a 256` would report after extraction:
    /// the checksums of regular files, hardlinks carrying their target's checksum.
    /// Only meaningful for a summary produced by hashing ([`TarHasher`], [`hash_tar_file`]).
    pub fn file_checksums(&self) -> Checksums {
        self.file_map(|name| self.checksums.get(name).cloned())
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect()
    }

    fn file_map<T: Clone>(&self, value_of: impl Fn(&EntryName) -> T) -> BTreeMap<EntryName, T> {
        let mut files: BTreeMap<EntryName, T> = BTreeMap::new();
        for entry in &self.entries {
            match entry.kind {
                EntryKind::File => {
                    files.insert(entry.name.clone(), value_of(&entry.name));
                }
                EntryKind::Hardlink => {
                    let target = entry.link_name.as_ref().and_then(|t| files.get(t).cloned());
                    match target {
                        Some(v) => {
                            files.insert(entry.name.clone(), v);
                        }
                        None => {
                            files.remove(&entry.name);
                        }
                    }
                }
                _ => {
                    files.remove(&entry.name);
                }
            }
        }
        files
    }
}

/// Incremental zero-copy tar parser hashing every entry's content; see the module docs.
///
/// ```
/// # use bbr_artifact::TarHasher;
/// let mut hasher = TarHasher::new();
/// # let bytes = vec![0u8; 1024];
/// for chunk in bytes.chunks(4096) {
///     hasher.feed(chunk)?;
/// }
/// let summary = hasher.finish()?;
/// # assert!(summary.entries.is_empty());
/// # Ok::<(), bbr_artifact::ArtifactError>(())
/// ```
#[derive(Debug)]
pub struct TarHasher {
    parser: Parser,
}

impl Default for TarHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl TarHasher {
    /// A parser positioned at the start of a tar stream.
    pub fn new() -> Self {
        Self {
            parser: Parser::new(true),
        }
    }

    /// Consumes the next bytes of the stream. After an error the hasher is poisoned:
    /// every further call fails.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), ArtifactError> {
        self.parser.feed(chunk)
    }

    /// Bytes fed so far.
    pub fn bytes_fed(&self) -> u64 {
        self.parser.total
    }

    /// Whether the end-of-archive marker has been seen.
    pub fn is_complete(&self) -> bool {
        matches!(self.parser.state, State::End)
    }

    /// Ends the stream: fails with [`ArtifactError::Truncated`] unless it ended with
    /// the end-of-archive marker (two zero blocks) after complete entries.
    pub fn finish(self) -> Result<TarSummary, ArtifactError> {
        self.parser.finish()
    }
}

/// Hashes a tar file through a [`TarHasher`], reading 256 KiB at a time with the kernel
/// asked to read ahead ([`ArtifactFileReader`](crate::ArtifactFileReader)), so that a
/// tar not in the page cache streams from disk while the previous chunk is hashed.
/// Errors name the file.
pub fn hash_tar_file(path: &Path) -> Result<TarSummary, ArtifactError> {
    let read_err = |cause| ArtifactError::ReadFile {
        path: path.to_path_buf(),
        cause,
    };
    let mut file =
        crate::artifact_file::ArtifactFileReader::new(File::open(path).map_err(read_err)?);
    hash_tar_reader(&mut file, path)
}

/// [`hash_tar_file`] over any reader (an object-store stream, ...); `path` names the tar
/// in errors (a read error is [`ArtifactError::ReadFile`]).
pub fn hash_tar_reader(file: &mut dyn Read, path: &Path) -> Result<TarSummary, ArtifactError> {
    let read_err = |cause| ArtifactError::ReadFile {
        path: path.to_path_buf(),
        cause,
    };
    let mut hasher = TarHasher::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        hasher.feed(&buf[..n]).map_err(|e| e.with_file(path))?;
    }
    hasher.finish().map_err(|e| e.with_file(path))
}

/// Walks the headers of a tar file, seeking over entry content (nothing is hashed, so
/// [`TarSummary::checksums`] is empty). Checks the same structure as [`hash_tar_file`]:
/// valid headers, complete content, end-of-archive marker. Errors name the file.
pub fn scan_tar_file(path: &Path) -> Result<TarSummary, ArtifactError> {
    let read_err = |cause| ArtifactError::ReadFile {
        path: path.to_path_buf(),
        cause,
    };
    let file = File::open(path).map_err(read_err)?;
    let len = file.metadata().map_err(read_err)?.len();
    let mut reader = BufReader::with_capacity(32 * 1024, file);
    let mut parser = Parser::new(false);
    let mut pos: u64 = 0;
    loop {
        let skip = parser.skippable();
        if skip > 0 {
            let step = skip.min(len.saturating_sub(pos));
            if step == 0 {
                break; // truncated: finish() reports where
            }
            let offset = i64::try_from(step).map_err(|_| {
                read_err(std::io::Error::new(
                    ErrorKind::InvalidInput,
                    "entry too large to seek over",
                ))
            })?;
            reader.seek_relative(offset).map_err(read_err)?;
            pos += step;
            parser.skip(step);
            continue;
        }
        if matches!(parser.state, State::End) {
            break;
        }
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        if buf.is_empty() {
            break;
        }
        let n = buf.len().min(BLOCK);
        parser.feed(&buf[..n]).map_err(|e| e.with_file(path))?;
        reader.consume(n);
        pos += n as u64;
    }
    let mut summary = parser.finish().map_err(|e| e.with_file(path))?;
    summary.total_bytes = len;
    Ok(summary)
}

// ---------------------------------------------------------------------------------

#[derive(Debug)]
enum State {
    /// Accumulating a header block (`hdr_len` bytes buffered so far).
    Header,
    /// Streaming the content of the current entry, then its padding.
    Content { remaining: u64, pad: u64 },
    /// Buffering the content of a GNU long-name/long-link or PAX record.
    Meta { kind: u8, remaining: u64, pad: u64 },
    /// After the end-of-archive marker; further bytes are ignored.
    End,
    /// An error was returned; the stream cannot continue.
    Failed,
}

/// The overrides of the last PAX `x` header (GNU tar: a later `x` replaces it whole).
#[derive(Debug, Default)]
struct PaxOverrides {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
}

#[derive(Debug, Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<PaxOverrides>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.long_name.is_none() && self.long_link.is_none() && self.pax.is_none()
    }
}

/// One PAX record: keyword and value.
type PaxRecord<'b> = (&'b [u8], &'b [u8]);

/// PAX keywords that only carry metadata GNU tar applies without changing what is
/// extracted where (times, ownership, comments).
const PAX_METADATA_KEYS: &[&[u8]] = &[
    b"atime", b"mtime", b"ctime", b"uid", b"gid", b"uname", b"gname", b"comment", b"charset",
];

#[derive(Debug)]
struct Current {
    name: EntryName,
    size: u64,
    /// Present when this entry's content is hashed.
    hasher: Option<Sha256>,
}

#[derive(Debug)]
pub(crate) struct Parser {
    hash: bool,
    state: State,
    hdr: [u8; BLOCK],
    hdr_len: usize,
    zero_blocks: u8,
    pending: Pending,
    meta_buf: Vec<u8>,
    current: Option<Current>,
    summary: TarSummary,
    total: u64,
    /// Stream offset of the header block being parsed.
    header_offset: u64,
}

fn truncated(entry: Option<String>, detail: String) -> ArtifactError {
    ArtifactError::Truncated {
        file: None,
        entry,
        detail,
    }
}

fn corrupt(entry: Option<String>, detail: String) -> ArtifactError {
    ArtifactError::Corrupt {
        file: None,
        entry,
        detail,
    }
}

fn unsupported(entry: Option<String>, detail: String) -> ArtifactError {
    ArtifactError::Unsupported {
        file: None,
        entry,
        detail,
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

impl Parser {
    pub(crate) fn new(hash: bool) -> Self {
        Self {
            hash,
            state: State::Header,
            hdr: [0; BLOCK],
            hdr_len: 0,
            zero_blocks: 0,
            pending: Pending::default(),
            meta_buf: Vec::new(),
            current: None,
            summary: TarSummary::default(),
            total: 0,
            header_offset: 0,
        }
    }

    /// Where in the stream we are, for error messages.
    fn position(&self) -> String {
        match self.summary.entries.last() {
            Some(e) => format!("after entry {}", e.name),
            None => "at the first header".to_string(),
        }
    }

    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<(), ArtifactError> {
        if matches!(self.state, State::Failed) {
            return Err(corrupt(
                None,
                "the stream already failed; no more data is accepted".into(),
            ));
        }
        self.total += chunk.len() as u64;
        match self.feed_inner(chunk) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    fn feed_inner(&mut self, chunk: &[u8]) -> Result<(), ArtifactError> {
        let base = self.total - chunk.len() as u64;
        let mut data = chunk;
        while !data.is_empty() {
            match &mut self.state {
                State::Header => {
                    if self.hdr_len == 0
                        && let Some((block, rest)) = data.split_first_chunk::<BLOCK>()
                    {
                        // A whole header in the fed slice: parsed in place.
                        self.header_offset = base + (chunk.len() - data.len()) as u64;
                        data = rest;
                        self.on_header(block)?;
                    } else {
                        let n = (BLOCK - self.hdr_len).min(data.len());
                        if self.hdr_len == 0 {
                            self.header_offset = base + (chunk.len() - data.len()) as u64;
                        }
                        self.hdr[self.hdr_len..self.hdr_len + n].copy_from_slice(&data[..n]);
                        self.hdr_len += n;
                        data = &data[n..];
                        if self.hdr_len == BLOCK {
                            self.hdr_len = 0;
                            let block = self.hdr;
                            self.on_header(&block)?;
                        }
                    }
                }
                State::Content { remaining, pad } => {
                    if *remaining > 0 {
                        let n =
                            usize::try_from(*remaining).map_or(data.len(), |r| r.min(data.len()));
                        if let Some(hasher) = self.current.as_mut().and_then(|c| c.hasher.as_mut())
                        {
                            hasher.update(&data[..n]);
                        }
                        *remaining -= n as u64;
                        data = &data[n..];
                        if *remaining == 0 {
                            let pad = *pad;
                            self.finish_entry();
                            if pad == 0 {
                                self.state = State::Header;
                            }
                        }
                    } else {
                        let n = usize::try_from(*pad).map_or(data.len(), |p| p.min(data.len()));
                        *pad -= n as u64;
                        data = &data[n..];
                        if *pad == 0 {
                            self.state = State::Header;
                        }
                    }
                }
                State::Meta {
                    kind,
                    remaining,
                    pad,
                } => {
                    if *remaining > 0 {
                        let n =
                            usize::try_from(*remaining).map_or(data.len(), |r| r.min(data.len()));
                        self.meta_buf.extend_from_slice(&data[..n]);
                        *remaining -= n as u64;
                        data = &data[n..];
                        if *remaining == 0 {
                            let (kind, pad) = (*kind, *pad);
                            self.finish_meta(kind)?;
                            self.state = if pad == 0 {
                                State::Header
                            } else {
                                State::Meta {
                                    kind,
                                    remaining: 0,
                                    pad,
                                }
                            };
                        }
                    } else {
                        let n = usize::try_from(*pad).map_or(data.len(), |p| p.min(data.len()));
                        *pad -= n as u64;
                        data = &data[n..];
                        if *pad == 0 {
                            self.state = State::Header;
                        }
                    }
                }
                State::End => return Ok(()),
                State::Failed => {
                    return Err(corrupt(None, "the stream already failed".into()));
                }
            }
        }
        Ok(())
    }

    /// The entries parsed so far, in stream order.
    pub(crate) fn entries(&self) -> &[TarEntryInfo] {
        &self.summary.entries
    }

    /// How many bytes [`feed`](Self::feed) can take before the parser reaches its next
    /// decision point: the end of the header block being filled, of a meta record or of
    /// an entry's content and padding (unbounded after the end-of-archive marker). A feed
    /// of at most this many bytes parses at most one header.
    pub(crate) fn step_len(&self) -> u64 {
        match &self.state {
            State::Header => (BLOCK - self.hdr_len) as u64,
            State::Content { remaining, pad } | State::Meta { remaining, pad, .. } => {
                remaining.saturating_add(*pad)
            }
            State::End | State::Failed => u64::MAX,
        }
    }

    /// Whether every byte fed so far belongs to a complete entry header (with the
    /// long-name and PAX records governing it), that entry's content, or the
    /// end-of-archive marker and what follows it: nothing is pending that could still
    /// change what an already parsed header means.
    pub(crate) fn is_settled(&self) -> bool {
        match &self.state {
            State::Header => self.hdr_len == 0 && self.pending.is_empty() && self.zero_blocks == 0,
            State::Content { .. } | State::End => true,
            State::Meta { .. } | State::Failed => false,
        }
    }

    /// Bytes of content and padding that can be skipped without being looked at
    /// (only when not hashing).
    fn skippable(&self) -> u64 {
        match (&self.state, self.hash) {
            (State::Content { remaining, pad }, false) => remaining.saturating_add(*pad),
            _ => 0,
        }
    }

    /// Advances over `n <= skippable()` bytes that were not read.
    fn skip(&mut self, mut n: u64) {
        self.total += n;
        if let State::Content { remaining, pad } = &mut self.state {
            let r = n.min(*remaining);
            *remaining -= r;
            n -= r;
            if *remaining == 0 && r > 0 {
                let pad_left = *pad;
                self.finish_entry();
                self.state = State::Content {
                    remaining: 0,
                    pad: pad_left,
                };
            }
            if let State::Content { remaining: 0, pad } = &mut self.state {
                let p = n.min(*pad);
                *pad -= p;
                if *pad == 0 {
                    self.state = State::Header;
                }
            }
        }
    }

    fn finish_entry(&mut self) {
        if let Some(current) = self.current.take()
            && let Some(hasher) = current.hasher
        {
            let digest = hasher.finalize();
            self.summary
                .checksums
                .insert(current.name, hex::encode(digest));
        }
    }

    fn on_header(&mut self, block: &[u8; BLOCK]) -> Result<(), ArtifactError> {
        if block.iter().all(|&b| b == 0) {
            if !self.pending.is_empty() {
                return Err(corrupt(
                    None,
                    format!(
                        "a long-name or PAX record {} is followed by the end-of-archive marker instead of an entry",
                        self.position()
                    ),
                ));
            }
            self.zero_blocks += 1;
            if self.zero_blocks == 2 {
                self.state = State::End;
            }
            return Ok(());
        }
        if self.zero_blocks > 0 {
            return Err(corrupt(
                None,
                format!(
                    "a single zero block {} is followed by another header",
                    self.position()
                ),
            ));
        }

        let raw_name = cstr(&block[0..100]);
        let shown = || String::from_utf8_lossy(raw_name).into_owned();
        verify_checksum(block).map_err(|detail| {
            corrupt(
                Some(shown()),
                format!("{detail} (header {})", self.position()),
            )
        })?;
        let typeflag = block[156];
        let header_size = parse_numeric(&block[124..136])
            .map_err(|detail| corrupt(Some(shown()), format!("invalid size field: {detail}")))?;

        if matches!(typeflag, b'L' | b'K' | b'x' | b'g') {
            if header_size > META_LIMIT {
                return Err(unsupported(
                    Some(shown()),
                    format!(
                        "{} record of {header_size} bytes exceeds the {META_LIMIT}-byte limit",
                        meta_kind_name(typeflag)
                    ),
                ));
            }
            self.meta_buf.clear();
            if header_size == 0 {
                self.finish_meta(typeflag)?;
                self.state = State::Header;
            } else {
                self.state = State::Meta {
                    kind: typeflag,
                    remaining: header_size,
                    pad: padding(header_size),
                };
            }
            return Ok(());
        }

        // A real entry: apply pending overrides in GNU tar's precedence (PAX over GNU
        // long records over the header fields).
        let pending = std::mem::take(&mut self.pending);
        let pax = pending.pax.unwrap_or_default();
        // GNU tar joins the prefix field whenever the magic is "ustar\0", whatever the
        // version field says.
        let ustar = &block[257..263] == b"ustar\0";
        let name_bytes: Vec<u8> = if let Some(p) = pax.path {
            p
        } else if let Some(p) = pending.long_name {
            p
        } else {
            let prefix = if ustar {
                cstr(&block[345..500])
            } else {
                &[][..]
            };
            if prefix.is_empty() {
                raw_name.to_vec()
            } else {
                let mut v = prefix.to_vec();
                v.push(b'/');
                v.extend_from_slice(raw_name);
                v
            }
        };
        let link_bytes: Vec<u8> = if let Some(l) = pax.linkpath {
            l
        } else if let Some(l) = pending.long_link {
            l
        } else {
            cstr(&block[157..257]).to_vec()
        };
        // Names are byte strings (see `EntryName`): GNU tar and Go bbr take any bytes.
        let name = EntryName::from(name_bytes);
        if name.is_empty() {
            return Err(corrupt(
                None,
                format!("entry with an empty name {}", self.position()),
            ));
        }
        let size = pax.size.unwrap_or(header_size);
        let mode = parse_numeric(&block[100..108]).map_err(|detail| {
            corrupt(
                Some(name.to_string()),
                format!("invalid mode field: {detail}"),
            )
        })?;
        let mode = u32::try_from(mode & 0o7777).unwrap_or(0);
        let device = |what: &str| -> Result<(u32, u32), ArtifactError> {
            let field = |range: std::ops::Range<usize>| {
                parse_numeric(&block[range])
                    .ok()
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| {
                        corrupt(Some(name.to_string()), format!("invalid {what} number"))
                    })
            };
            Ok((field(329..337)?, field(337..345)?))
        };

        let kind = match typeflag {
            // GNU tar extracts a regular entry whose name ends in '/' as a directory.
            b'0' | b'\0' if name.as_bytes().ends_with(b"/") => EntryKind::Dir,
            b'0' | b'\0' => EntryKind::File,
            b'1' => EntryKind::Hardlink,
            b'2' => EntryKind::Symlink,
            b'5' => EntryKind::Dir,
            b'3' => {
                let (major, minor) = device("character device")?;
                EntryKind::CharDevice { major, minor }
            }
            b'4' => {
                let (major, minor) = device("block device")?;
                EntryKind::BlockDevice { major, minor }
            }
            b'6' => EntryKind::Fifo,
            other => {
                return Err(unsupported(Some(name.to_string()), typeflag_refusal(other)));
            }
        };
        if kind != EntryKind::File && size != 0 {
            return Err(unsupported(
                Some(name.to_string()),
                format!(
                    "a {} (type '{}') with a size of {size} bytes: GNU tar and other readers disagree on where the next header is",
                    kind.describe(),
                    typeflag.escape_ascii()
                ),
            ));
        }
        let link_name = if matches!(kind, EntryKind::Symlink | EntryKind::Hardlink) {
            if link_bytes.is_empty() {
                return Err(corrupt(
                    Some(name.to_string()),
                    format!("{} without a target", kind.describe()),
                ));
            }
            Some(EntryName::from(link_bytes))
        } else {
            None
        };
        let data_size = size;
        let checksummed = kind != EntryKind::Dir && name != "./";

        self.summary.entries.push(TarEntryInfo {
            name: name.clone(),
            kind,
            size: data_size,
            link_name,
            mode,
            header_offset: self.header_offset,
        });
        let hasher = (self.hash && checksummed).then(Sha256::new);
        self.current = Some(Current {
            name,
            size: data_size,
            hasher,
        });
        if data_size == 0 {
            self.finish_entry();
            self.state = State::Header;
        } else {
            self.state = State::Content {
                remaining: data_size,
                pad: padding(data_size),
            };
        }
        Ok(())
    }

    fn finish_meta(&mut self, kind: u8) -> Result<(), ArtifactError> {
        let buf = std::mem::take(&mut self.meta_buf);
        match kind {
            b'L' => self.pending.long_name = Some(cstr(&buf).to_vec()),
            b'K' => self.pending.long_link = Some(cstr(&buf).to_vec()),
            b'x' => self.pending.pax = Some(self.parse_pax(&buf)?),
            _ => self.check_global_pax(&buf)?,
        }
        Ok(())
    }

    /// Splits PAX extended-header data into `(keyword, value)` records.
    fn pax_records<'b>(&self, mut buf: &'b [u8]) -> Result<Vec<PaxRecord<'b>>, ArtifactError> {
        let pos = self.position();
        let bad = |what: &str| corrupt(None, format!("malformed PAX record ({what}) {pos}"));
        let mut records = Vec::new();
        while !buf.is_empty() {
            let space = buf
                .iter()
                .position(|&b| b == b' ')
                .ok_or_else(|| bad("no length"))?;
            let digits = &buf[..space];
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(bad("invalid length"));
            }
            let len: usize = std::str::from_utf8(digits)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("invalid length"))?;
            if len <= space + 1 || len > buf.len() || buf[len - 1] != b'\n' {
                return Err(bad("bad length"));
            }
            let record = &buf[space + 1..len - 1];
            buf = &buf[len..];
            let eq = record
                .iter()
                .position(|&b| b == b'=')
                .ok_or_else(|| bad("no '='"))?;
            records.push((&record[..eq], &record[eq + 1..]));
        }
        Ok(records)
    }

    /// A global header with any record is refused: GNU tar applies it to every
    /// following entry, which this parser does not model.
    fn check_global_pax(&self, buf: &[u8]) -> Result<(), ArtifactError> {
        if let Some((key, _)) = self.pax_records(buf)?.first() {
            return Err(unsupported(
                None,
                format!(
                    "a global PAX header (type 'g') {} sets {}: global headers apply to every following entry and are refused",
                    self.position(),
                    String::from_utf8_lossy(key)
                ),
            ));
        }
        Ok(())
    }

    fn parse_pax(&self, buf: &[u8]) -> Result<PaxOverrides, ArtifactError> {
        let mut out = PaxOverrides::default();
        for (key, value) in self.pax_records(buf)? {
            let shown_key = String::from_utf8_lossy(key).into_owned();
            let entry = out
                .path
                .as_deref()
                .map(|p| String::from_utf8_lossy(p).into_owned());
            if key.starts_with(b"GNU.sparse.") {
                return Err(unsupported(
                    entry,
                    format!("GNU sparse files are not supported (PAX record {shown_key})"),
                ));
            }
            let bad_value = |why: &str| {
                unsupported(
                    entry.clone(),
                    format!("PAX record {shown_key} {why} {}", self.position()),
                )
            };
            match key {
                b"path" | b"linkpath" => {
                    if value.is_empty() {
                        return Err(bad_value("is empty"));
                    }
                    if value.contains(&0) {
                        return Err(bad_value("holds a NUL byte"));
                    }
                    if key == b"path" {
                        out.path = Some(value.to_vec());
                    } else {
                        out.linkpath = Some(value.to_vec());
                    }
                }
                b"size" => {
                    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                        return Err(bad_value("is not a decimal number"));
                    }
                    let size = std::str::from_utf8(value)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| bad_value("is out of range"))?;
                    out.size = Some(size);
                }
                k if PAX_METADATA_KEYS.contains(&k) => {}
                _ => {
                    return Err(unsupported(
                        entry,
                        format!(
                            "PAX record {shown_key} {} is not supported (it could change what GNU tar extracts)",
                            self.position()
                        ),
                    ));
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn finish(self) -> Result<TarSummary, ArtifactError> {
        let pos = self.position();
        match self.state {
            State::End => {
                let mut summary = self.summary;
                summary.total_bytes = self.total;
                Ok(summary)
            }
            State::Header if self.hdr_len > 0 => Err(truncated(
                None,
                format!(
                    "stream ends inside a header ({} of 512 bytes) {pos}",
                    self.hdr_len
                ),
            )),
            State::Header if self.zero_blocks == 1 => Err(truncated(
                None,
                format!("stream ends after one of the two end-of-archive zero blocks {pos}"),
            )),
            State::Header if !self.pending.is_empty() => Err(truncated(
                None,
                format!("stream ends after a long-name or PAX record {pos}"),
            )),
            State::Header => Err(truncated(
                None,
                format!("stream ends without the end-of-archive marker (two zero blocks) {pos}"),
            )),
            State::Content { remaining, pad } => {
                let (name, size) = match &self.current {
                    Some(c) => (c.name.to_string(), c.size),
                    None => (
                        self.summary
                            .entries
                            .last()
                            .map(|e| e.name.to_string())
                            .unwrap_or_default(),
                        0,
                    ),
                };
                if remaining > 0 {
                    Err(truncated(
                        Some(name),
                        format!(
                            "stream ends inside the content, {} of {size} bytes present",
                            size - remaining
                        ),
                    ))
                } else {
                    Err(truncated(
                        Some(name),
                        format!(
                            "stream ends inside the padding after the content ({pad} bytes missing)"
                        ),
                    ))
                }
            }
            State::Meta { kind, .. } => Err(truncated(
                None,
                format!("stream ends inside a {} record {pos}", meta_kind_name(kind)),
            )),
            State::Failed => Err(corrupt(None, "the stream already failed".into())),
        }
    }
}

/// Why an entry type is refused.
fn typeflag_refusal(typeflag: u8) -> String {
    let what = match typeflag {
        b'7' => "contiguous files",
        b'D' => "GNU dump directories",
        b'S' => "GNU sparse files",
        b'M' => "GNU multi-volume continuation entries",
        b'V' => "GNU volume labels",
        b'N' => "old GNU long-name entries",
        _ => "entries of an unknown type",
    };
    format!(
        "{what} (type '{}') are not supported: GNU tar -c never writes them for a job's directory",
        typeflag.escape_ascii()
    )
}

fn meta_kind_name(kind: u8) -> &'static str {
    match kind {
        b'L' => "GNU long-name",
        b'K' => "GNU long-link",
        b'x' => "PAX",
        _ => "PAX global",
    }
}

/// The bytes up to the first NUL.
fn cstr(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == 0) {
        Some(n) => &field[..n],
        None => field,
    }
}

/// Why a numeric header field or the header checksum is unusable: the detail of the
/// corrupt-entry [`ArtifactError`] that names the entry and the header position.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum HeaderFieldError {
    /// A base-256 number with the sign bit set.
    #[error("negative base-256 number")]
    NegativeBase256,
    /// A base-256 number wider than 64 bits.
    #[error("base-256 number overflows 64 bits")]
    Base256Overflows64,
    /// A base-256 number over `i64::MAX`.
    #[error("base-256 number overflows 63 bits")]
    Base256Overflows63,
    /// A field with a byte other than octal digits, spaces and NULs (the field, lossily).
    #[error("{0:?} is not an octal number")]
    NotOctal(String),
    /// An octal number over `u64::MAX`.
    #[error("octal number overflows")]
    OctalOverflows,
    /// The checksum field itself is unreadable.
    #[error("invalid header checksum field: {0}")]
    ChecksumField(#[source] Box<HeaderFieldError>),
    /// The checksum does not match the header.
    #[error("header checksum mismatch (stored {stored}, computed {computed}): corrupted header")]
    ChecksumMismatch {
        /// The checksum field's value.
        stored: u64,
        /// The unsigned byte sum of the header.
        computed: u64,
    },
}

/// Go `parseNumeric`: base-256 when the high bit of the first byte is set (GNU), octal
/// otherwise (surrounding spaces and NULs ignored). Negative values are refused.
fn parse_numeric(field: &[u8]) -> Result<u64, HeaderFieldError> {
    if let Some(&first) = field.first()
        && first & 0x80 != 0
    {
        if first & 0x40 != 0 {
            return Err(HeaderFieldError::NegativeBase256);
        }
        let mut value: u64 = 0;
        for (i, &byte) in field.iter().enumerate() {
            let byte = if i == 0 { byte & 0x7f } else { byte };
            if value >> 56 != 0 {
                return Err(HeaderFieldError::Base256Overflows64);
            }
            value = (value << 8) | u64::from(byte);
        }
        if value >> 63 != 0 {
            return Err(HeaderFieldError::Base256Overflows63);
        }
        return Ok(value);
    }
    parse_octal(field)
}

fn parse_octal(field: &[u8]) -> Result<u64, HeaderFieldError> {
    let trimmed = trim(field);
    if trimmed.is_empty() {
        return Ok(0);
    }
    let mut value: u64 = 0;
    for &c in trimmed {
        if !(b'0'..=b'7').contains(&c) {
            return Err(HeaderFieldError::NotOctal(
                String::from_utf8_lossy(field).into_owned(),
            ));
        }
        value = value
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .ok_or(HeaderFieldError::OctalOverflows)?;
    }
    Ok(value)
}

fn trim(field: &[u8]) -> &[u8] {
    let is_pad = |b: &u8| *b == b' ' || *b == 0;
    let start = field.iter().position(|b| !is_pad(b)).unwrap_or(field.len());
    let end = field
        .iter()
        .rposition(|b| !is_pad(b))
        .map_or(start, |e| e + 1);
    &field[start..end]
}

/// The header checksum must equal the unsigned (POSIX) or signed (historic) byte sum
/// of the block with the checksum field taken as spaces.
fn verify_checksum(block: &[u8; BLOCK]) -> Result<(), HeaderFieldError> {
    let stored =
        parse_octal(&block[148..156]).map_err(|e| HeaderFieldError::ChecksumField(Box::new(e)))?;
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed) {
        Ok(())
    } else {
        Err(HeaderFieldError::ChecksumMismatch {
            stored,
            computed: unsigned,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{RawTar, base256, octal, raw_header};
    use std::io::{Seek, Write};
    use std::path::PathBuf;
    use std::time::Instant;

    fn fixtures() -> PathBuf {
        bbr_testkit::gobbr::dir()
    }

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    fn hash_in_chunks(data: &[u8], chunk: usize) -> Result<TarSummary, ArtifactError> {
        let mut h = TarHasher::new();
        for c in data.chunks(chunk.max(1)) {
            h.feed(c)?;
        }
        h.finish()
    }

    /// Feeds with pseudo-random chunk sizes in `1..=max`.
    fn hash_random_chunks(data: &[u8], seed: u64, max: usize) -> Result<TarSummary, ArtifactError> {
        let mut h = TarHasher::new();
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut rest = data;
        while !rest.is_empty() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let n = usize::try_from(state % max as u64).unwrap_or(0) + 1;
            let n = n.min(rest.len());
            h.feed(&rest[..n])?;
            rest = &rest[n..];
        }
        h.finish()
    }

    /// GNU tar archives file names as the bytes they are; we read them the same way
    /// (they used to be refused as "not valid UTF-8", failing the backup).
    #[test]
    fn non_utf8_names_from_gnu_tar_are_kept_byte_for_byte() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let long: Vec<u8> = std::iter::repeat_n(0xe9u8, 120).collect();
        let names: [&[u8]; 3] = [b"\xff", b"caf\xe9", &long];
        for (i, n) in names.iter().enumerate() {
            let path = dir.path().join(std::ffi::OsStr::from_bytes(n));
            std::fs::write(path, format!("content {i}")).expect("write");
        }
        let out = std::process::Command::new("tar")
            .arg("-C")
            .arg(dir.path())
            .args(["-c", "."])
            .output()
            .expect("run tar");
        assert!(out.status.success(), "{out:?}");
        let summary = hash_in_chunks(&out.stdout, 777).expect("GNU tar's archive is read");
        crate::safety::check_entries_safe(&summary.entries).expect("safe");
        for (i, n) in names.iter().enumerate() {
            let mut key = b"./".to_vec();
            key.extend_from_slice(n);
            assert_eq!(
                summary.checksums.get(key.as_slice()),
                Some(&sha(format!("content {i}").as_bytes())),
                "{}",
                EntryName::from(key.clone())
            );
        }
        assert_eq!(summary.file_names().len(), 3);
    }

    #[test]
    fn fixture_tars_hash_like_go_bbr() {
        let tar = std::fs::read(fixtures().join("redis-backup/redis-0-redis-server.tar"))
            .expect("fixture");
        let summary = hash_in_chunks(&tar, 4096).expect("hash");
        assert_eq!(summary.total_bytes, tar.len() as u64);
        assert_eq!(
            summary
                .checksums
                .get(&EntryName::from("./redis-server/dump.rdb"))
                .map(String::as_str),
            Some("ba3589985f5f4869fe62d155faee8e59c328b42875cb7e3fbb18c7b8152a92d2")
        );
        assert_eq!(
            summary
                .checksums
                .get(&EntryName::from("./redis-server/appendonly.aof"))
                .map(String::as_str),
            Some("be1b7e4e577b7cbcd556ec75f2f4b2e2d3afca1e40f8ce5a2b748b462cf4bd53")
        );
        assert_eq!(summary.checksums.len(), 2);
        let names: Vec<_> = summary
            .entries
            .iter()
            .map(|e| (e.name.to_str().expect("UTF-8 name"), e.kind))
            .collect();
        assert_eq!(
            names,
            [
                ("./", EntryKind::Dir),
                ("./redis-server/", EntryKind::Dir),
                ("./redis-server/appendonly.aof", EntryKind::File),
                ("./redis-server/dump.rdb", EntryKind::File),
            ]
        );
        assert_eq!(summary.entries[3].size, 31737);
        assert_eq!(summary.file_checksums(), summary.checksums);
    }

    #[test]
    fn every_chunking_gives_the_same_summary() {
        let tar = std::fs::read(fixtures().join("redis-backup/redis-1-redis-server.tar"))
            .expect("fixture");
        let reference = hash_in_chunks(&tar, tar.len()).expect("whole");
        for chunk in [1, 2, 7, 100, 511, 512, 513, 1024, 1536, 4095, 65536] {
            assert_eq!(
                hash_in_chunks(&tar, chunk).expect("chunked"),
                reference,
                "chunk {chunk}"
            );
        }
        for seed in 1..20u64 {
            assert_eq!(
                hash_random_chunks(&tar, seed, 1500).expect("random"),
                reference,
                "seed {seed}"
            );
        }
    }

    #[test]
    fn hash_and_scan_tar_files() {
        let path = fixtures().join("director-backup-integration/bosh-0-bosh.tar");
        let summary = hash_tar_file(&path).expect("hash");
        assert_eq!(
            summary.checksums[&EntryName::from("./backup")],
            "26e17765aa93724bebd8675aeaef0dc27ac7b778003a8094dffdf9b0ffe2deba"
        );
        assert_eq!(
            summary.checksums[&EntryName::from("./backup")],
            sha(b"this is a backup\n")
        );
        let scanned = scan_tar_file(&path).expect("scan");
        assert_eq!(scanned.entries, summary.entries);
        assert!(scanned.checksums.is_empty());
        assert_eq!(scanned.total_bytes, 2560);

        let err = hash_tar_file(&fixtures().join("nope.tar")).expect_err("missing");
        assert!(
            err.to_string().starts_with("Error reading artifact file ")
                && err
                    .to_string()
                    .ends_with("nope.tar: no such file or directory"),
            "{err}"
        );
    }

    #[test]
    fn gnu_long_names_and_links() {
        let long = format!("./{}/{}", "d".repeat(120), "f".repeat(100));
        let target = format!("./{}", "t".repeat(150));
        let data = RawTar::new()
            .dir("./")
            .file(&long, b"hello")
            .symlink("./link", &target)
            .finish();
        let summary = hash_random_chunks(&data, 7, 700).expect("hash");
        assert_eq!(
            summary.checksums[&EntryName::from(long.as_str())],
            sha(b"hello")
        );
        assert_eq!(summary.checksums[&EntryName::from("./link")], EMPTY_SHA256);
        assert_eq!(summary.checksums.len(), 2);
        let link = &summary.entries[2];
        assert_eq!(link.kind, EntryKind::Symlink);
        assert_eq!(
            link.link_name.as_ref().and_then(|l| l.to_str()),
            Some(target.as_str())
        );
        assert_eq!(summary.entries.len(), 3);
        // A symlink is not a regular file after extraction.
        assert_eq!(summary.file_names(), vec![long.clone()]);
    }

    #[test]
    fn pax_overrides_path_size_and_linkpath() {
        let long = format!("./pax/{}", "p".repeat(200));
        let mut header = raw_header(b"./short", b'0', &octal(0), b"");
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        crate::testutil::fix_checksum(&mut header);
        let mut content = b"abc".to_vec();
        content.resize(512, 0);
        let data = RawTar::new()
            .pax(&[("comment", "ignored")])
            .pax(&[("path", &long), ("size", "3"), ("mtime", "1.5")])
            .raw(&header)
            .raw(&content)
            .pax(&[("linkpath", "./pax/target")])
            .symlink("./sl", "short")
            .finish();
        let summary = hash_in_chunks(&data, 100).expect("hash");
        assert_eq!(
            summary.checksums[&EntryName::from(long.as_str())],
            sha(b"abc")
        );
        assert_eq!(summary.entries.len(), 2);
        assert_eq!(summary.entries[0].size, 3);
        assert_eq!(
            summary.entries[1]
                .link_name
                .as_ref()
                .and_then(|l| l.to_str()),
            Some("./pax/target")
        );
    }

    #[test]
    fn pax_records_from_the_tar_crate() {
        let mut b = tar::Builder::new(Vec::new());
        let long = format!("pax/{}", "q".repeat(180));
        b.append_pax_extensions([("path", long.as_bytes())])
            .expect("pax");
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_path("short").expect("path");
        h.set_cksum();
        b.append(&h, &b"hi"[..]).expect("entry");
        let data = b.into_inner().expect("tar");
        let summary = hash_in_chunks(&data, 333).expect("hash");
        assert_eq!(
            summary.checksums[&EntryName::from(long.as_str())],
            sha(b"hi")
        );
    }

    #[test]
    fn ustar_prefix_is_joined() {
        let mut h = raw_header(b"file", b'0', &octal(1), b"");
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[345..352].copy_from_slice(b"./a/b/c");
        crate::testutil::fix_checksum(&mut h);
        let mut block = [0u8; 512];
        block[0] = b'x';
        let data = RawTar::new().raw(&h).raw(&block).finish();
        let summary = hash_in_chunks(&data, 512).expect("hash");
        assert_eq!(
            summary.checksums[&EntryName::from("./a/b/c/file")],
            sha(b"x")
        );
    }

    #[test]
    fn base256_sizes() {
        let content = vec![7u8; 600];
        let mut padded = content.clone();
        padded.resize(1024, 0);
        let data = RawTar::new()
            .raw(&raw_header(b"./b256", b'0', &base256(600), b""))
            .raw(&padded)
            .finish();
        let summary = hash_random_chunks(&data, 3, 300).expect("hash");
        assert_eq!(summary.checksums[&EntryName::from("./b256")], sha(&content));
        assert_eq!(summary.entries[0].size, 600);

        // > 8 GiB, as GNU tar writes it: the stream is cut short, the error names the
        // entry and the size.
        let big = 9 * (1u64 << 30) + 17;
        let mut h = TarHasher::new();
        h.feed(&raw_header(b"./huge", b'0', &base256(big), b""))
            .expect("header");
        h.feed(&vec![1u8; 1 << 20]).expect("content");
        let err = h.finish().expect_err("truncated");
        assert!(matches!(err, ArtifactError::Truncated { .. }), "{err}");
        assert_eq!(err.entry(), Some("./huge"));
        assert!(
            err.to_string().contains(&format!("1048576 of {big} bytes")),
            "{err}"
        );
    }

    #[test]
    fn scan_seeks_over_a_sparse_9_gib_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.tar");
        let big = 9 * (1u64 << 30) + 1;
        let mut f = File::create(&path).expect("create");
        f.write_all(&raw_header(b"./huge", b'0', &base256(big), b""))
            .expect("hdr");
        let end = 512 + big + padding(big);
        f.set_len(end).expect("sparse extend");
        f.seek(std::io::SeekFrom::End(0)).expect("seek");
        f.write_all(&[0u8; 1024]).expect("end");
        drop(f);
        let summary = scan_tar_file(&path).expect("scan");
        assert_eq!(summary.entries[0].size, big);
        assert_eq!(summary.total_bytes, end + 1024);

        // Cut inside the content: truncated, naming the entry and the file.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        f.set_len(512 + big / 2).expect("truncate");
        drop(f);
        let err = scan_tar_file(&path).expect_err("truncated");
        assert_eq!(err.entry(), Some("./huge"));
        assert!(err.to_string().contains("big.tar"), "{err}");
    }

    #[test]
    fn octal_sizes_with_spaces_and_nuls() {
        assert_eq!(parse_numeric(b"00000000017\0"), Ok(15));
        assert_eq!(parse_numeric(b"   17 \0\0\0\0\0\0"), Ok(15));
        assert_eq!(parse_numeric(b"\0\0\0\0\0\0\0\0\0\0\0\0"), Ok(0));
        let err = parse_numeric(b"0000000001 9").unwrap_err();
        assert_eq!(err.to_string(), r#""0000000001 9" is not an octal number"#);
        assert_eq!(
            parse_numeric(&[0xff; 12]),
            Err(HeaderFieldError::NegativeBase256)
        );
        let mut overflow = [0xffu8; 12];
        overflow[0] = 0x80;
        assert_eq!(
            parse_numeric(&overflow),
            Err(HeaderFieldError::Base256Overflows64)
        );
        let mut max = [0u8; 12];
        max[0] = 0x80;
        max[4] = 0x7f;
        assert_eq!(parse_numeric(&max), Ok(0x7f00_0000_0000_0000));
    }

    #[test]
    fn corrupted_header_checksum_is_detected() {
        let mut data = RawTar::new().file("./a", b"aaaa").finish();
        data[3] ^= 0x01; // inside the name of the first header
        let err = hash_in_chunks(&data, 512).expect_err("corrupt");
        assert!(matches!(err, ArtifactError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        assert!(err.to_string().contains("in entry ./a"), "{err}");
    }

    #[test]
    fn truncations_are_reported_with_the_entry() {
        let data = RawTar::new()
            .file("./a", &[1u8; 700])
            .file("./b", &[2u8; 10])
            .finish();
        assert_eq!(data.len(), 512 + 1024 + 512 + 512 + 1024);

        // Inside the first header.
        let err = hash_in_chunks(&data[..300], 64).expect_err("cut header");
        assert!(matches!(err, ArtifactError::Truncated { .. }));
        assert!(
            err.to_string()
                .contains("inside a header (300 of 512 bytes) at the first header"),
            "{err}"
        );

        // Inside the content of ./a.
        let err = hash_in_chunks(&data[..512 + 100], 64).expect_err("cut content");
        assert_eq!(err.entry(), Some("./a"));
        assert!(err.to_string().contains("100 of 700 bytes"), "{err}");

        // Inside the padding of ./a.
        let err = hash_in_chunks(&data[..512 + 800], 64).expect_err("cut padding");
        assert_eq!(err.entry(), Some("./a"));
        assert!(err.to_string().contains("padding"), "{err}");

        // Inside the second header: names the previous entry.
        let err = hash_in_chunks(&data[..512 + 1024 + 10], 64).expect_err("cut 2nd header");
        assert!(err.to_string().contains("after entry ./a"), "{err}");

        // Without end blocks / with only one.
        let end = data.len() - 1024;
        let err = hash_in_chunks(&data[..end], 64).expect_err("no end");
        assert!(err.to_string().contains("end-of-archive"), "{err}");
        assert!(err.to_string().contains("after entry ./b"), "{err}");
        let err = hash_in_chunks(&data[..end + 512], 64).expect_err("one end block");
        assert!(err.to_string().contains("one of the two"), "{err}");

        // Complete.
        assert!(hash_in_chunks(&data, 64).is_ok());
        // Trailing zero padding (GNU tar's record size) is accepted.
        let mut padded = data.clone();
        padded.extend_from_slice(&[0u8; 8192]);
        assert_eq!(
            hash_in_chunks(&padded, 10_000).expect("padded").total_bytes,
            padded.len() as u64
        );
        // Empty stream.
        assert!(TarHasher::new().finish().is_err());
        // Long-name record without its entry.
        let long = "l".repeat(150);
        let cut = RawTar::new().file(&long, b"x").unfinished();
        let err = hash_in_chunks(&cut[..1024], 512).expect_err("dangling L");
        assert!(err.to_string().contains("long-name or PAX record"), "{err}");
    }

    #[test]
    fn single_zero_block_followed_by_header_is_corrupt() {
        let data = RawTar::new()
            .file("./a", b"x")
            .raw(&[0u8; 512])
            .file("./b", b"y")
            .finish();
        let err = hash_in_chunks(&data, 512).expect_err("corrupt");
        assert!(err.to_string().contains("single zero block"), "{err}");
    }

    #[test]
    fn poisoned_after_error() {
        let mut data = RawTar::new().file("./a", b"x").finish();
        data[0] ^= 1;
        let mut h = TarHasher::new();
        assert!(h.feed(&data).is_err());
        assert!(h.feed(&[0u8; 512]).is_err());
        assert!(h.finish().is_err());
    }

    #[test]
    fn gnu_sparse_is_refused() {
        let data = RawTar::new().entry("./sparse", b'S', b"", "").finish();
        let err = hash_in_chunks(&data, 512).expect_err("sparse");
        assert!(matches!(err, ArtifactError::Unsupported { .. }), "{err}");
        assert_eq!(err.entry(), Some("./sparse"));
        let data = RawTar::new()
            .pax(&[("GNU.sparse.major", "1"), ("GNU.sparse.name", "./s")])
            .file("./x", b"")
            .finish();
        let err = hash_in_chunks(&data, 512).expect_err("pax sparse");
        assert!(err.to_string().contains("sparse"), "{err}");
    }

    #[test]
    fn hardlinks_resolve_to_their_target_in_file_checksums() {
        let data = RawTar::new()
            .file("./orig", b"abc")
            .hardlink("./hard", "./orig")
            .entry("./fifo", b'6', b"", "")
            .finish();
        let summary = hash_in_chunks(&data, 1000).expect("hash");
        // Go bbr: hardlink and fifo hashed as empty content.
        assert_eq!(summary.checksums[&EntryName::from("./hard")], EMPTY_SHA256);
        assert_eq!(summary.checksums[&EntryName::from("./fifo")], EMPTY_SHA256);
        assert_eq!(summary.checksums[&EntryName::from("./orig")], sha(b"abc"));
        // After extraction: two regular files with the same content.
        let files = summary.file_checksums();
        assert_eq!(files.len(), 2);
        assert_eq!(files[&EntryName::from("./hard")], sha(b"abc"));
        assert_eq!(
            summary.file_names(),
            vec!["./hard".to_string(), "./orig".to_string()]
        );
    }

    #[test]
    fn gnu_tar_output_matches_direct_hashes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("job");
        std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
        let long_dir = "x".repeat(90);
        std::fs::create_dir_all(root.join(&long_dir)).expect("mkdir long");
        let mut files: Vec<(String, Vec<u8>)> = vec![
            ("./top".into(), b"top level\n".to_vec()),
            ("./empty".into(), Vec::new()),
            (
                "./sub/deeper/data.bin".into(),
                (0..100_000u32).map(|i| (i % 251) as u8).collect(),
            ),
            (
                format!("./{long_dir}/{}", "y".repeat(80)),
                b"long name".to_vec(),
            ),
            ("./exact512".into(), vec![b'z'; 512]),
        ];
        for (name, content) in &files {
            std::fs::write(root.join(name), content).expect("write");
        }
        std::os::unix::fs::symlink("sub/deeper/data.bin", root.join("link")).expect("symlink");
        std::fs::hard_link(root.join("top"), root.join("sub/top-hard")).expect("hardlink");
        let out = std::process::Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["-c", "."])
            .output()
            .expect("run GNU tar");
        assert!(out.status.success());
        let summary = hash_random_chunks(&out.stdout, 11, 5000).expect("hash gnu tar");
        files.push(("./sub/top-hard".into(), b"top level\n".to_vec()));
        let file_sums = summary.file_checksums();
        for (name, content) in &files {
            assert!(
                summary
                    .checksums
                    .contains_key(&EntryName::from(name.as_str())),
                "{name}"
            );
            assert_eq!(
                file_sums.get(&EntryName::from(name.as_str())),
                Some(&sha(content)),
                "{name}"
            );
        }
        assert_eq!(file_sums.len(), files.len());
        assert_eq!(summary.checksums[&EntryName::from("./link")], EMPTY_SHA256);
        assert!(
            summary
                .entries
                .iter()
                .any(|e| e.kind == EntryKind::Hardlink)
        );
        assert!(summary.entries.iter().any(|e| e.name == "./"));
    }

    /// Not a timed assertion: prints the throughput so that a regression is visible,
    /// and checks the hashes of a 64 MiB stream fed in network-sized chunks.
    #[test]
    fn throughput_64_mib() {
        let file_size = 8 << 20;
        let mut contents = Vec::new();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..8 {
            let mut v = vec![0u8; file_size];
            for chunk in v.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let bytes = state.to_le_bytes();
                chunk.copy_from_slice(&bytes[..chunk.len()]);
            }
            contents.push(v);
        }
        let names: Vec<String> = (0..8).map(|i| format!("./data/file{i}")).collect();
        let mut builder = RawTar::new().dir("./").dir("./data/");
        for (name, content) in names.iter().zip(&contents) {
            builder = builder.file(name, content);
        }
        let data = builder.finish();

        let started = Instant::now();
        let direct: Vec<String> = contents.iter().map(|c| sha(c)).collect();
        let direct_time = started.elapsed();

        let started = Instant::now();
        let summary = hash_in_chunks(&data, 32 * 1024 + 17).expect("hash");
        let stream_time = started.elapsed();

        for (name, expected) in names.iter().zip(&direct) {
            assert_eq!(
                &summary.checksums[&EntryName::from(name.as_str())],
                expected
            );
        }
        let mib = data.len() as f64 / (1024.0 * 1024.0);
        println!(
            "TarHasher: {mib:.0} MiB in {stream_time:?} ({:.0} MiB/s); plain sha256 of the content: {direct_time:?} ({:.0} MiB/s)",
            mib / stream_time.as_secs_f64(),
            mib / direct_time.as_secs_f64(),
        );
    }
}
