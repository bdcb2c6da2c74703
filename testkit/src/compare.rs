//! Comparisons whose failure reads well in a terminal, a JSON report and Gradescope alike
//! (no colour): bytes as their length and the hex of the first difference, never raw;
//! text as a line diff (`-` expected, `+` actual), in the manner of ripgrep's `eqnice!`.

use std::fmt::Write as _;

/// How many bytes around the first difference [`bytes_diff`] shows.
const SHOWN: usize = 16;

/// `None` if `expected == actual`; otherwise both lengths and the hex of the bytes from
/// the first difference on: "expected 65536 bytes, got 65530; they first differ at byte
/// 4096: expected 61 62 63 .., got 0a 0a 0a ..".
pub fn bytes_diff(expected: &[u8], actual: &[u8]) -> Option<String> {
    if expected == actual {
        return None;
    }
    let first = expected
        .iter()
        .zip(actual)
        .position(|(e, a)| e != a)
        .unwrap_or(expected.len().min(actual.len()));
    let around = |bytes: &[u8]| {
        if first >= bytes.len() {
            return "nothing (it ends there)".to_owned();
        }
        let end = (first + SHOWN).min(bytes.len());
        let more = if end < bytes.len() { " .." } else { "" };
        format!("{}{more}", hex(&bytes[first..end]))
    };
    Some(format!(
        "expected {} bytes, got {}; they first differ at byte {first}: expected {}, got {}",
        expected.len(),
        actual.len(),
        around(expected),
        around(actual)
    ))
}

/// `bytes` as space-separated hex pairs: "0a ff 00".
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Bytes for a message: short printable text quoted, anything else as its length and the
/// hex of its first bytes.
pub fn show(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text)
            if bytes.len() <= 200
                && text
                    .chars()
                    .all(|c| !c.is_control() || c == '\n' || c == '\t') =>
        {
            format!("{text:?}")
        }
        _ => {
            let end = bytes.len().min(SHOWN);
            let more = if end < bytes.len() { " .." } else { "" };
            format!("{} bytes: {}{more}", bytes.len(), hex(&bytes[..end]))
        }
    }
}

/// Fails with [`bytes_diff`] unless the two are equal; `what` names what was compared.
#[track_caller]
pub fn assert_same_bytes(what: &str, expected: &[u8], actual: &[u8]) {
    if let Some(diff) = bytes_diff(expected, actual) {
        panic!("{what}: {diff}");
    }
}

/// A line diff of two texts: unchanged lines with two spaces, expected-only lines with
/// `-`, actual-only lines with `+`; runs of unchanged lines far from a change are cut.
pub fn text_diff(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    // A longest common subsequence table, for inputs of a size a message can show.
    if e.len() * a.len() > 4_000_000 {
        return bytes_diff(expected.as_bytes(), actual.as_bytes()).unwrap_or_default();
    }
    let mut lcs = vec![vec![0u32; a.len() + 1]; e.len() + 1];
    for i in (0..e.len()).rev() {
        for j in (0..a.len()).rev() {
            lcs[i][j] = if e[i] == a[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < e.len() || j < a.len() {
        if i < e.len() && j < a.len() && e[i] == a[j] {
            ops.push((' ', e[i]));
            i += 1;
            j += 1;
        } else if i < e.len() && (j == a.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', e[i]));
            i += 1;
        } else {
            ops.push(('+', a[j]));
            j += 1;
        }
    }
    const CONTEXT: usize = 2;
    let near_change = |k: usize| {
        let lo = k.saturating_sub(CONTEXT);
        let hi = (k + CONTEXT + 1).min(ops.len());
        ops[lo..hi].iter().any(|(op, _)| *op != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (op, line)) in ops.iter().enumerate() {
        if *op == ' ' && !near_change(k) {
            if !skipped {
                out.push_str("  ...\n");
                skipped = true;
            }
            continue;
        }
        skipped = false;
        let _ = writeln!(out, "{op} {line}");
    }
    if expected.ends_with('\n') != actual.ends_with('\n') {
        let which = if expected.ends_with('\n') {
            "the actual text lacks the final newline"
        } else {
            "the actual text has a final newline the expected one lacks"
        };
        let _ = writeln!(out, "({which})");
    }
    out
}

/// Fails with a line diff (`-` expected, `+` actual) unless the texts are equal.
#[track_caller]
pub fn assert_same_text(what: &str, expected: &str, actual: &str) {
    if expected != actual {
        panic!(
            "{what}: the text differs (- expected, + actual):\n{}",
            text_diff(expected, actual)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_show_lengths_and_hex() {
        let d = bytes_diff(b"abcdef", b"abXdef\x00").unwrap();
        assert_eq!(
            d,
            "expected 6 bytes, got 7; they first differ at byte 2: expected 63 64 65 66, \
             got 58 64 65 66 00"
        );
        let d = bytes_diff(b"abc", b"ab").unwrap();
        assert!(
            d.ends_with("expected 63, got nothing (it ends there)"),
            "{d}"
        );
        assert_eq!(bytes_diff(b"same", b"same"), None);
    }

    #[test]
    fn binary_is_never_shown_raw() {
        assert_eq!(show(b"hi\n"), "\"hi\\n\"");
        assert_eq!(show(&[0xff, 0, 1]), "3 bytes: ff 00 01");
    }

    #[test]
    fn text_diff_marks_lines() {
        let d = text_diff("a\nb\nc\n", "a\nB\nc\n");
        assert_eq!(d, "  a\n- b\n+ B\n  c\n");
        assert!(text_diff("a", "a\n").contains("final newline"));
    }
}
