//! POSIX shell quoting, the one quoter for every command line bbr, service-backup and
//! database-backup-restorer write.

/// Quotes `s` as one POSIX shell word: words made only of `[A-Za-z0-9/._+=:,@%-]` stay as
/// they are, anything else (including the empty string) is single-quoted with `'` written
/// as `'\''`.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The former database-backup-restorer copy quoted every word; plain words now stay
    /// bare, which the shell reads the same way.
    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(shell_quote("/var/vcap/x-1.2"), "/var/vcap/x-1.2");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(shell_quote("a\nb"), "'a\nb'");
    }
}
