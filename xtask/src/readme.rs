//! `cargo xtask readme [--check]`: the parts of each handout (`labs/<slug>/README.md`) that
//! restate data, generated from that data so that they cannot disagree with the grader:
//!
//! - after the title and first paragraph, "Grading your work": the lab needs Linux (or the
//!   handout's dev container), `cargo grade` first, and `cargo test --no-fail-fast`;
//! - the rubric table, from lab.toml: every item with its points and when it is graded, and
//!   the total the grader scores.
//!
//! Each part sits between its two marker comments; the text around them is the author's.
//! `--check` changes nothing and fails when a README is stale (a test runs it).

use anyhow::{Result, bail};
use grader::labfile::{Kind, Lab, Tree, Visibility};
use grader::report::fmt_points;

/// Arguments of `cargo xtask readme`.
#[derive(clap::Args)]
pub struct Readme {
    /// Change nothing; fail when a handout's generated parts are stale.
    #[arg(long)]
    check: bool,
}

const START_HOWTO: &str =
    "<!-- grading: written by `cargo xtask readme`; edit xtask/src/readme.rs -->";
const END_HOWTO: &str = "<!-- end of grading -->";
const START_RUBRIC: &str =
    "<!-- rubric: written by `cargo xtask readme` from lab.toml; edit lab.toml -->";
const END_RUBRIC: &str = "<!-- end of rubric -->";

impl Readme {
    pub fn run(self) -> Result<()> {
        let tree = Tree::locate(Some(&crate::root()))?;
        let mut stale = Vec::new();
        for slug in tree.slugs()? {
            let lab = tree.lab(&slug)?;
            let path = lab.dir.join("README.md");
            let text = std::fs::read_to_string(&path)?;
            let want = render(&lab, &text)?;
            if want != text {
                if self.check {
                    stale.push(slug);
                } else {
                    std::fs::write(&path, want)?;
                    println!("wrote {}", path.display());
                }
            }
        }
        if !stale.is_empty() {
            bail!(
                "stale handouts: {}; run `cargo xtask readme`",
                stale.join(", ")
            );
        }
        Ok(())
    }
}

/// `text` (a handout) with its generated parts made anew for `lab`.
pub fn render(lab: &Lab, text: &str) -> Result<String> {
    let text = put(
        text,
        START_HOWTO,
        END_HOWTO,
        &howto(lab),
        before_first_section,
    )?;
    let text = if text.contains(START_RUBRIC) {
        text
    } else {
        without_old_rubric(&text)
    };
    put(&text, START_RUBRIC, END_RUBRIC, &rubric(lab), |t| {
        let at = t.find("\n## Rubric\n")? + "\n## Rubric\n".len();
        Some(at + t[at..].len() - t[at..].trim_start_matches('\n').len())
    })
}

/// `text` without the hand-written table of its rubric section (the first run replaces it).
fn without_old_rubric(text: &str) -> String {
    let Some(at) = text.find("\n## Rubric\n") else {
        return text.to_owned();
    };
    let head = &text[..at + "\n## Rubric\n".len()];
    let rest = &text[head.len()..];
    let mut lines = rest.split_inclusive('\n').peekable();
    let mut kept = String::new();
    while lines.peek().is_some_and(|l| l.trim().is_empty()) {
        kept.push_str(lines.next().unwrap_or_default());
    }
    while lines.peek().is_some_and(|l| l.starts_with('|')) {
        lines.next();
    }
    while lines.peek().is_some_and(|l| l.trim().is_empty()) {
        lines.next();
    }
    let tail: String = lines.collect();
    format!("{head}{kept}{tail}")
}

/// Where the grading part goes in a handout that has none yet: before its first section,
/// after the title and the introduction.
fn before_first_section(text: &str) -> Option<usize> {
    text.find("\n## ").map(|at| at + 1)
}

/// `text` with what lies between `start` and `end` replaced by `body`; where the markers are
/// missing, they and `body` go at `place(text)`.
fn put(
    text: &str,
    start: &str,
    end: &str,
    body: &str,
    place: impl Fn(&str) -> Option<usize>,
) -> Result<String> {
    let block = format!("{start}\n{body}{end}\n");
    if let (Some(a), Some(b)) = (text.find(start), text.find(end)) {
        let b = b + end.len() + usize::from(text[b + end.len()..].starts_with('\n'));
        return Ok(format!("{}{block}{}", &text[..a], &text[b..]));
    }
    let Some(at) = place(text) else {
        bail!("no place for `{start}` in the handout");
    };
    let gap = if text[at..].starts_with("\n") {
        ""
    } else {
        "\n"
    };
    Ok(format!("{}{block}{gap}{}", &text[..at], &text[at..]))
}

