//! The Prometheus text exposition format, as far as this crate writes it: `# HELP` and
//! `# TYPE <name> gauge` lines, then `name{label="value",...} value` samples (no timestamps).
//!
//! [`Exposition::parse`] reads back what [`Exposition::render`] writes (and tolerates blank
//! lines and other `#` comments); anything else is a [`ParseError`] naming the line. Rendering
//! is deterministic: families sorted by name, samples by their label sets, labels by name.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A sample's labels, sorted by name.
pub(crate) type LabelSet = Vec<(String, String)>;

/// One metric family: its help text and its samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Family {
    pub(crate) help: String,
    pub(crate) samples: BTreeMap<LabelSet, f64>,
}

/// A whole file's worth of gauge families, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Exposition {
    pub(crate) families: BTreeMap<String, Family>,
}

/// Why an existing file could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number (0: the file as a whole, e.g. not UTF-8).
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Whether `name` is a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub(crate) fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Whether `name` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`).
pub(crate) fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// A label value as the format writes it: `\` → `\\`, `"` → `\"`, newline → `\n`.
pub(crate) fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A HELP text as the format writes it: `\` → `\\`, newline → `\n`.
pub(crate) fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn unescape_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A value as the format writes it (Go's `NaN`, `+Inf`, `-Inf`; integers without a point).
pub(crate) fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{value}")
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// Splits `name{labels} value` into its parts.
fn parse_sample(line: &str) -> Result<(String, LabelSet, f64), String> {
    let name_end = line
        .find(['{', ' ', '\t'])
        .ok_or("a sample without a value")?;
    let name = &line[..name_end];
    if !valid_metric_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = LabelSet::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let end = loop {
            // label name up to '=' (or '}' for an empty/trailing set)
            while chars.next_if(|(_, c)| *c == ' ').is_some() {}
            let Some(&(start, c)) = chars.peek() else {
                return Err("unterminated label set".into());
            };
            if c == '}' {
                chars.next();
                break start + 1;
            }
            let mut eq = None;
            for (i, c) in chars.by_ref() {
                if c == '=' {
                    eq = Some(i);
                    break;
                }
            }
            let eq = eq.ok_or("a label without '='")?;
            let label = body[start..eq].trim();
            if !valid_label_name(label) {
                return Err(format!("invalid label name {label:?}"));
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err(format!("label {label} has no quoted value"));
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => return Err(format!("label {label} has an unterminated value")),
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        _ => return Err(format!("label {label} has an invalid escape")),
                    },
                    Some((_, c)) => value.push(c),
                }
            }
            if labels.iter().any(|(n, _)| n == label) {
                return Err(format!("label {label} appears twice"));
            }
            labels.push((label.to_owned(), value));
            while chars.next_if(|(_, c)| *c == ' ').is_some() {}
            match chars.next() {
                Some((_, ',')) => continue,
                Some((i, '}')) => break i + 1,
                _ => return Err("expected ',' or '}' after a label".into()),
            }
        };
        rest = &body[end..];
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("a sample without a value")?;
    let value = parse_value(value).ok_or_else(|| format!("invalid value {value:?}"))?;
    if fields.next().is_some() {
        return Err("unexpected text after the value (timestamps are not written here)".into());
    }
    labels.sort();
    Ok((name.to_owned(), labels, value))
}

impl Exposition {
    /// Reads a file this crate wrote.
    pub(crate) fn parse(text: &str) -> Result<Exposition, ParseError> {
        let mut out = Exposition::default();
        for (i, line) in text.lines().enumerate() {
            let err = |reason: String| ParseError {
                line: i + 1,
                reason,
            };
            let line = line.trim_end();
            if line.trim().is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let comment = comment.trim_start();
                if let Some(rest) = comment.strip_prefix("HELP ") {
                    let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                    if !valid_metric_name(name) {
                        return Err(err(format!("invalid metric name {name:?} in HELP")));
                    }
                    out.families.entry(name.to_owned()).or_default().help = unescape_help(help);
                } else if let Some(rest) = comment.strip_prefix("TYPE ") {
                    let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
                    if kind.trim() != "gauge" {
                        return Err(err(format!(
                            "metric {name} has type {:?}; only gauges are written here",
                            kind.trim()
                        )));
                    }
                    if !valid_metric_name(name) {
                        return Err(err(format!("invalid metric name {name:?} in TYPE")));
                    }
                    out.families.entry(name.to_owned()).or_default();
                }
                continue;
            }
            let (name, labels, value) = parse_sample(line).map_err(err)?;
            out.families
                .entry(name)
                .or_default()
                .samples
                .insert(labels, value);
        }
        Ok(out)
    }

    /// The file's text.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        for (name, family) in &self.families {
            if family.samples.is_empty() {
                continue;
            }
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.help));
            let _ = writeln!(out, "# TYPE {name} gauge");
            for (labels, value) in &family.samples {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (label, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{label}=\"{}\"", escape_label_value(v));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {}", format_value(*value));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        let mut l: LabelSet = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        l.sort();
        l
    }

    #[test]
    fn renders_help_type_and_sorted_samples() {
        let mut e = Exposition::default();
        let f = e.families.entry("bbr_exit_code".into()).or_default();
        f.help = "Exit code.\nSecond line \\ here".into();
        f.samples
            .insert(labels(&[("deployment", "b"), ("command", "backup")]), 1.0);
        f.samples
            .insert(labels(&[("deployment", "a"), ("command", "backup")]), 0.0);
        assert_eq!(
            e.render(),
            "# HELP bbr_exit_code Exit code.\\nSecond line \\\\ here\n\
             # TYPE bbr_exit_code gauge\n\
             bbr_exit_code{command=\"backup\",deployment=\"a\"} 0\n\
             bbr_exit_code{command=\"backup\",deployment=\"b\"} 1\n"
        );
    }

    #[test]
    fn label_values_are_escaped_and_read_back() {
        let tricky = "a\\b \"quoted\"\nnext, }{=";
        assert_eq!(
            escape_label_value(tricky),
            "a\\\\b \\\"quoted\\\"\\nnext, }{="
        );
        let mut e = Exposition::default();
        let f = e.families.entry("m".into()).or_default();
        f.help = "h".into();
        f.samples.insert(labels(&[("deployment", tricky)]), 2.5);
        let text = e.render();
        assert_eq!(text.lines().count(), 3, "one line per sample: {text}");
        assert_eq!(Exposition::parse(&text).expect("parse"), e);
    }

    #[test]
    fn special_values() {
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(1_718_000_000.25), "1718000000.25");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value("1e3"), Some(1000.0));
    }

    #[test]
    fn corrupt_lines_are_named() {
        for (text, line, needle) in [
            ("# TYPE x counter\nx 1\n", 1, "only gauges"),
            ("x{a=\"1\" 2\n", 1, "','"),
            ("\nx{a=\"1} 2\n", 2, "unterminated"),
            ("x 1 12345\n", 1, "timestamps"),
            ("x{9a=\"1\"} 1\n", 1, "invalid label name"),
            ("x one\n", 1, "invalid value"),
            ("x\n", 1, "without a value"),
            ("-x 1\n", 1, "invalid metric name"),
        ] {
            let e = Exposition::parse(text).expect_err(text);
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.reason.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn other_comments_and_blank_lines_are_tolerated() {
        let e = Exposition::parse("# written by hand\n\nx 1\n# HELP x the x\n").expect("parse");
        assert_eq!(e.families["x"].help, "the x");
        assert_eq!(e.families["x"].samples[&LabelSet::new()], 1.0);
    }

    #[test]
    fn names() {
        assert!(valid_metric_name("bbr_exit_code"));
        assert!(!valid_metric_name("1x"));
        assert!(valid_label_name("deployment"));
        assert!(!valid_label_name("__name__"));
        assert!(!valid_label_name("a-b"));
    }
}
