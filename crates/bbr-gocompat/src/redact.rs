//! Secret values kept out of text: the one set of rules behind service-backup's log sink
//! and bbr-storage's error messages. Each caller chooses its own marker
//! (`[REDACTED]` in lager lines, `<redacted>` in storage errors).

/// Registered secret values, replaced wherever they occur.
///
/// Rules: values are trimmed; values shorter than four characters are ignored (they would
/// redact ordinary words); a multi-line value (a PEM key, a service-account JSON) also
/// registers each of its lines of sixteen or more characters that is not a `-----` armour
/// line, so a partial echo is caught too; the longest value is replaced first, so a value
/// containing another is removed whole.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    /// A set holding `values`.
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut s = Secrets::default();
        s.add(values);
        s
    }

    /// Registers more values.
    pub fn add<I, S>(&mut self, values: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for value in values {
            let value = value.as_ref().trim();
            if value.len() >= 4 {
                self.values.push(value.to_owned());
            }
            if value.contains('\n') {
                for line in value.lines().map(str::trim) {
                    if line.len() >= 16 && !line.starts_with("-----") {
                        self.values.push(line.to_owned());
                    }
                }
            }
        }
        self.values.sort_by_key(|s| std::cmp::Reverse(s.len()));
        self.values.dedup();
    }

    /// `text` with every registered value replaced by `marker`.
    pub fn redact(&self, text: &str, marker: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.values {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), marker);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_ignored_and_longest_goes_first() {
        let s = Secrets::new(["abc", "hunter2", "hunter2-extended"]);
        assert_eq!(
            s.redact("abc hunter2 hunter2-extended", "<r>"),
            "abc <r> <r>"
        );
    }

    /// The former bbr-storage copy neither trimmed values nor registered the lines of a
    /// multi-line value, so a key file with a trailing newline, or one line of it echoed in
    /// an error, went through.
    #[test]
    fn trimmed_values_and_lines_of_multi_line_values() {
        let pem = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----\n";
        let s = Secrets::new([pem, " token-1234 \n"]);
        let out = s.redact(
            "line MIIEvQIBADANBgkqhkiG9w0BAQEFAASC and token-1234; -----END KEY-----",
            "[REDACTED]",
        );
        assert_eq!(out, "line [REDACTED] and [REDACTED]; -----END KEY-----");
    }
}
