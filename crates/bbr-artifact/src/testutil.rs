//! Test helpers: a byte-exact tar writer that keeps names as given (`./a`, `../evil`,
//! `/abs`), which the `tar` crate normalises or refuses.

/// Builds a GNU-format tar stream entry by entry.
#[derive(Debug, Default)]
pub(crate) struct RawTar {
    pub(crate) data: Vec<u8>,
}

/// One 512-byte header with GNU magic; `size_field` is written verbatim at offset 124.
pub(crate) fn raw_header(name: &[u8], typeflag: u8, size_field: &[u8], link: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0001750");
    h[116..123].copy_from_slice(b"0001750");
    h[124..124 + size_field.len()].copy_from_slice(size_field);
    h[136..147].copy_from_slice(b"14542132020");
    h[156] = typeflag;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar ");
    h[263..265].copy_from_slice(b" \0");
    fix_checksum(&mut h);
    h
}

/// Recomputes the header checksum field.
pub(crate) fn fix_checksum(h: &mut [u8; 512]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let field = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(field.as_bytes());
}

/// An octal size field.
pub(crate) fn octal(size: u64) -> Vec<u8> {
    format!("{size:011o}\0").into_bytes()
}

/// A GNU base-256 size field.
pub(crate) fn base256(size: u64) -> [u8; 12] {
    let mut f = [0u8; 12];
    f[0] = 0x80;
    f[4..].copy_from_slice(&size.to_be_bytes());
    f
}

impl RawTar {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn pad(&mut self) {
        let rem = self.data.len() % 512;
        if rem != 0 {
            self.data.resize(self.data.len() + 512 - rem, 0);
        }
    }

    fn meta(&mut self, typeflag: u8, payload: &[u8]) {
        self.data.extend_from_slice(&raw_header(
            b"././@LongLink",
            typeflag,
            &octal(payload.len() as u64),
            b"",
        ));
        self.data.extend_from_slice(payload);
        self.pad();
    }

    /// Any entry; long names and link targets get GNU `L` / `K` records.
    pub(crate) fn entry(mut self, name: &str, typeflag: u8, content: &[u8], link: &str) -> Self {
        if name.len() > 100 {
            let mut v = name.as_bytes().to_vec();
            v.push(0);
            self.meta(b'L', &v);
        }
        if link.len() > 100 {
            let mut v = link.as_bytes().to_vec();
            v.push(0);
            self.meta(b'K', &v);
        }
        self.data.extend_from_slice(&raw_header(
            name.as_bytes(),
            typeflag,
            &octal(content.len() as u64),
            link.as_bytes(),
        ));
        self.data.extend_from_slice(content);
        self.pad();
        self
    }

    pub(crate) fn file(self, name: &str, content: &[u8]) -> Self {
        self.entry(name, b'0', content, "")
    }

    pub(crate) fn dir(self, name: &str) -> Self {
        self.entry(name, b'5', b"", "")
    }

    pub(crate) fn symlink(self, name: &str, target: &str) -> Self {
        self.entry(name, b'2', b"", target)
    }

    pub(crate) fn hardlink(self, name: &str, target: &str) -> Self {
        self.entry(name, b'1', b"", target)
    }

    /// A PAX `x` record applying to the next entry.
    pub(crate) fn pax(mut self, records: &[(&str, &str)]) -> Self {
        let mut payload = Vec::new();
        for (k, v) in records {
            let body = format!(" {k}={v}\n");
            // The length prefix counts itself.
            let mut len = body.len() + 1;
            while format!("{len}").len() + body.len() != len {
                len += 1;
            }
            payload.extend_from_slice(format!("{len}{body}").as_bytes());
        }
        self.meta(b'x', &payload);
        self
    }

    /// Raw bytes (e.g. a hand-made header).
    pub(crate) fn raw(mut self, bytes: &[u8]) -> Self {
        self.data.extend_from_slice(bytes);
        self
    }

    /// Appends the end-of-archive marker.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.data.extend_from_slice(&[0u8; 1024]);
        self.data
    }

    /// The stream without the end-of-archive marker.
    pub(crate) fn unfinished(self) -> Vec<u8> {
        self.data
    }
}
