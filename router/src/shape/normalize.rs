//! One pass over the SQL text: collapse whitespace, drop comments (except citus-proxy hints),
//! and in DML statements replace number and plain string literals by `$n` slots. The result is
//! the cache key; the literal spans are re-bound on every cache hit.

use super::hint::parse_hint;
use crate::analysis::CacheHint;
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiteralKind {
    Number,
    String,
}

/// A stripped literal: byte span of its content in the original text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Literal {
    pub kind: LiteralKind,
    pub start: usize,
    pub end: usize,
    /// A string containing `''` that must be unescaped.
    pub escaped: bool,
}

impl Literal {
    pub fn value<'s>(&self, sql: &'s str) -> Cow<'s, str> {
        let raw = sql.get(self.start..self.end).unwrap_or("");
        if self.escaped {
            Cow::Owned(raw.replace("''", "'"))
        } else {
            Cow::Borrowed(raw)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub shape: String,
    pub literals: Vec<Literal>,
    /// Slot number of the first literal (one past the highest `$n` already in the text).
    pub literal_base: u32,
    /// Unquoted SELECT keywords seen (a guard for the analyser's coverage).
    pub selects: usize,
    pub hint: Option<CacheHint>,
}

#[derive(Clone, Copy, PartialEq)]
enum Prev {
    Start,
    /// Operator or opening punctuation: a literal may follow.
    Op,
    /// A keyword after which an expression starts.
    ExprKeyword,
    /// Identifier or other keyword (`uuid '…'`, `INTERVAL '…'` are typed literals: keep them).
    Word,
    /// A value, closing parenthesis, `::`, `.`.
    Other,
}

/// Keywords after which an expression starts (so a literal may follow). Matched on the folded
/// word: this runs for every word of every statement.
fn is_expr_keyword(w: &[u8]) -> bool {
    matches!(
        w,
        b"select"
            | b"where"
            | b"and"
            | b"or"
            | b"not"
            | b"in"
            | b"values"
            | b"when"
            | b"then"
            | b"else"
            | b"like"
            | b"ilike"
            | b"between"
            | b"is"
            | b"on"
            | b"having"
            | b"limit"
            | b"offset"
            | b"returning"
            | b"distinct"
            | b"by"
            | b"any"
            | b"all"
            | b"some"
            | b"from"
            | b"case"
            | b"set"
    )
}

fn is_dml_keyword(w: &[u8]) -> bool {
    matches!(w, b"select" | b"insert" | b"update" | b"delete" | b"with" | b"values" | b"table")
}

/// Longest keyword either list holds.
const KEYWORD_MAX: usize = 9;

/// `word` in ASCII lower case, or empty when it is too long to be a keyword.
fn fold_keyword<'b>(word: &str, buf: &'b mut [u8; KEYWORD_MAX]) -> &'b [u8] {
    let Some(dst) = buf.get_mut(..word.len()) else { return &[] };
    for (d, c) in dst.iter_mut().zip(word.bytes()) {
        *d = c.to_ascii_lowercase();
    }
    dst
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}
fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// Highest `$n` in the text (a `$` inside a string only raises the base, which is harmless).
fn max_param(b: &[u8]) -> u32 {
    let mut max = 0u32;
    let mut i = 0;
    while let Some(off) = b.get(i..).and_then(|r| r.iter().position(|c| *c == b'$')) {
        let start = i + off + 1;
        let end = start + b.get(start..).map_or(0, |r| r.iter().take_while(|c| c.is_ascii_digit()).count());
        if end > start {
            let n = std::str::from_utf8(b.get(start..end).unwrap_or_default()).ok().and_then(|s| s.parse().ok());
            max = max.max(n.unwrap_or(u32::MAX / 2));
        }
        i = end.max(start);
    }
    max
}

/// `n` in decimal (slot numbers; `write!` costs more than the rest of a short statement).
fn push_decimal(out: &mut String, n: usize) {
    let mut digits = [0u8; 20];
    let mut k = digits.len();
    let mut v = n;
    loop {
        k -= 1;
        if let Some(d) = digits.get_mut(k) {
            *d = b'0' + (v % 10) as u8;
        }
        v /= 10;
        if v == 0 || k == 0 {
            break;
        }
    }
    out.extend(digits.get(k..).unwrap_or_default().iter().map(|d| char::from(*d)));
}

