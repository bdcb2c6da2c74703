//! Code similarity across a class, the signal Gradescope, Autolab with MOSS and CodeGrade
//! give instructors: which pairs of submissions share long runs of code, and where.
//!
//! Each submission's editable files are cut into tokens (comments and whitespace dropped;
//! identifiers, lifetimes and literals replaced by their kind, so renaming a variable or
//! changing a string changes nothing), every run of [`K`] tokens is hashed, and winnowing
//! (Schleimer, Wilkerson and Aiken, SIGMOD 2003) keeps the smallest hash of every window of
//! [`W`] consecutive ones: any run of `K + W - 1` tokens two submissions share gives both a
//! common fingerprint. Every run of the skeleton's own code is subtracted first, so code the
//! students were all given never counts.
//!
//! It is a signal for a person to look at, never a verdict or a score: two students who
//! follow the handout closely can share a lot. It appears on the summary page only, never
//! in a student's report.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

mod tokens;
use tokens::{Token, tokens};

/// Tokens per hashed run: shorter runs (a `for` header, a `match` arm) are everywhere.
pub const K: usize = 12;
/// The winnowing window: a shared run of `K + W - 1` tokens is always found.
pub const W: usize = 8;
/// Pairs shown at most.
pub const TOP: usize = 10;
/// Fewest shared fingerprints that make a pair worth showing.
pub const MIN_SHARED: usize = 4;

/// One submission's code: (path in the crate, text) of each editable file.
pub type Code = Vec<(String, String)>;

/// A pair of submissions that share code.
#[derive(Debug, Clone)]
pub struct Pair {
    /// One submission's name.
    pub a: String,
    /// The other's.
    pub b: String,
    /// Fingerprints they share.
    pub shared: usize,
    /// Share of `a`'s own fingerprints (not the skeleton's) that `b` has too, 0 to 1.
    pub of_a: f64,
    /// Share of `b`'s that `a` has too.
    pub of_b: f64,
    /// The longest shared stretches, side by side.
    pub fragments: Vec<Fragment>,
}

/// A stretch of code two submissions share: where it is in each, and its text in each.
#[derive(Debug, Clone)]
pub struct Fragment {
    /// File of `a`.
    pub a_file: String,
    /// First and last line in `a`'s file (1-based).
    pub a_lines: (usize, usize),
    /// Those lines of `a`.
    pub a_text: String,
    /// File of `b`.
    pub b_file: String,
    /// First and last line in `b`'s file.
    pub b_lines: (usize, usize),
    /// Those lines of `b`.
    pub b_text: String,
}

