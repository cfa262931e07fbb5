//! A tiny YAML emitter that reproduces `gopkg.in/yaml.v2` (v2.4) output byte for byte
//! for documents made of string scalars, block mappings and block sequences.
//!
//! It is a faithful port of the relevant parts of yaml.v2: `encode.go` `stringv`
//! (plain unless the text would resolve to a non-string), `resolve.go` (what plain text
//! resolves to), `sorter.go` (the numeric-aware map-key order) and the libyaml emitter
//! in `emitterc.go` (scalar analysis, style selection, indentation, 80-column folding,
//! double-quote escapes, `? ` complex keys longer than 128 bytes, `{}` / `[]` for empty
//! collections). Map keys are sorted here, as yaml.v2 sorts Go map keys; struct-like
//! mappings keep the order they are given in.
//!
//! Map keys are byte strings (tar entry names). One that is not valid UTF-8 is written as
//! yaml.v2's `stringv` writes any such Go string: tagged `!!binary`, holding its base64 cut
//! into lines of 70 characters (`encodeBase64`), each line followed by a line break when
//! there is more than one. A single line (a name of at most 51 bytes) is a plain scalar and
//! a simple key: `!!binary <base64>: <value>`. Several lines are a literal scalar, which
//! libyaml writes as a complex key: `? !!binary |`, the lines one indent deeper, then
//! `: <value>` at the mapping's indent.