struct Lexer<'s> {
    sql: &'s str,
    b: &'s [u8],
    i: usize,
    out: String,
    /// Source span to copy verbatim, not yet in `out`: consecutive tokens are copied in one go.
    run: Option<(usize, usize)>,
    space: bool,
}

impl Lexer<'_> {
    fn at(&self, k: usize) -> u8 {
        self.b.get(self.i + k).copied().unwrap_or(0)
    }
    /// Whether a pending space must be written before the next token.
    fn take_space(&mut self) -> bool {
        let sep = self.space && (self.run.is_some() || !self.out.is_empty());
        self.space = false;
        sep
    }
    fn flush(&mut self) {
        if let Some((from, to)) = self.run.take() {
            self.out.push_str(self.sql.get(from..to).unwrap_or(""));
        }
    }
    fn emit(&mut self, from: usize, to: usize) {
        let sep = self.take_space();
        if let Some((start, end)) = self.run {
            // The source already has exactly what the shape needs between the two tokens.
            let joins = if sep { end + 1 == from && self.b.get(end) == Some(&b' ') } else { end == from };
            if joins {
                self.run = Some((start, to));
                return;
            }
        }
        self.flush();
        if sep {
            self.out.push(' ');
        }
        self.run = Some((from, to));
    }
    fn emit_slot(&mut self, n: usize) {
        let sep = self.take_space();
        self.flush();
        if sep {
            self.out.push(' ');
        }
        self.out.push('$');
        push_decimal(&mut self.out, n);
    }
    /// End of a quoted run starting at `self.i` (the opening quote), `backslash` for E'' strings.
    fn quoted_end(&self, q: u8, backslash: bool) -> (usize, bool) {
        let mut j = self.i + 1;
        let mut doubled = false;
        while let Some(&c) = self.b.get(j) {
            if backslash && c == b'\\' {
                j += 2;
                continue;
            }
            if c == q {
                if self.b.get(j + 1) == Some(&q) {
                    doubled = true;
                    j += 2;
                    continue;
                }
                return (j + 1, doubled);
            }
            j += 1;
        }
        (self.b.len(), doubled)
    }
}

