//! A lab's contract table, `solutions/<slug>/CONTRACT.md`: every clause of the handout's
//! contract (each sentence that says must, never, waits, within, on SIGNAL or for every, and
//! the conventions every lab shares), next to the rubric items that fail a program breaking
//! it and the mutants that prove they do.
//!
//! ```text
//! | Clause | Items | Mutants |
//! |---|---|---|
//! | On SIGTERM the server removes its FIFO and exits 0 | `sigterm` | `keeps-fifo`, `exit-1` |
//! ```
//!
//! Items and mutants are the backquoted names in their columns. [`check`] refuses a table
//! with a row that has no item or no mutant, an item lab.toml does not have, a mutant with
//! no patch, or a mutant whose `# loses:` lines name none of its row's items (it would not
//! prove the row). `cargo test` and `cargo xtask verify` both run it.

use std::path::PathBuf;

use crate::labfile::Lab;
use crate::mutants::Mutant;

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// The clause, as the table words it.
    pub text: String,
    /// The items that fail a program breaking it.
    pub items: Vec<String>,
    /// The mutants that prove it.
    pub mutants: Vec<String>,
}

/// The path of `lab`'s contract table.
pub fn path(lab: &Lab) -> PathBuf {
    lab.solution.join("CONTRACT.md")
}

/// The rows of the first table of `text` whose header starts with `Clause`.
pub fn parse(text: &str) -> Vec<Clause> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in text.lines().map(str::trim) {
        if !line.starts_with('|') {
            if in_table {
                break;
            }
            continue;
        }
        let cells = cells(line);
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        if !in_table {
            in_table = cells.first().is_some_and(|c| c.starts_with("Clause"));
            continue;
        }
        if cells
            .iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue;
        }
        let names = |k: usize| -> Vec<String> {
            cells
                .get(k)
                .map(|c| {
                    c.split('`')
                        .skip(1)
                        .step_by(2)
                        .map(str::to_owned)
                        .filter(|n| !n.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        rows.push(Clause {
            text: cells.first().copied().unwrap_or("").to_owned(),
            items: names(1),
            mutants: names(2),
        });
    }
    rows
}

/// The cells of a table row; `\|` is a `|` inside a cell, as markdown has it.
fn cells(line: &str) -> Vec<String> {
    let inner = line.strip_prefix('|').unwrap_or(line);
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out.iter().map(|c| c.trim().to_owned()).collect()
}

/// `lab`'s contract table, checked: every row has an item of lab.toml and a mutant whose
/// `# loses:` names one of the row's items. `Err` lists every problem.
pub fn check(lab: &Lab) -> Result<Vec<Clause>, Vec<String>> {
    let file = path(lab);
    let text = std::fs::read_to_string(&file).map_err(|e| {
        vec![format!(
            "{}: {e}: write the lab's contract table (see grader/src/contract.rs)",
            file.display()
        )]
    })?;
    let rows = parse(&text);
    let mut problems = Vec::new();
    if rows.is_empty() {
        problems.push(format!(
            "{}: no table whose header starts with `Clause`",
            file.display()
        ));
    }
    let mutants: Vec<Mutant> = lab
        .mutant_paths()
        .unwrap_or_default()
        .iter()
        .filter_map(|p| Mutant::load(p).ok())
        .collect();
    for (n, row) in rows.iter().enumerate() {
        let at = format!("{} row {} ({:?})", file.display(), n + 1, row.text);
        if row.items.is_empty() {
            problems.push(format!("{at}: no item fails a program that breaks it"));
        }
        for item in &row.items {
            if !lab.file.items.iter().any(|i| &i.id == item) {
                problems.push(format!("{at}: lab.toml has no item `{item}`"));
            }
        }
        if row.mutants.is_empty() {
            problems.push(format!("{at}: no mutant proves it"));
        }
        for name in &row.mutants {
            match mutants.iter().find(|m| &m.name == name) {
                None => problems.push(format!("{at}: no mutant `{name}` in mutants/")),
                Some(m) if !m.loses.iter().any(|(id, _)| row.items.contains(id)) => {
                    problems.push(format!(
                        "{at}: mutant `{name}` loses {}, none of the row's items",
                        m.loses
                            .iter()
                            .map(|(id, _)| format!("`{id}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
                Some(_) => {}
            }
        }
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_with_their_names() {
        let text = "# x\n\nIntro.\n\n| Clause | Items | Mutants |\n|---|---|---|\n\
                    | exits 0 on `SIGTERM` | `sigterm`, `cleanup` | `exit-one` |\n\
                    | never crashes | | |\n\nAfter.\n| Other | table |\n";
        let rows = parse(text);
        assert_eq!(rows.len(), 2);
        // A backquoted word in the clause is not an item.
        assert_eq!(rows[0].items, ["sigterm", "cleanup"]);
        assert_eq!(rows[0].mutants, ["exit-one"]);
        assert!(rows[1].items.is_empty() && rows[1].mutants.is_empty());
    }

    #[test]
    fn an_escaped_bar_stays_in_its_cell() {
        let text = "| Clause | Items | Mutants |\n|---|---|---|\n\
                    | `a \\| b` pipes | `runs` | `m` |\n";
        let rows = parse(text);
        assert_eq!(rows[0].text, "`a | b` pipes");
        assert_eq!(
            (&rows[0].items[..], &rows[0].mutants[..]),
            (&["runs".to_owned()][..], &["m".to_owned()][..])
        );
    }
}