/// A YAML node to emit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node<'a> {
    /// A string scalar (yaml.v2 `stringv`).
    Str(&'a str),
    /// A mapping emitted in the given key order (a Go struct).
    Struct(Vec<(&'a str, Node<'a>)>),
    /// A mapping whose keys are sorted the yaml.v2 way (a Go `map[string]string`);
    /// keys are any bytes (see the module docs).
    Map(Vec<(&'a [u8], Node<'a>)>),
    /// A sequence.
    Seq(Vec<Node<'a>>),
}

/// Emits `root` as a complete yaml.v2 document (ending in a newline).
pub(crate) fn emit(root: &Node<'_>) -> String {
    let mut e = Emitter {
        out: String::new(),
        column: 0,
        indent: -1,
        indents: Vec::new(),
        whitespace: true,
        indention: true,
        flow_level: 0,
        mapping_context: false,
        simple_key_context: false,
    };
    e.emit_node(root, false, false);
    // Document end: yaml_emitter_emit_document_end writes an indent (a line break
    // when the column is not at the start).
    e.write_indent();
    e.out
}

const BEST_INDENT: i64 = 2;
const BEST_WIDTH: usize = 80;

struct Emitter {
    out: String,
    column: usize,
    indent: i64,
    indents: Vec<i64>,
    whitespace: bool,
    indention: bool,
    flow_level: usize,
    mapping_context: bool,
    simple_key_context: bool,
}

impl Emitter {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    /// `write_break`: `\n` becomes a line break, other break characters are copied.
    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn write_indent(&mut self) {
        let indent = usize::try_from(self.indent.max(0)).unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        for c in indicator.chars() {
            self.put(c);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    fn emit_node(&mut self, node: &Node<'_>, mapping: bool, simple_key: bool) {
        self.mapping_context = mapping;
        self.simple_key_context = simple_key;
        match node {
            Node::Str(s) => self.emit_scalar(s, false),
            Node::Struct(entries) => {
                let refs: Vec<(&[u8], &Node<'_>)> =
                    entries.iter().map(|(k, v)| (k.as_bytes(), v)).collect();
                self.emit_mapping(&refs);
            }
            Node::Map(entries) => {
                let mut refs: Vec<(&[u8], &Node<'_>)> =
                    entries.iter().map(|(k, v)| (*k, v)).collect();
                merge_sort_by(&mut refs, |a, b| key_less_bytes(a.0, b.0));
                self.emit_mapping(&refs);
            }
            Node::Seq(items) => self.emit_sequence(items),
        }
    }

    fn emit_mapping(&mut self, entries: &[(&[u8], &Node<'_>)]) {
        if self.flow_level > 0 || entries.is_empty() {
            // Only empty mappings are emitted in flow style by yaml.v2's block emitter.
            self.write_indicator("{", true, true, false);
            self.increase_indent(true, false);
            self.flow_level += 1;
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    self.write_indicator(",", false, false, false);
                }
                if self.column > BEST_WIDTH {
                    self.write_indent();
                }
                // Only empty mappings reach here (see above): no key is ever written.
                self.emit_node(&Node::Str(&String::from_utf8_lossy(k)), true, true);
                self.write_indicator(":", false, false, false);
                self.emit_node(v, true, false);
            }
            self.flow_level -= 1;
            self.pop_indent();
            self.write_indicator("}", false, false, false);
            return;
        }
        self.increase_indent(false, false);
        for &(key, value) in entries {
            self.write_indent();
            // yaml_emitter_check_simple_key: single-line and at most 128 bytes, the tag
            // (`!!` + `binary`) included.
            let binary = std::str::from_utf8(key).err().map(|_| go_base64(key));
            let (text, tag_len) = match &binary {
                Some(b64) => (b64.as_str(), BINARY_TAG_LEN),
                None => (std::str::from_utf8(key).unwrap_or_default(), 0),
            };
            let analysis = analyze(text);
            let simple = !analysis.multiline && text.len() + tag_len <= 128;
            if !simple {
                self.write_indicator("?", true, false, true);
            }
            self.mapping_context = true;
            self.simple_key_context = simple;
            self.emit_scalar(text, binary.is_some());
            if simple {
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.emit_node(value, true, false);
        }
        self.pop_indent();
    }

    fn emit_sequence(&mut self, items: &[Node<'_>]) {
        if self.flow_level > 0 || items.is_empty() {
            self.write_indicator("[", true, true, false);
            self.increase_indent(true, false);
            self.flow_level += 1;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    self.write_indicator(",", false, false, false);
                }
                if self.column > BEST_WIDTH {
                    self.write_indent();
                }
                self.emit_node(item, false, false);
            }
            self.flow_level -= 1;
            self.pop_indent();
            self.write_indicator("]", false, false, false);
            return;
        }
        let indentless = self.mapping_context && !self.indention;
        self.increase_indent(false, indentless);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.emit_node(item, false, false);
        }
        self.pop_indent();
    }

    /// Emits a string scalar; `binary` when `value` is the base64 of a non-UTF-8 string,
    /// tagged `!!binary` (encode.go `stringv` then never asks for quotes).
    fn emit_scalar(&mut self, value: &str, binary: bool) {
        let analysis = analyze(value);
        // encode.go stringv: the requested style.
        let mut style = if value.contains('\n') {
            Style::Literal
        } else if binary || (!resolves_to_non_string(value) && !is_base60_float(value)) {
            Style::Plain
        } else {
            Style::DoubleQuoted
        };
        // emitterc.go yaml_emitter_select_scalar_style.
        if self.simple_key_context && analysis.multiline {
            style = Style::DoubleQuoted;
        }
        if style == Style::Plain {
            if (self.flow_level > 0 && !analysis.flow_plain_allowed)
                || (self.flow_level == 0 && !analysis.block_plain_allowed)
            {
                style = Style::SingleQuoted;
            }
            if value.is_empty() && (self.flow_level > 0 || self.simple_key_context) {
                style = Style::SingleQuoted;
            }
        }
        if style == Style::SingleQuoted && !analysis.single_quoted_allowed {
            style = Style::DoubleQuoted;
        }
        if style == Style::Literal
            && (!analysis.block_allowed || self.flow_level > 0 || self.simple_key_context)
        {
            style = Style::DoubleQuoted;
        }

        if binary {
            // yaml_emitter_process_tag: handle `!!` and suffix `binary`, after a space
            // unless one was just written.
            if !self.whitespace {
                self.put(' ');
            }
            for c in "!!binary".chars() {
                self.put(c);
            }
            self.whitespace = false;
            self.indention = false;
        }
        self.increase_indent(true, false);
        let allow_breaks = !self.simple_key_context;
        match style {
            Style::Plain => self.write_plain(value, allow_breaks),
            Style::SingleQuoted => self.write_single_quoted(value, allow_breaks),
            Style::DoubleQuoted => self.write_double_quoted(value, allow_breaks),
            Style::Literal => self.write_literal(value),
        }
        self.pop_indent();
    }

    fn write_plain(&mut self, value: &str, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        let mut spaces = false;
        let mut breaks = false;
        let mut chars = value.chars().peekable();
        while let Some(c) = chars.next() {
            if c == ' ' {
                let next_is_space = chars.peek() == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_is_space {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn write_single_quoted(&mut self, value: &str, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        let mut spaces = false;
        let mut breaks = false;
        let len = value.len();
        let mut chars = value.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == ' ' {
                let next_is_space = chars.peek().map(|&(_, n)| n) == Some(' ');
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < len
                    && !next_is_space
                {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double_quoted(&mut self, value: &str, allow_breaks: bool) {
        let mut spaces = false;
        self.write_indicator("\"", true, false, false);
        // [yaml.v2 quirk] is_bom looks at the start of the whole value, not at the
        // current character: a value starting with a BOM is escaped entirely.
        let bom = value.starts_with('\u{feff}');
        let len = value.len();
        let mut chars = value.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if !is_printable(c) || bom || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\x07' => self.put('a'),
                    '\x08' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\x0b' => self.put('v'),
                    '\x0c' => self.put('f'),
                    '\r' => self.put('r'),
                    '\x1b' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{a0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    _ => {
                        let v = u32::from(c);
                        let (letter, width) = if v <= 0xFF {
                            ('x', 2)
                        } else if v <= 0xFFFF {
                            ('u', 4)
                        } else {
                            ('U', 8)
                        };
                        self.put(letter);
                        for k in (0..width).rev() {
                            let digit = (v >> (k * 4)) & 0xF;
                            let ch = char::from_digit(digit, 16)
                                .map(|d| d.to_ascii_uppercase())
                                .unwrap_or('0');
                            self.put(ch);
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && i > 0 && i + 1 < len {
                    self.write_indent();
                    if chars.peek().map(|&(_, n)| n) == Some(' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, value: &str) {
        self.write_indicator("|", true, false, false);
        // yaml_emitter_write_block_scalar_hints
        if value.starts_with(' ') || value.chars().next().is_some_and(is_break) {
            self.write_indicator("2", false, false, false);
        }
        let mut rev = value.chars().rev();
        let chomp = match rev.next() {
            None => Some("-"),
            Some(last) if !is_break(last) => Some("-"),
            Some(_) => match rev.next() {
                None => Some("+"),
                Some(prev) if is_break(prev) => Some("+"),
                Some(_) => None,
            },
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for c in value.chars() {
            if is_break(c) {
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\x20'..='\x7e' | '\u{a0}'..='\u{d7ff}')
        || (('\u{e000}'..='\u{fffd}').contains(&c) && c != '\u{feff}')
}

/// The outcome of libyaml's `yaml_emitter_analyze_scalar` (with `unicode` enabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Analysis {
    pub(crate) multiline: bool,
    pub(crate) flow_plain_allowed: bool,
    pub(crate) block_plain_allowed: bool,
    pub(crate) single_quoted_allowed: bool,
    pub(crate) block_allowed: bool,
}

pub(crate) fn analyze(value: &str) -> Analysis {
    if value.is_empty() {
        return Analysis {
            multiline: false,
            flow_plain_allowed: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let mut block_indicators = false;
    let mut flow_indicators = false;
    let mut line_breaks = false;
    let mut special_characters = false;
    let mut leading_space = false;
    let mut leading_break = false;
    let mut trailing_space = false;
    let mut trailing_break = false;
    let mut break_space = false;
    let mut space_break = false;
    let mut previous_space = false;
    let mut previous_break = false;

    if value.starts_with("---") || value.starts_with("...") {
        block_indicators = true;
        flow_indicators = true;
    }

    let mut preceded_by_whitespace = true;
    let mut chars = value.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        let followed_by_whitespace = next.is_none_or(is_blank);
        let is_last = next.is_none();
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => {
                    flow_indicators = true;
                    block_indicators = true;
                }
                '?' | ':' => {
                    flow_indicators = true;
                    if followed_by_whitespace {
                        block_indicators = true;
                    }
                }
                '-' if followed_by_whitespace => {
                    flow_indicators = true;
                    block_indicators = true;
                }
                _ => {}
            }
        } else {
            match c {
                ',' | '?' | '[' | ']' | '{' | '}' => flow_indicators = true,
                ':' => {
                    flow_indicators = true;
                    if followed_by_whitespace {
                        block_indicators = true;
                    }
                }
                '#' if preceded_by_whitespace => {
                    flow_indicators = true;
                    block_indicators = true;
                }
                _ => {}
            }
        }

        if !is_printable(c) {
            special_characters = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if is_last {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if is_last {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blank(c) || is_break(c) || c == '\0';
    }

    let mut a = Analysis {
        multiline: line_breaks,
        flow_plain_allowed: true,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special_characters {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
        a.block_allowed = false;
    }
    if line_breaks {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
    }
    if flow_indicators {
        a.flow_plain_allowed = false;
    }
    if block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// yaml.v2 `resolve("", s)` returns a tag other than `!!str`: the plain text would
/// be read back as a bool, null, int, float or timestamp.
pub(crate) fn resolves_to_non_string(s: &str) -> bool {
    const RESOLVE_MAP: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "n", "N", "no",
        "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "", "~", "null", "Null",
        "NULL", ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF",
    ];
    let Some(&first) = s.as_bytes().first() else {
        return true; // "" resolves to null
    };
    let hint = match first {
        b'+' | b'-' => b'S',
        b'0'..=b'9' => b'D',
        b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~' => b'M',
        b'.' => b'.',
        _ => return false,
    };
    if RESOLVE_MAP.contains(&s) {
        return true;
    }
    match hint {
        b'M' => false,
        b'.' => go_parse_float_ok(s),
        _ => {
            if parse_timestamp(s) {
                return true;
            }
            let plain: String = s.chars().filter(|&c| c != '_').collect();
            go_parse_int_base0(&plain) || (yaml_style_float(&plain) && go_parse_float_ok(&plain))
        }
    }
}

/// Go `strconv.ParseInt(s, 0, 64)` or `strconv.ParseUint(s, 0, 64)` succeeds
/// (underscores already removed).
fn go_parse_int_base0(s: &str) -> bool {
    let (sign, body) = match s.as_bytes().first() {
        Some(b'+') => (Some(false), &s[1..]),
        Some(b'-') => (Some(true), &s[1..]),
        _ => (None, s),
    };
    let Some(value) = go_parse_uint_base0(body) else {
        return false;
    };
    match sign {
        None => true, // ParseUint accepts every u64
        Some(false) => value <= i64::MAX as u64,
        Some(true) => value <= (i64::MAX as u64) + 1,
    }
}

fn go_parse_uint_base0(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let (radix, digits) = if b.len() >= 2 && b[0] == b'0' {
        match b[1] {
            b'x' | b'X' => (16, &s[2..]),
            b'b' | b'B' => (2, &s[2..]),
            b'o' | b'O' => (8, &s[2..]),
            _ => (8, &s[1..]),
        }
    } else {
        (10, s)
    };
    if digits.is_empty() || !digits.bytes().all(|c| (c as char).is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go `strconv.ParseFloat(s, 64)` succeeds, for the decimal forms that can reach it
/// (text starting with `.`, or matching [`yaml_style_float`]). Overflow is an error
/// in Go (`ErrRange`), underflow is not.
fn go_parse_float_ok(s: &str) -> bool {
    let decimal = {
        let body = s.strip_prefix(['+', '-']).unwrap_or(s);
        !body.is_empty()
            && body
                .bytes()
                .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    };
    decimal && s.parse::<f64>().is_ok_and(f64::is_finite)
}

/// yaml.v2 `parseTimestamp`: `YYYY-` followed by one of the layouts
/// `2006-1-2T15:4:5.999999999Z07:00`, the same with `t`, `2006-1-2 15:4:5.999999999`
/// or `2006-1-2`, as Go's `time.Parse` accepts them.
pub(crate) fn parse_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let lead = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if lead != 4 || b.len() == 4 || b[4] != b'-' {
        return false;
    }
    let year: u32 = b[..4].iter().fold(0, |a, &c| a * 10 + u32::from(c - b'0'));
    let mut p = 5;
    let Some(month) = getnum(b, &mut p) else {
        return false;
    };
    if b.get(p) != Some(&b'-') {
        return false;
    }
    p += 1;
    let Some(day) = getnum(b, &mut p) else {
        return false;
    };
    if !(1..=12).contains(&month) || day < 1 || day > days_in(month, year) {
        return false;
    }
    if p == b.len() {
        return true; // "2006-1-2"
    }
    let zoned = match b[p] {
        b'T' | b't' => true,
        b' ' => false,
        _ => return false,
    };
    p += 1;
    let Some(hour) = getnum(b, &mut p) else {
        return false;
    };
    if hour >= 24 || b.get(p) != Some(&b':') {
        return false;
    }
    p += 1;
    let Some(minute) = getnum(b, &mut p) else {
        return false;
    };
    if minute >= 60 || b.get(p) != Some(&b':') {
        return false;
    }
    p += 1;
    let Some(second) = getnum(b, &mut p) else {
        return false;
    };
    if second >= 60 {
        return false;
    }
    // Optional fractional seconds: [.,] followed by at least one digit.
    if matches!(b.get(p), Some(b'.' | b',')) && b.get(p + 1).is_some_and(u8::is_ascii_digit) {
        p += 1;
        while b.get(p).is_some_and(u8::is_ascii_digit) {
            p += 1;
        }
    }
    if !zoned {
        return p == b.len();
    }
    // Z07:00
    match b.get(p) {
        Some(b'Z') => p + 1 == b.len(),
        Some(b'+' | b'-') => {
            let rest = &b[p..];
            rest.len() == 6
                && rest[1].is_ascii_digit()
                && rest[2].is_ascii_digit()
                && rest[3] == b':'
                && rest[4].is_ascii_digit()
                && rest[5].is_ascii_digit()
                && (u32::from(rest[1] - b'0') * 10 + u32::from(rest[2] - b'0')) <= 24
                && (u32::from(rest[4] - b'0') * 10 + u32::from(rest[5] - b'0')) <= 60
        }
        _ => false,
    }
}

/// Go `time` `getnum(s, false)`: one or two digits.
fn getnum(b: &[u8], p: &mut usize) -> Option<u32> {
    let d0 = *b.get(*p).filter(|c| c.is_ascii_digit())?;
    *p += 1;
    match b.get(*p).filter(|c| c.is_ascii_digit()) {
        Some(&d1) => {
            *p += 1;
            Some(u32::from(d0 - b'0') * 10 + u32::from(d1 - b'0'))
        }
        None => Some(u32::from(d0 - b'0')),
    }
}

fn days_in(month: u32, year: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// yaml.v2 `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
pub(crate) fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    match b.first() {
        Some(c) if *c == b'+' || *c == b'-' || c.is_ascii_digit() => {}
        _ => return false,
    }
    if !s.contains(':') {
        return false;
    }
    let mut i = usize::from(matches!(b[0], b'+' | b'-'));
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    i += 1;
    while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        // [0-5]?[0-9]: one or two digits, the first of two at most 5.
        let d0 = b.get(i).copied().filter(u8::is_ascii_digit);
        let d1 = b.get(i + 1).copied().filter(u8::is_ascii_digit);
        match (d0, d1) {
            (Some(a), Some(_)) if a <= b'5' => i += 2,
            (Some(_), _) => i += 1,
            (None, _) => return false,
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// Length of the `!!binary` tag as libyaml counts it for the simple-key limit (handle
/// `!!` plus suffix `binary`).
const BINARY_TAG_LEN: usize = 8;

/// yaml.v2 `encodeBase64`: standard base64 with padding, cut into lines of 70 characters,
/// every line followed by `\n` when there is more than one.
pub(crate) fn go_base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    const LINE: usize = 70;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let lines = encoded.len() / LINE + 1;
    if lines == 1 {
        return encoded;
    }
    let mut out = String::with_capacity(encoded.len() + lines);
    for chunk in encoded.as_bytes().chunks(LINE) {
        // Base64 is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Go's `[]rune(string)`: the characters of `bytes`, each byte that does not start a
/// valid UTF-8 sequence becoming one U+FFFD.
fn go_runes(bytes: &[u8]) -> Vec<char> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.extend(s.chars());
                return out;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.extend(std::str::from_utf8(good).unwrap_or_default().chars());
                out.push(char::REPLACEMENT_CHARACTER);
                rest = &bad[1..];
            }
        }
    }
}

/// [`key_less`] for byte-string keys, as yaml.v2 compares Go strings (through `[]rune`).
pub(crate) fn key_less_bytes(a: &[u8], b: &[u8]) -> bool {
    match (std::str::from_utf8(a), std::str::from_utf8(b)) {
        (Ok(a), Ok(b)) => key_less(a, b),
        _ => runes_less(&go_runes(a), &go_runes(b)),
    }
}

/// yaml.v2 `keyList.Less` for two string keys: a "natural" order in which runs of
/// digits compare numerically, two letters compare by code point, and where a letter meets
/// any other character the other character sorts first (so `./\u{fffd}` before `./a`).
pub(crate) fn key_less(a: &str, b: &str) -> bool {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    runes_less(&ar, &br)
}

fn runes_less(ar: &[char], br: &[char]) -> bool {
    let digit = |c: char| c.is_ascii_digit();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return bl;
        }
        let mut an: i64 = 0;
        let mut bn: i64 = 0;
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && digit(ar[j - 1]) {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && digit(ar[ai]) {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(u32::from(ar[ai]) - u32::from('0')));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && digit(br[bi]) {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(u32::from(br[bi]) - u32::from('0')));
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

/// A stable merge sort driven by a "less" predicate; unlike `slice::sort_by` it never
/// panics when the predicate is not a total order (yaml.v2's need not be).
fn merge_sort_by<T: Copy>(v: &mut [T], less: impl Fn(&T, &T) -> bool + Copy) {
    if v.len() <= 1 {
        return;
    }
    let mid = v.len() / 2;
    merge_sort_by(&mut v[..mid], less);
    merge_sort_by(&mut v[mid..], less);
    let mut merged = Vec::with_capacity(v.len());
    let (mut i, mut j) = (0, mid);
    while i < mid && j < v.len() {
        if less(&v[j], &v[i]) {
            merged.push(v[j]);
            j += 1;
        } else {
            merged.push(v[i]);
            i += 1;
        }
    }
    merged.extend_from_slice(&v[i..mid]);
    merged.extend_from_slice(&v[j..]);
    v.copy_from_slice(&merged);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar_value(s: &str) -> String {
        let doc = Node::Struct(vec![("k", Node::Str(s))]);
        let out = emit(&doc);
        out.strip_prefix("k:")
            .and_then(|r| r.strip_suffix('\n'))
            .map(|r| r.strip_prefix(' ').unwrap_or(r))
            .unwrap_or(&out)
            .to_string()
    }

    #[test]
    fn strings_that_resolve_to_other_types_are_double_quoted() {
        for s in [
            "0",
            "1",
            "-1",
            "+1",
            "0x1F",
            "0o17",
            "0b101",
            "017",
            "1_000",
            "1.5",
            "1e5",
            ".5",
            "1.",
            "-.5e3",
            "true",
            "false",
            "yes",
            "No",
            "ON",
            "off",
            "y",
            "N",
            "~",
            "null",
            "NULL",
            ".inf",
            "-.Inf",
            ".NaN",
            "2017-01-23",
            "2017-1-2 3:04:05",
            "2017-01-23T14:10:02Z",
            "2017-01-23t14:10:02.5+01:00",
            "1:20",
            "190:20:30.15",
            "99999999999999999999",
        ] {
            assert_eq!(scalar_value(s), format!("\"{s}\""), "value {s:?}");
        }
        assert_eq!(scalar_value(""), "\"\"");
    }

    #[test]
    fn ordinary_strings_stay_plain() {
        for s in [
            "redis-server",
            "bosh",
            "./redis-server/dump.rdb",
            "2017/01/23 14:10:02 UTC",
            "be1b7e4e577b7cbcd556ec75f2f4b2e2d3afca1e40f8ce5a2b748b462cf4bd53",
            "3f1baf2147d8e9bc91fdbf21f7d384601d0c20130064a1f02d5d096ccf94a3fe",
            "2017-13-01",
            "2017-02-30",
            "1e400",
            "0xZZ",
            "-0x8000000000000001",
            "yess",
            "<<",
            "a:b",
            "a#b",
            "x-y",
            "-x",
            "ünïcödé",
            "1.2.3",
            "12:70",
        ] {
            assert_eq!(scalar_value(s), s, "value {s:?}");
        }
    }

    #[test]
    fn indicators_and_blanks_force_single_quotes() {
        assert_eq!(scalar_value("a: b"), "'a: b'");
        assert_eq!(scalar_value("a #b"), "'a #b'");
        assert_eq!(scalar_value("- x"), "'- x'");
        assert_eq!(scalar_value("*star"), "'*star'");
        assert_eq!(scalar_value("&a"), "'&a'");
        assert_eq!(scalar_value("!tag"), "'!tag'");
        assert_eq!(scalar_value("@x"), "'@x'");
        assert_eq!(scalar_value("%x"), "'%x'");
        assert_eq!(scalar_value("{x}"), "'{x}'");
        assert_eq!(scalar_value("[x]"), "'[x]'");
        assert_eq!(scalar_value("---"), "'---'");
        assert_eq!(scalar_value(" lead"), "' lead'");
        assert_eq!(scalar_value("trail "), "'trail '");
        assert_eq!(scalar_value("it's: x"), "'it''s: x'");
        assert_eq!(scalar_value("'q"), "'''q'");
        assert_eq!(scalar_value("\"q"), "'\"q'");
    }

    #[test]
    fn special_characters_force_double_quotes_with_escapes() {
        assert_eq!(scalar_value("tab\there"), "\"tab\\there\"");
        assert_eq!(scalar_value("nul\0"), "\"nul\\0\"");
        assert_eq!(scalar_value("bell\x07"), "\"bell\\a\"");
        assert_eq!(scalar_value("del\x7f"), "\"del\\x7F\"");
        assert_eq!(scalar_value("emoji😀"), "\"emoji\\U0001F600\"");
        assert_eq!(scalar_value("q\"\\\t"), "\"q\\\"\\\\\\t\"");
        assert_eq!(scalar_value("\u{feff}ab"), "\"\\uFEFF\\x61\\x62\"");
    }

    #[test]
    fn multiline_values_use_literal_style() {
        let doc = Node::Struct(vec![("k", Node::Str("a\nb"))]);
        assert_eq!(emit(&doc), "k: |-\n  a\n  b\n");
        let doc = Node::Struct(vec![("k", Node::Str("a\nb\n"))]);
        assert_eq!(emit(&doc), "k: |\n  a\n  b\n");
        let doc = Node::Struct(vec![("k", Node::Str(" a\n"))]);
        assert_eq!(emit(&doc), "k: |2\n   a\n");
        // A multiline key is not a simple key: `? ` with a literal scalar.
        let doc = Node::Map(vec![(b"a\nb", Node::Str("v"))]);
        assert_eq!(emit(&doc), "? |-\n  a\n  b\n: v\n");
    }

    #[test]
    fn long_keys_become_complex_keys() {
        let key = format!("./{}", "k".repeat(127));
        let doc = Node::Map(vec![(key.as_bytes(), Node::Str("v"))]);
        assert_eq!(emit(&doc), format!("? {key}\n: v\n"));
        let key = format!("./{}", "k".repeat(126));
        let doc = Node::Map(vec![(key.as_bytes(), Node::Str("v"))]);
        assert_eq!(emit(&doc), format!("{key}: v\n"));
    }

    #[test]
    fn long_plain_values_fold_at_80_columns() {
        let words = vec!["word"; 30].join(" ");
        let doc = Node::Struct(vec![("key", Node::Str(&words))]);
        let out = emit(&doc);
        // The first line is broken at the first space after column 80 and the
        // continuation is indented by two.
        let first = out.lines().next().unwrap_or_default();
        assert!(first.len() > 80 && first.len() <= 86, "{out}");
        assert!(out.lines().nth(1).unwrap_or_default().starts_with("  word"));
        assert_eq!(out.lines().count(), 2);
    }

    #[test]
    fn empty_collections_use_flow_style() {
        let doc = Node::Struct(vec![
            ("a", Node::Seq(vec![])),
            ("b", Node::Map(vec![])),
            (
                "c",
                Node::Seq(vec![Node::Struct(vec![("m", Node::Map(vec![]))])]),
            ),
        ]);
        assert_eq!(emit(&doc), "a: []\nb: {}\nc:\n- m: {}\n");
        assert_eq!(emit(&Node::Struct(vec![])), "{}\n");
    }

    #[test]
    fn nested_block_layout_matches_yaml_v2() {
        let doc = Node::Struct(vec![(
            "instances",
            Node::Seq(vec![Node::Struct(vec![
                ("name", Node::Str("redis")),
                ("index", Node::Str("0")),
                (
                    "artifacts",
                    Node::Seq(vec![Node::Struct(vec![
                        ("name", Node::Str("redis-server")),
                        (
                            "checksums",
                            Node::Map(vec![(b"./b", Node::Str("x")), (b"./a", Node::Str("y"))]),
                        ),
                    ])]),
                ),
            ])]),
        )]);
        assert_eq!(
            emit(&doc),
            "instances:\n- name: redis\n  index: \"0\"\n  artifacts:\n  - name: redis-server\n    checksums:\n      ./a: \"y\"\n      ./b: x\n"
        );
    }

    #[test]
    fn key_order_is_yaml_v2_natural_order() {
        let mut keys = vec![
            "./file10", "./file9", "./file1", "./a", "./B", "./_x", "./file09",
        ];
        merge_sort_by(&mut keys, |a, b| key_less(a, b));
        assert_eq!(
            keys,
            vec![
                "./_x", "./B", "./a", "./file1", "./file9", "./file09", "./file10"
            ]
        );
    }
}