pub fn normalize(sql: &str) -> Normalized {
    let b = sql.as_bytes();
    let literal_base = max_param(b).saturating_add(1);
    let mut lx = Lexer { sql, b, i: 0, out: String::with_capacity(sql.len() + 16), run: None, space: false };
    let mut literals = Vec::new();
    let (mut prev, mut selects, mut hint) = (Prev::Start, 0usize, None);
    let mut dml: Option<bool> = None;
    let (mut depth, mut no_strip_depth, mut in_type) = (0i32, None::<i32>, false);
    while lx.i < b.len() {
        let c = lx.at(0);
        let start = lx.i;
        let strip = dml == Some(true) && no_strip_depth.is_none() && matches!(prev, Prev::Op | Prev::ExprKeyword);
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                lx.space = true;
                lx.i += 1;
            }
            b'-' if lx.at(1) == b'-' => {
                lx.i = b.get(start..).and_then(|r| r.iter().position(|c| *c == b'\n')).map_or(b.len(), |p| start + p);
                lx.space = true;
            }
            b'/' if lx.at(1) == b'*' => {
                let (mut j, mut nest) = (start + 2, 1);
                while j < b.len() && nest > 0 {
                    match (b.get(j), b.get(j + 1)) {
                        (Some(b'/'), Some(b'*')) => (nest, j) = (nest + 1, j + 2),
                        (Some(b'*'), Some(b'/')) => (nest, j) = (nest - 1, j + 2),
                        _ => j += 1,
                    }
                }
                lx.i = j;
                let body = sql.get(start + 2..j.saturating_sub(2).max(start + 2)).unwrap_or("");
                if body.contains("citus-proxy:") {
                    hint = parse_hint(body).or(hint);
                    lx.emit(start, j);
                } else {
                    lx.space = true;
                }
            }
            b'\'' => {
                let prefixed = start > 0 && b.get(start - 1).is_some_and(|p| is_ident_char(*p)) && !lx.space;
                let backslash = prefixed && matches!(b.get(start - 1), Some(b'e' | b'E'));
                let (end, doubled) = lx.quoted_end(b'\'', backslash);
                if strip && !prefixed && end > start + 1 && b.get(end - 1) == Some(&b'\'') {
                    let n = literal_base as usize + literals.len();
                    literals.push(Literal { kind: LiteralKind::String, start: start + 1, end: end - 1, escaped: doubled });
                    lx.emit_slot(n);
                } else {
                    lx.emit(start, end);
                }
                lx.i = end;
                prev = Prev::Other;
            }
            b'"' => {
                let (end, _) = lx.quoted_end(b'"', false);
                lx.emit(start, end);
                lx.i = end;
                prev = Prev::Word;
            }
            b'$' if lx.at(1).is_ascii_digit() => {
                let end = start + 1 + b.get(start + 1..).map_or(0, |r| r.iter().take_while(|c| c.is_ascii_digit()).count());
                lx.emit(start, end);
                lx.i = end;
                prev = Prev::Other;
            }
            b'$' => {
                // Dollar quoting: $tag$ … $tag$ (kept verbatim, usually function bodies).
                let tag_len = b.get(start + 1..).map_or(0, |r| r.iter().take_while(|c| is_ident_char(**c) && **c != b'$').count());
                if b.get(start + 1 + tag_len) == Some(&b'$') {
                    let tag = sql.get(start..start + tag_len + 2).unwrap_or("$$");
                    let body_start = start + tag_len + 2;
                    let end = sql.get(body_start..).and_then(|r| r.find(tag)).map_or(b.len(), |p| body_start + p + tag.len());
                    lx.emit(start, end);
                    lx.i = end;
                    prev = Prev::Other;
                } else {
                    lx.emit(start, start + 1);
                    lx.i += 1;
                    prev = Prev::Op;
                }
            }
            b'0'..=b'9' | b'.' if c != b'.' || lx.at(1).is_ascii_digit() => {
                let mut j = start;
                let digits = |j: &mut usize| {
                    while b.get(*j).is_some_and(u8::is_ascii_digit) {
                        *j += 1;
                    }
                };
                digits(&mut j);
                if b.get(j) == Some(&b'.') && b.get(j + 1) != Some(&b'.') {
                    j += 1;
                    digits(&mut j);
                }
                if matches!(b.get(j), Some(b'e' | b'E')) {
                    let k = if matches!(b.get(j + 1), Some(b'+' | b'-')) { j + 2 } else { j + 1 };
                    if b.get(k).is_some_and(u8::is_ascii_digit) {
                        j = k;
                        digits(&mut j);
                    }
                }
                if strip {
                    let n = literal_base as usize + literals.len();
                    literals.push(Literal { kind: LiteralKind::Number, start, end: j, escaped: false });
                    lx.emit_slot(n);
                } else {
                    lx.emit(start, j);
                }
                lx.i = j;
                prev = Prev::Other;
            }
            c if is_ident_start(c) => {
                let len = b.get(start..).map_or(0, |r| r.iter().take_while(|c| is_ident_char(**c)).count());
                let end = start + len;
                lx.emit(start, end);
                lx.i = end;
                let mut buf = [0u8; KEYWORD_MAX];
                let word = fold_keyword(sql.get(start..end).unwrap_or(""), &mut buf);
                if dml.is_none() {
                    dml = Some(is_dml_keyword(word));
                }
                if word == b"select" {
                    selects += 1;
                }
                prev = if is_expr_keyword(word) { Prev::ExprKeyword } else { Prev::Word };
                if word == b"as" {
                    in_type = true;
                } else if prev == Prev::ExprKeyword {
                    in_type = false;
                }
            }
            b';' => {
                lx.emit(start, start + 1);
                lx.i += 1;
                (dml, prev, depth, no_strip_depth, in_type) = (None, Prev::Start, 0, None, false);
            }
            b'(' => {
                depth += 1;
                if in_type && prev == Prev::Word && no_strip_depth.is_none() {
                    no_strip_depth = Some(depth);
                }
                in_type = false;
                lx.emit(start, start + 1);
                lx.i += 1;
                prev = Prev::Op;
            }
            b')' => {
                if no_strip_depth == Some(depth) {
                    no_strip_depth = None;
                }
                depth -= 1;
                lx.emit(start, start + 1);
                lx.i += 1;
                prev = Prev::Other;
            }
            b':' if lx.at(1) == b':' => {
                lx.emit(start, start + 2);
                lx.i += 2;
                in_type = true;
                prev = Prev::Other;
            }
            _ => {
                // Any other byte: punctuation or operator character (multi-byte chars are idents).
                lx.emit(start, start + 1);
                lx.i += 1;
                if c != b'[' && c != b']' {
                    in_type = false;
                }
                prev = if c == b'.' { Prev::Other } else { Prev::Op };
            }
        }
        if prev == Prev::Other && c != b':' {
            in_type = false;
        }
    }
    lx.flush();
    Normalized { shape: lx.out, literals, literal_base, selects, hint }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_literals_in_dml() {
        let n = normalize("SELECT * FROM users WHERE user_id = 42");
        assert_eq!(n.shape, "SELECT * FROM users WHERE user_id = $1");
        assert_eq!(n.literals.len(), 1);
        let m = normalize("select  *  from users where user_id = 43 -- comment");
        assert_ne!(n.shape, m.shape, "case differs");
        assert_eq!(normalize("SELECT * FROM users WHERE user_id=43").shape, "SELECT * FROM users WHERE user_id=$1");
    }

    #[test]
    fn slot_numbers_and_spacing() {
        assert_eq!(normalize("  SELECT   a ,b\tFROM t WHERE x = 1").shape, "SELECT a ,b FROM t WHERE x = $1");
        let many = (0..12).map(|i| format!("{i}")).collect::<Vec<_>>().join(",");
        let n = normalize(&format!("SELECT 1 FROM t WHERE a IN ({many}) AND b = $7"));
        assert_eq!(n.shape, "SELECT $8 FROM t WHERE a IN ($9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20) AND b = $7");
        let mut s = String::new();
        for n in [0, 9, 10, 4_294_967_295, usize::MAX] {
            s.clear();
            push_decimal(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn in_lists_of_different_length_differ() {
        assert_ne!(normalize("SELECT 1 FROM t WHERE a IN (1,2)").shape, normalize("SELECT 1 FROM t WHERE a IN (1,2,3)").shape);
    }

    #[test]
    fn keeps_typed_literals_and_type_modifiers() {
        let n = normalize("SELECT uuid 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', x::numeric(10,2), E'a\\'b' FROM t WHERE k = 'x''y'");
        assert!(n.shape.contains("uuid 'a0eebc99"), "{}", n.shape);
        assert!(n.shape.contains("numeric(10,2)"), "{}", n.shape);
        assert!(n.shape.contains("E'a\\'b'"), "{}", n.shape);
        assert_eq!(n.literals.len(), 1);
        assert_eq!(
            n.literals[0].value("SELECT uuid 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', x::numeric(10,2), E'a\\'b' FROM t WHERE k = 'x''y'"),
            "x'y"
        );
    }

    #[test]
    fn numbers_params_and_base() {
        let sql = "UPDATE users SET email = 'x' WHERE user_id = $1 AND n > -42.5e1";
        let n = normalize(sql);
        assert_eq!(n.literal_base, 2);
        assert_eq!(n.shape, "UPDATE users SET email = $2 WHERE user_id = $1 AND n > -$3");
        assert_eq!(n.literals[1].value(sql), "42.5e1");
    }

    #[test]
    fn utility_statements_untouched_and_hints_kept() {
        assert_eq!(normalize("SET statement_timeout = 5").shape, "SET statement_timeout = 5");
        let n = normalize("/* citus-proxy: cache ttl=30s */ SELECT 1; /* other */ SELECT 2");
        assert!(n.shape.starts_with("/* citus-proxy: cache ttl=30s */"));
        assert_eq!(n.hint.and_then(|h| h.ttl), Some(std::time::Duration::from_secs(30)));
        assert_eq!(n.selects, 2);
        assert_eq!(n.literals.len(), 2);
    }
}