fn howto(lab: &Lab) -> String {
    let peers = if lab.file.peers.is_empty() {
        String::new()
    } else {
        format!(
            "\nIts checks run real programs beside yours; install them once with\n\
             `sudo apt-get install {}` (Debian, Ubuntu). Where one is missing, the items\n\
             that need it say \"not gradable here\" instead of failing.\n",
            lab.file.peers.join(" ")
        )
    };
    format!(
        "## Grading your work\n\n\
         This lab needs Linux: the system calls it teaches are Linux's. On macOS or Windows,\n\
         open the folder in VS Code with the Dev Containers extension, or in GitHub\n\
         Codespaces: `.devcontainer/` gives you Debian with the course's Rust.\n{peers}\n\
         ```sh\n\
         cargo grade                  # the course's grader, on what it grades before you submit\n\
         cargo grade --only ITEM      # one item (the ids are in the rubric below)\n\
         cargo grade --watch          # again on every save: what changed, the first item to fix\n\
         cargo test --no-fail-fast    # every visible test\n\
         ```\n\n\
         `cargo grade` builds your code and runs the course's tests and checks on it, with the\n\
         same messages, points and seeds (`--seed N` replays a run); hidden items are graded\n\
         after you submit. Its first run compiles the grader, which takes a minute or two.\n\n"
    )
}

fn rubric(lab: &Lab) -> String {
    let mut o = String::from("| Item | Points | What | Graded |\n| --- | ---: | --- | --- |\n");
    for item in &lab.file.items {
        let when = match (item.visibility, item.kind, item.local) {
            (Visibility::Visible, Kind::Test, true) => {
                let stem = item.name.split("::").next().unwrap_or_default();
                let path = format!("tests/{stem}.rs");
                if lab.dir.join(&path).is_file() {
                    format!("by `cargo grade` (`{path}`)")
                } else {
                    "by `cargo grade`".to_owned()
                }
            }
            (Visibility::Visible, Kind::Check, true) => "by `cargo grade` (a grader check)".into(),
            (Visibility::Visible, _, false) => "after you submit".into(),
            (Visibility::Hidden, ..) => "after you submit (hidden)".into(),
            (Visibility::AfterDueDate, ..) => "after you submit (hidden until the due date)".into(),
            (Visibility::AfterPublished, ..) => {
                "after you submit (hidden until grades are out)".into()
            }
        };
        o.push_str(&format!(
            "| `{}` | {} | {} | {when} |\n",
            item.id,
            fmt_points(item.points),
            item.title.replace('|', "\\|")
        ));
    }
    o.push_str(&format!(
        "| **Total** | **{}** | | |\n",
        fmt_points(lab.file.max_score())
    ));
    o
}

/// Whether the handout at `path` is current (for tests).
#[cfg(test)]
pub fn current(lab: &Lab, path: &std::path::Path) -> Result<bool> {
    let text = std::fs::read_to_string(path)?;
    Ok(render(lab, &text)? == text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every handout's grading part and rubric are what lab.toml says: run
    /// `cargo xtask readme` after changing a rubric.
    #[test]
    fn handouts_say_what_the_grader_grades() {
        let tree = Tree::locate(Some(&crate::root())).unwrap();
        let mut stale = Vec::new();
        for slug in tree.slugs().unwrap() {
            let lab = tree.lab(&slug).unwrap();
            if !current(&lab, &lab.dir.join("README.md")).unwrap() {
                stale.push(slug);
            }
        }
        assert!(
            stale.is_empty(),
            "run `cargo xtask readme`: stale {stale:?}"
        );
    }

    /// The markers are found again, so a second run changes nothing.
    #[test]
    fn rendering_twice_changes_nothing() {
        let tree = Tree::locate(Some(&crate::root())).unwrap();
        let lab = tree.lab("pipes").unwrap();
        let text = "# Lab\n\nIntro line.\nMore.\n\n## Rubric\n\nold table\n";
        let once = render(&lab, text).unwrap();
        assert_eq!(render(&lab, &once).unwrap(), once);
        assert!(
            once.contains("Intro line.\nMore.\n\n<!-- grading"),
            "{once}"
        );
        assert!(once.contains("| **Total** | **"), "{once}");
    }
}
