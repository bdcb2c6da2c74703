//! Jobs and results: random job lines, the dispatcher's input, and the judging of the
//! printed results against the jobs, with the message helpers that go with it.

use std::collections::BTreeMap;

use crate::check::{Ctx, Output};

/// A job line as given on stdin.
#[derive(Clone)]
pub(super) struct JobLine {
    priority: u8,
    payload: String,
}

impl JobLine {
    fn text(&self) -> String {
        format!("{} {}", self.priority, self.payload)
    }
}

pub(super) fn random_jobs(
    ctx: &mut Ctx,
    count: usize,
    min_len: usize,
    max_len: usize,
) -> Vec<JobLine> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,:";
    (0..count)
        .map(|_| {
            let len = min_len + (ctx.next_u64() as usize) % (max_len - min_len + 1);
            let payload = (0..len)
                .map(|_| ALPHABET[(ctx.next_u64() as usize) % ALPHABET.len()] as char)
                .collect();
            JobLine {
                priority: (ctx.next_u64() % 10) as u8,
                payload,
            }
        })
        .collect()
}

pub(super) fn input_of(jobs: &[JobLine]) -> Vec<u8> {
    jobs.iter()
        .map(|j| j.text() + "\n")
        .collect::<String>()
        .into_bytes()
}

/// Compares the printed results with the jobs (`expected`: line number to job); returns
/// a student-facing description of the first problems, or `None` when all is right.
pub(super) fn judge_results(stdout: &str, expected: &BTreeMap<u64, String>) -> Option<String> {
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for line in stdout.lines() {
        let Some((n, text)) = line.split_once(' ') else {
            problems.push(format!("the output line {line:?} is not `<line> <result>`"));
            continue;
        };
        let Ok(n) = n.parse::<u64>() else {
            problems.push(format!(
                "the output line {line:?} does not start with a line number"
            ));
            continue;
        };
        *seen.entry(n).or_default() += 1;
        match expected.get(&n) {
            None => problems.push(format!(
                "a result for line {n}, which is not a job: {line:?}"
            )),
            Some(payload) => {
                let want: String = payload.chars().rev().collect();
                if text != want {
                    problems.push(format!(
                        "line {n}: printed {:?}, expected {:?} (the payload {:?} reversed)",
                        crate::run::clip(text, 80),
                        crate::run::clip(&want, 80),
                        crate::run::clip(payload, 80)
                    ));
                }
            }
        }
    }
    let twice: Vec<String> = seen
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(n, c)| format!("{n} ({c} times)"))
        .collect();
    if !twice.is_empty() {
        problems.push(format!(
            "results printed more than once for line(s) {}: every job must get exactly one result \
             (when jobs are sent again after a worker died, print only the first result of each line)",
            list(&twice)
        ));
    }
    let missing: Vec<String> = expected
        .keys()
        .filter(|n| !seen.contains_key(n))
        .map(u64::to_string)
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "no result for {} job(s), line(s) {}",
            missing.len(),
            list(&missing)
        ));
    }
    if problems.is_empty() {
        None
    } else {
        problems.truncate(6);
        Some(problems.join("; "))
    }
}

pub(super) fn list(items: &[String]) -> String {
    if items.len() > 12 {
        format!("{} ... ({} in all)", items[..12].join(", "), items.len())
    } else {
        items.join(", ")
    }
}

pub(super) fn expected_of(jobs: &[JobLine]) -> BTreeMap<u64, String> {
    jobs.iter()
        .enumerate()
        .map(|(i, j)| (i as u64 + 1, j.payload.clone()))
        .collect()
}

pub(super) fn stderr_note(o: &Output) -> String {
    let err = o.stderr_str();
    let err = err.trim();
    if err.is_empty() {
        String::new()
    } else {
        format!(" Its stderr: {}", crate::run::clip(err, 600))
    }
}
