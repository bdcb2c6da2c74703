//! Rust source cut into normalised tokens for [`super`]: no crate needed, and no need to
//! parse: a submission that does not compile is compared all the same.

/// A token: its normalised form and the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    /// Keywords and punctuation as written, identifiers `I`, literals `L`, lifetimes `'`.
    pub norm: String,
    /// Its line (1-based).
    pub line: usize,
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "Some", "None", "Ok", "Err",
];

/// Rust source as normalised tokens: keywords and punctuation as themselves, identifiers as
/// `I`, literals as `L`, lifetimes as `'`; comments and whitespace dropped.
pub(super) fn tokens(src: &str) -> Vec<Token> {
    let s: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let push = |out: &mut Vec<Token>, norm: &str, line: usize| {
        out.push(Token {
            norm: norm.to_owned(),
            line,
        })
    };
    // Advances over s[i..j], counting line breaks.
    let skip = |i: usize, j: usize, line: &mut usize| {
        *line += s[i..j.min(s.len())].iter().filter(|&&c| c == '\n').count();
        j.min(s.len())
    };
    while i < s.len() {
        let c = s[i];
        let next = s.get(i + 1).copied();
        if c.is_whitespace() {
            i = skip(i, i + 1, &mut line);
        } else if c == '/' && next == Some('/') {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let (mut j, mut depth) = (i + 2, 1);
            while j < s.len() && depth > 0 {
                if s[j] == '/' && s.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if s[j] == '*' && s.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            i = skip(i, j, &mut line);
        } else if let Some(end) = raw_string_end(&s, i) {
            push(&mut out, "L", line);
            i = skip(i, end, &mut line);
        } else if c == '"' || (c == 'b' && next == Some('"')) {
            let mut j = if c == 'b' { i + 2 } else { i + 1 };
            while j < s.len() && s[j] != '"' {
                j += if s[j] == '\\' { 2 } else { 1 };
            }
            push(&mut out, "L", line);
            i = skip(i, j + 1, &mut line);
        } else if c == '\'' || (c == 'b' && next == Some('\'')) {
            let start = if c == 'b' { i + 1 } else { i };
            // A char literal closes within a few characters; a lifetime does not.
            let close = (start + 2..(start + 12).min(s.len()))
                .find(|&j| s[j] == '\'' && (s[j - 1] != '\\' || s[j - 2] == '\\'));
            let is_char = s.get(start + 1) == Some(&'\\') || s.get(start + 2) == Some(&'\'');
            match close.filter(|_| is_char) {
                Some(j) => {
                    push(&mut out, "L", line);
                    i = j + 1;
                }
                None => {
                    let mut j = start + 1;
                    while j < s.len() && (s[j].is_alphanumeric() || s[j] == '_') {
                        j += 1;
                    }
                    push(&mut out, "'", line);
                    i = j;
                }
            }
        } else if c.is_ascii_digit() {
            let mut j = i;
            while j < s.len()
                && (s[j].is_alphanumeric()
                    || s[j] == '_'
                    || (s[j] == '.' && s.get(j + 1).is_some_and(char::is_ascii_digit)))
            {
                j += 1;
            }
            push(&mut out, "L", line);
            i = j;
        } else if c.is_alphabetic() || c == '_' {
            let mut j = i;
            while j < s.len() && (s[j].is_alphanumeric() || s[j] == '_') {
                j += 1;
            }
            let word: String = s[i..j].iter().collect();
            let norm = if KEYWORDS.contains(&word.as_str()) {
                word.as_str()
            } else {
                "I"
            };
            push(&mut out, norm, line);
            i = j;
        } else {
            push(&mut out, &c.to_string(), line);
            i += 1;
        }
    }
    out
}

/// The end (exclusive) of a raw string literal `r"…"`, `r#"…"#`, `br"…"` starting at `i`.
fn raw_string_end(s: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if s.get(j) == Some(&'b') {
        j += 1;
    }
    if s.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = s[j..].iter().take_while(|&&c| c == '#').count();
    j += hashes;
    if s.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < s.len() {
        if s[j] == '"'
            && s[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renamed identifiers, changed literals and comments do not hide shared code.
    #[test]
    fn tokens_hide_names_literals_and_comments() {
        let a: Vec<String> = tokens("let x = 'a'; // hi\nfoo(\"s\", 3.5, r#\"q\"#) /* c */ ")
            .into_iter()
            .map(|t| t.norm)
            .collect();
        let b: Vec<String> = tokens("let yy = '\\n';\nbar(\"other\", 7, b\"z\")")
            .into_iter()
            .map(|t| t.norm)
            .collect();
        assert_eq!(a, b);
        assert_eq!(a.join(" "), "let I = L ; I ( L , L , L )");
        let life: Vec<String> = tokens("fn f<'a>(x: &'a str) -> char { 'x' }")
            .into_iter()
            .map(|t| t.norm)
            .collect();
        assert_eq!(life.join(" "), "fn I < ' > ( I : & ' I ) - > I { L }");
    }
}
