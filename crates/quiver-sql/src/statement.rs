//! Bound parameters: generation marks each one in the text, and [`Binds::finish`] turns
//! the marks into the dialect's placeholders in text order, so positional placeholders
//! (`?`) line up with `params` whatever order the pieces were built in.

use crate::{Dialect, Param, Statement};

/// Marks a parameter in SQL under construction. Identifiers with control characters are
/// refused, and our own literals contain none, so the mark cannot occur otherwise.
const MARK: char = '\u{1}';

#[derive(Debug, Default)]
pub(crate) struct Binds {
    params: Vec<Param>,
}

impl Binds {
    /// A mark standing for `param` until [`finish`](Self::finish).
    pub(crate) fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("{MARK}{}{MARK}", self.params.len() - 1)
    }

    pub(crate) fn finish(self, d: &dyn Dialect, marked: &str) -> Statement {
        let mut sql = String::with_capacity(marked.len());
        let mut params = Vec::with_capacity(self.params.len());
        let mut pieces = marked.split(MARK);
        // Pieces alternate: text, mark index, text, ...
        sql.push_str(pieces.next().unwrap_or_default());
        while let Some(index) = pieces.next() {
            let index: usize = index.parse().expect("parameter mark holds its index");
            sql.push_str(&d.placeholder(params.len()));
            params.push(self.params[index].clone());
            sql.push_str(pieces.next().unwrap_or_default());
        }
        Statement { sql, params }
    }
}

/// Byte ranges of the placeholders of `sql` outside quoted identifiers and string
/// literals, each with the index of the parameter it stands for.
fn placeholders(d: &dyn Dialect, sql: &str) -> Vec<(usize, usize, usize)> {
    let bytes = sql.as_bytes();
    // Only the dialect's own placeholder form counts (`@` and `$` mean other things elsewhere).
    let style = d.placeholder(0).as_bytes()[0];
    let mut found = Vec::new();
    let mut positional = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() {
                    if quote == b'\'' && d.backslash_escapes() && bytes[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if bytes[i] == quote {
                        // A doubled quote is an escaped one: stay inside.
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'?' if style == b'?' => {
                found.push((i, i + 1, positional));
                positional += 1;
                i += 1;
            }
            b'$' | b'@' if bytes[i] == style => {
                let start = i;
                let mut j = i + 1;
                if bytes[i] == b'@' && bytes.get(j) == Some(&b'p') {
                    j += 1;
                }
                let digits = j;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                if j > digits && (bytes[start] == b'$' || j > start + 2) {
                    let n: usize = sql[digits..j].parse().unwrap_or(0);
                    let index = if bytes[start] == b'$' {
                        n.saturating_sub(1)
                    } else {
                        n
                    };
                    found.push((start, j, index));
                }
                i = j.max(i + 1);
            }
            _ => i += 1,
        }
    }
    found
}

/// The statement with params rendered as typed literals (for clients that cannot bind); only our
/// own typed values are rendered, never strings from users.
pub fn render_inline(d: &dyn Dialect, s: &Statement) -> String {
    let mut out = String::with_capacity(s.sql.len());
    let mut last = 0;
    for (start, end, index) in placeholders(d, &s.sql) {
        let Some(param) = s.params.get(index) else {
            continue;
        };
        out.push_str(&s.sql[last..start]);
        out.push_str(&match param {
            Param::Int(v) => d.int_literal(*v),
            Param::Timestamp(t) => d.timestamp_literal(*t),
        });
        last = end;
    }
    out.push_str(&s.sql[last..]);
    out
}
