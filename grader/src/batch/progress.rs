//! What a person watching `grade-all` sees: on a terminal, a bar with done/total, the time
//! left and the submissions being graded; otherwise (a log, CI) one plain line per finished
//! submission, which reads the same in a file.

use std::collections::BTreeSet;
use std::io::IsTerminal as _;
use std::sync::Mutex;

use super::{Entry, Fate};
use crate::report::{Report, fmt_points};

/// Told as each submission starts and ends; called from the batch's worker threads.
pub trait Progress: Sync {
    /// `entry` is being graded (an unchanged one that is skipped never starts).
    fn started(&self, entry: &Entry);
    /// `entry` is done: graded, skipped or not gradable.
    fn finished(&self, entry: &Entry, report: &Report, fate: Fate);
    /// `entry` was cut short by a signal: it has no result in this run.
    fn stopped(&self, entry: &Entry);
    /// The batch is over.
    fn done(&self) {}
}

/// The progress display for a batch of `total` on this process's stderr: a bar when it is a
/// terminal, plain lines otherwise.
pub fn for_stderr(total: usize) -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar::new(total))
    } else {
        Box::new(Lines::new(total))
    }
}

/// What one finished submission is, in a few words.
fn outcome(report: &Report, fate: Fate) -> String {
    let score = format!(
        "{}/{}",
        fmt_points(report.score),
        fmt_points(report.max_score)
    );
    match fate {
        Fate::Graded if report.unreadable.is_some() => format!("{score} (upload unreadable)"),
        Fate::Graded if !report.compiled => format!("{score} (does not compile)"),
        Fate::Graded => score,
        Fate::Skipped => format!("{score} (unchanged, kept)"),
        Fate::NotGradable => format!(
            "not gradable: {}",
            report.error.as_deref().unwrap_or("unknown")
        ),
    }
}

/// One line per finished submission: `[3/40] alice: 85/100 in 12.3 s`.
pub struct Lines {
    total: usize,
    done: Mutex<usize>,
}

impl Lines {
    /// For a batch of `total`.
    pub fn new(total: usize) -> Lines {
        Lines {
            total,
            done: Mutex::new(0),
        }
    }

    /// The line for the `n`th finished submission.
    pub fn line(&self, n: usize, entry: &Entry, report: &Report, fate: Fate) -> String {
        let took = if fate == Fate::Skipped {
            String::new()
        } else {
            format!(" in {:.1} s", report.elapsed_s)
        };
        format!(
            "[{n}/{}] {}: {}{took}",
            self.total,
            entry.name,
            outcome(report, fate)
        )
    }
}

impl Progress for Lines {
    fn started(&self, _: &Entry) {}

    fn finished(&self, entry: &Entry, report: &Report, fate: Fate) {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        *done += 1;
        crate::errln!("{}", self.line(*done, entry, report, fate));
    }

    fn stopped(&self, entry: &Entry) {
        crate::errln!("{}: stopped before it finished", entry.name);
    }
}

/// An indicatif bar: `[####    ] 12/40 00:03:10 left ~00:08:00 grading: bob, carol`, with a
/// line above it for each submission that ends not gradable.
pub struct Bar {
    bar: indicatif::ProgressBar,
    running: Mutex<BTreeSet<String>>,
}

impl Bar {
    /// For a batch of `total`.
    pub fn new(total: usize) -> Bar {
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} {elapsed_precise} left ~{eta} {wide_msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(500));
        Bar {
            bar,
            running: Mutex::new(BTreeSet::new()),
        }
    }

    fn show_running(&self, running: &BTreeSet<String>) {
        let names: Vec<&str> = running.iter().map(String::as_str).collect();
        self.bar.set_message(if names.is_empty() {
            String::new()
        } else {
            format!("grading: {}", names.join(", "))
        });
    }
}

impl Progress for Bar {
    fn started(&self, entry: &Entry) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.insert(entry.name.clone());
        self.show_running(&running);
    }

    fn finished(&self, entry: &Entry, report: &Report, fate: Fate) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.remove(&entry.name);
        self.bar.inc(1);
        if fate == Fate::Skipped {
            // An unchanged submission takes no time: it must not make the time left look
            // shorter than the grading of the others will take.
            self.bar.reset_eta();
        }
        if fate == Fate::NotGradable {
            self.bar
                .println(format!("{}: {}", entry.name, outcome(report, fate)));
        }
        self.show_running(&running);
    }

    fn stopped(&self, entry: &Entry) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.remove(&entry.name);
        self.show_running(&running);
    }

    fn done(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain line names the submission, its count, its score and what became of it.
    #[test]
    fn a_line_says_which_of_how_many_and_the_outcome() {
        let lines = Lines::new(5);
        let entry = Entry {
            name: "alice".into(),
            path: "alice".into(),
        };
        let mut r = Report::new("pipes", "Pipes", "alice".as_ref(), 100.0, 1);
        r.compiled = true;
        r.score = 85.0;
        r.elapsed_s = 12.34;
        assert_eq!(
            lines.line(3, &entry, &r, Fate::Graded),
            "[3/5] alice: 85/100 in 12.3 s"
        );
        assert_eq!(
            lines.line(4, &entry, &r, Fate::Skipped),
            "[4/5] alice: 85/100 (unchanged, kept)"
        );
        let broken = r.not_gradable(None, "no cargo");
        assert_eq!(
            lines.line(5, &entry, &broken, Fate::NotGradable),
            "[5/5] alice: not gradable: no cargo in 12.3 s"
        );
    }
}
