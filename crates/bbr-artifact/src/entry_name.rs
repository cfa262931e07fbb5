//! [`EntryName`]: a tar entry name as the raw bytes the tar holds.
//!
//! File names on Linux are byte strings, not text, and Go bbr carries them as Go
//! strings (any bytes) from the tar through the `metadata` checksums and back. So do we:
//! every name that comes out of a tar, out of the VM's `find -printf '%P\0'` listing or
//! out of a `metadata` key is an `EntryName`, compared and sorted by its bytes (for valid
//! UTF-8 that is the same order as `String`'s).
//!
//! [`Display`](std::fmt::Display) shows the name for humans: valid UTF-8 unchanged (so
//! every message about an ordinary name reads exactly as before), every byte that is not
//! part of valid UTF-8 as `\xNN`.

use std::borrow::Borrow;
use std::fmt;

/// A tar entry name as raw bytes (see the module docs).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EntryName(Vec<u8>);

impl EntryName {
    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The name as text, when it is valid UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The name's bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// True when the name has no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The name shown for humans (see [`fmt::Display`]).
    pub fn display(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_bytes(&self.0))
    }
}

impl fmt::Debug for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", escape_bytes(&self.0))
    }
}

/// `bytes` as text: valid UTF-8 unchanged, every other byte as `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                // `good` is valid UTF-8 by construction.
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                let n = e.error_len().unwrap_or(bad.len()).max(1);
                for b in &bad[..n] {
                    out.push_str(&format!("\\x{b:02x}"));
                }
                rest = &bad[n..];
            }
        }
    }
}

impl From<Vec<u8>> for EntryName {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&[u8]> for EntryName {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl From<String> for EntryName {
    fn from(s: String) -> Self {
        Self(s.into_bytes())
    }
}

impl From<&str> for EntryName {
    fn from(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

impl From<&String> for EntryName {
    fn from(s: &String) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

impl Borrow<[u8]> for EntryName {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for EntryName {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq<str> for EntryName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for EntryName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<String> for EntryName {
    fn eq(&self, other: &String) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<[u8]> for EntryName {
    fn eq(&self, other: &[u8]) -> bool {
        self.0 == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_utf8_displays_unchanged() {
        let name = EntryName::from("./data/été.txt");
        assert_eq!(name.to_string(), "./data/été.txt");
        assert_eq!(name.to_str(), Some("./data/été.txt"));
    }

    #[test]
    fn invalid_bytes_display_escaped() {
        let name = EntryName::from(b"./a\xff\xe9b/\xf0\x9f\x98".to_vec());
        assert_eq!(name.to_string(), "./a\\xff\\xe9b/\\xf0\\x9f\\x98");
        assert_eq!(name.to_str(), None);
        assert_eq!(
            format!("{name:?}"),
            "\"./a\\\\xff\\\\xe9b/\\\\xf0\\\\x9f\\\\x98\""
        );
    }

    #[test]
    fn order_is_byte_order() {
        let mut names = [
            EntryName::from(b"./\xff".to_vec()),
            EntryName::from("./b"),
            EntryName::from("./é"),
        ];
        names.sort();
        assert_eq!(names[0], "./b");
        assert_eq!(names[1], "./é");
        assert_eq!(names[2], b"./\xff"[..]);
    }
}