fn fnv(parts: &[Token]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for t in parts {
        for b in t.norm.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Where a fingerprint was taken: file index and the token run's first and last line.
#[derive(Debug, Clone, Copy)]
struct At {
    file: usize,
    first: usize,
    last: usize,
    /// The run's index in the submission, in file order: consecutive runs are neighbours.
    seq: usize,
}

/// Every `K`-token run's hash of each file, with where it is.
fn runs(code: &Code) -> Vec<(u64, At)> {
    let mut out = Vec::new();
    for (f, (_, text)) in code.iter().enumerate() {
        let toks = tokens(text);
        for w in toks.windows(K) {
            let seq = out.len();
            out.push((
                fnv(w),
                At {
                    file: f,
                    first: w[0].line,
                    last: w[K - 1].line,
                    seq,
                },
            ));
        }
    }
    out
}

/// Winnowing: the smallest hash of every window of `W` runs (the rightmost when tied).
fn winnow(runs: &[(u64, At)]) -> Vec<(u64, At)> {
    if runs.len() <= W {
        return runs
            .iter()
            .min_by_key(|r| r.0)
            .into_iter()
            .copied()
            .collect();
    }
    let mut picked: Vec<usize> = Vec::new();
    for start in 0..=runs.len() - W {
        let win = &runs[start..start + W];
        let (off, _) = win
            .iter()
            .enumerate()
            .rev()
            .min_by_key(|(_, r)| r.0)
            .unwrap_or((0, &win[0]));
        if picked.last() != Some(&(start + off)) {
            picked.push(start + off);
        }
    }
    picked.into_iter().map(|i| runs[i]).collect()
}

/// A submission's fingerprints, without the skeleton's: hash to where it occurs first.
struct Prints {
    name: String,
    code: Code,
    at: HashMap<u64, At>,
    /// The keys of `at`, sorted: pairs are counted by merging these.
    sorted: Vec<u64>,
}

/// How many values two sorted lists share.
fn common(a: &[u64], b: &[u64]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// The pairs of submissions that share the most code beyond the skeleton, most first.
/// `class` holds each submission's name and code.
pub fn similar_pairs(skeleton: &Code, class: &[(String, Code)]) -> Vec<Pair> {
    let given: HashSet<u64> = runs(skeleton).into_iter().map(|r| r.0).collect();
    let prints: Vec<Prints> = class
        .iter()
        .map(|(name, code)| {
            let mut at = HashMap::new();
            for (h, a) in winnow(&runs(code)) {
                if !given.contains(&h) {
                    at.entry(h).or_insert(a);
                }
            }
            let mut sorted: Vec<u64> = at.keys().copied().collect();
            sorted.sort_unstable();
            Prints {
                name: name.clone(),
                code: code.clone(),
                at,
                sorted,
            }
        })
        .collect();
    // Every pair's count first (cheap), the shared stretches of the top pairs only.
    let mut counts: Vec<(usize, usize, usize)> = Vec::new();
    for (i, a) in prints.iter().enumerate() {
        for (j, b) in prints.iter().enumerate().skip(i + 1) {
            let shared = common(&a.sorted, &b.sorted);
            if shared >= MIN_SHARED {
                counts.push((shared, i, j));
            }
        }
    }
    counts.sort_by(|x, y| {
        y.0.cmp(&x.0)
            .then_with(|| prints[x.1].name.cmp(&prints[y.1].name))
            .then_with(|| prints[x.2].name.cmp(&prints[y.2].name))
    });
    counts.truncate(TOP);
    counts
        .into_iter()
        .map(|(n, i, j)| {
            let (a, b) = (&prints[i], &prints[j]);
            let shared: BTreeSet<u64> =
                a.at.keys()
                    .filter(|h| b.at.contains_key(h))
                    .copied()
                    .collect();
            Pair {
                a: a.name.clone(),
                b: b.name.clone(),
                shared: n,
                of_a: n as f64 / a.at.len() as f64,
                of_b: n as f64 / b.at.len() as f64,
                fragments: fragments(a, b, &shared),
            }
        })
        .collect()
}

/// The shared stretches of `a` and `b`, longest first (at most five): shared fingerprints
/// whose runs are near each other in both submissions are one stretch.
fn fragments(a: &Prints, b: &Prints, shared: &BTreeSet<u64>) -> Vec<Fragment> {
    let mut hits: Vec<(At, At)> = shared.iter().map(|h| (a.at[h], b.at[h])).collect();
    hits.sort_by_key(|(x, _)| x.seq);
    // A hit joins the stretch before it when it is within a few lines of it in both.
    let near = |g: &At, h: &At| g.file == h.file && h.first <= g.last + 3 && h.last + 3 >= g.first;
    let mut groups: Vec<(At, At, usize)> = Vec::new();
    for (x, y) in hits {
        if let Some((ga, gb, n)) = groups.last_mut() {
            if near(ga, &x) && near(gb, &y) {
                for (g, h) in [(ga, x), (gb, y)] {
                    g.first = g.first.min(h.first);
                    g.last = g.last.max(h.last);
                }
                *n += 1;
                continue;
            }
        }
        groups.push((x, y, 1));
    }
    groups.sort_by(|p, q| q.2.cmp(&p.2).then(p.0.seq.cmp(&q.0.seq)));
    groups.truncate(5);
    groups
        .into_iter()
        .map(|(x, y, _)| Fragment {
            a_file: a.code[x.file].0.clone(),
            a_lines: (x.first, x.last),
            a_text: lines(&a.code[x.file].1, x.first, x.last),
            b_file: b.code[y.file].0.clone(),
            b_lines: (y.first, y.last),
            b_text: lines(&b.code[y.file].1, y.first, y.last),
        })
        .collect()
}

/// Lines shown of one side of a fragment at most (a whole copied file is one fragment).
const SHOWN: usize = 40;

/// Lines `first..=last` of `text`, at most [`SHOWN`] of them.
fn lines(text: &str, first: usize, last: usize) -> String {
    let wanted = last + 1 - first.min(last);
    let mut out: Vec<&str> = text
        .lines()
        .skip(first.saturating_sub(1))
        .take(wanted.min(SHOWN))
        .collect();
    let more = format!("… and {} more lines", wanted - SHOWN.min(wanted));
    if wanted > SHOWN {
        out.push(&more);
    }
    out.join("\n")
}

/// The editable files of the submission at `path` ([`crate::submission::load`], with the
/// grader's rule for files handed in without their `src/` folder), as text.
pub fn code_of(path: &Path, editable: &globset::GlobSet) -> Code {
    let Ok(sub) = crate::submission::load(path) else {
        return Vec::new();
    };
    let direct = sub.files.iter().any(|f| editable.is_match(&f.path));
    let mut code: BTreeMap<String, String> = BTreeMap::new();
    for f in &sub.files {
        let rel = if direct {
            f.path.clone()
        } else {
            Path::new("src").join(&f.path)
        };
        if editable.is_match(&rel) {
            code.insert(
                rel.display().to_string(),
                String::from_utf8_lossy(&f.data).into_owned(),
            );
        }
    }
    code.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(files: &[(&str, &str)]) -> Code {
        files
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect()
    }

    const GIVEN: &str = "pub fn given(x: u32) -> u32 {\n    todo!(\"part A: add one\")\n}\n";

    const WORK: &str = r#"
/// Sums the even squares below `n`.
pub fn even_squares(n: u64) -> u64 {
    let mut total = 0;
    for i in 0..n {
        if i % 2 == 0 {
            total += i * i;
        }
    }
    total
}

fn parse(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for word in line.split_whitespace() {
        if word.starts_with('#') { break; }
        out.push(word.to_owned());
    }
    if out.is_empty() { return Err("empty".into()); }
    Ok(out)
}
"#;

    /// A renamed copy is found with its shared stretch side by side; code the skeleton
    /// gave, and an unrelated submission, are not.
    #[test]
    fn a_renamed_copy_is_found_and_the_skeleton_is_subtracted() {
        let renamed = WORK
            .replace("even_squares", "sq_even")
            .replace("total", "acc")
            .replace("Sums the even squares", "my own work");
        let other = "pub fn f(v: &[i32]) -> i32 { v.iter().map(|x| x * 3).filter(|x| *x > 10).sum() }\n\
                     struct S { a: u8, b: u16 }\nimpl S { fn g(&self) -> u16 { self.b + self.a as u16 } }\n";
        let class = vec![
            (
                "ann".to_string(),
                code(&[("src/lib.rs", &format!("{GIVEN}{WORK}"))]),
            ),
            (
                "ben".to_string(),
                code(&[("src/lib.rs", &format!("{GIVEN}{renamed}"))]),
            ),
            (
                "cy".to_string(),
                code(&[("src/lib.rs", &format!("{GIVEN}{other}"))]),
            ),
            ("dee".to_string(), code(&[("src/lib.rs", GIVEN)])),
        ];
        let pairs = similar_pairs(&code(&[("src/lib.rs", GIVEN)]), &class);
        assert_eq!(pairs.len(), 1, "{pairs:#?}");
        let p = &pairs[0];
        assert_eq!((p.a.as_str(), p.b.as_str()), ("ann", "ben"));
        assert!(p.of_a > 0.9 && p.of_b > 0.9, "{p:#?}");
        let f = &p.fragments[0];
        assert!(f.a_text.contains("total += i * i"), "{f:#?}");
        assert!(f.b_text.contains("acc += i * i"), "{f:#?}");
    }
}
