//! The gradebook (`gradebook.csv`, one column per rubric item), the roster that maps
//! submissions to students, and the exports an LMS imports: `grades.csv` (plain) and
//! `canvas.csv` (Canvas's gradebook import format).
//!
//! A submission that was not gradable has a blank score everywhere, never 0: a grader
//! failure is never a student's 0, and an LMS leaves a blank cell's grade as it was.
//!
//! The roster is a CSV file with a header row naming its columns (in any order):
//!
//! | column | required | what |
//! | --- | --- | --- |
//! | `submission` | yes | the submission's name in the class folder: a folder's name, or an archive's without `.zip`/`.tar.gz` |
//! | `id` | yes | the student's id in the LMS (Canvas: the "ID" column of a gradebook export) |
//! | `name` | yes | the student's name as the LMS shows it ("Last, First" for Canvas) |
//! | `sis_user_id` | no | Canvas's "SIS User ID" |
//! | `sis_login_id` | no | Canvas's "SIS Login ID" |
//! | `section` | no | Canvas's "Section" |

use std::fmt::Write as _;
use std::path::Path;

use super::{Fate, Row};
use crate::error::{Error, Result};
use crate::labfile::Lab;
use crate::report::{Report, fmt_points};

/// One student of the roster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Student {
    /// The submission's name in the class folder.
    pub submission: String,
    /// The LMS's id of the student.
    pub id: String,
    /// The student's name.
    pub name: String,
    /// Canvas's SIS User ID (may be empty).
    pub sis_user_id: String,
    /// Canvas's SIS Login ID (may be empty).
    pub sis_login_id: String,
    /// The section (may be empty).
    pub section: String,
}

/// The class list: which student each submission is.
#[derive(Debug, Clone, Default)]
pub struct Roster {
    /// In the file's order.
    pub students: Vec<Student>,
}

impl Roster {
    /// Reads a roster file (see the module's documentation for its columns).
    pub fn read(path: &Path) -> Result<Roster> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Roster {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Roster::parse(&text).map_err(|message| Error::Roster {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses a roster's text.
    pub fn parse(text: &str) -> std::result::Result<Roster, String> {
        let mut records = parse_csv(text.trim_start_matches('\u{feff}'))?.into_iter();
        let header: Vec<String> = records
            .next()
            .ok_or("the file is empty; the first line names the columns: submission,id,name")?
            .iter()
            .map(|h| h.trim().to_lowercase())
            .collect();
        let column = |name: &str| header.iter().position(|h| h == name);
        let required = |name: &str| {
            column(name).ok_or_else(|| {
                format!(
                    "no `{name}` column (the header has: {}); the columns are submission, id, \
                     name and optionally sis_user_id, sis_login_id, section",
                    header.join(", ")
                )
            })
        };
        let (sub, id, name) = (required("submission")?, required("id")?, required("name")?);
        let (sis_user, sis_login, section) = (
            column("sis_user_id"),
            column("sis_login_id"),
            column("section"),
        );
        let mut students = Vec::new();
        for (n, rec) in records.enumerate() {
            if rec.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            let get = |i: Option<usize>| {
                i.and_then(|i| rec.get(i))
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_default()
            };
            let student = Student {
                submission: get(Some(sub)),
                id: get(Some(id)),
                name: get(Some(name)),
                sis_user_id: get(sis_user),
                sis_login_id: get(sis_login),
                section: get(section),
            };
            if student.submission.is_empty() || student.id.is_empty() {
                return Err(format!(
                    "line {}: a student needs a submission name and an id",
                    n + 2
                ));
            }
            students.push(student);
        }
        Ok(Roster { students })
    }

    /// The student whose submission is `name`.
    pub fn find(&self, name: &str) -> Option<&Student> {
        self.students.iter().find(|s| s.submission == name)
    }
}

/// RFC 4180 records: fields separated by commas, quoted with `"` (doubled inside), records
/// by CRLF or LF.
fn parse_csv(text: &str) -> std::result::Result<Vec<Vec<String>>, String> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut line = 1;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                line += usize::from(c == '\n');
                field.push(c);
            }
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                line += 1;
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(format!(
            "a quoted field that starts before line {line} never ends"
        ));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// What a row's status column says.
fn status(report: &Report, fate: Fate) -> &'static str {
    if fate == Fate::NotGradable || !report.gradable {
        "not gradable"
    } else if report.unreadable.is_some() {
        "upload unreadable"
    } else if !report.compiled {
        "does not compile"
    } else {
        "graded"
    }
}

/// A score for a CSV cell: blank when the submission was not gradable.
fn score_cell(report: &Report, points: f64) -> String {
    if report.gradable {
        fmt_points(points)
    } else {
        String::new()
    }
}

/// The gradebook: one row per submission, one column per item; a submission that was not
/// gradable has blank scores.
pub fn gradebook_csv(lab: &Lab, rows: &[Row]) -> String {
    let mut o = String::from("submission,student_id,name,score,max_score,status");
    for item in &lab.file.items {
        let _ = write!(o, ",{}", csv(&item.id));
    }
    o.push('\n');
    for row in rows {
        let r = &row.report;
        let (id, name) = row
            .student
            .as_ref()
            .map(|s| (s.id.as_str(), s.name.as_str()))
            .unwrap_or_default();
        let _ = write!(
            o,
            "{},{},{},{},{},{}",
            csv(&row.name),
            csv(id),
            csv(name),
            score_cell(r, r.score),
            fmt_points(r.max_score),
            status(r, row.fate)
        );
        for item in &lab.file.items {
            let s = r
                .items
                .iter()
                .find(|i| i.id == item.id)
                .map(|i| score_cell(r, i.score))
                .unwrap_or_default();
            let _ = write!(o, ",{s}");
        }
        o.push('\n');
    }
    o
}

/// The plain export: one row per student of the roster (a student without a submission
/// says so, with a blank score), then every submission the roster does not name.
pub fn grades_csv(rows: &[Row], roster: Option<&Roster>) -> String {
    let mut o = String::from("student_id,name,submission,score,max_score,status\n");
    let line = |o: &mut String, id: &str, name: &str, row: Option<&Row>| {
        let (sub, score, max, st) = match row {
            Some(row) => (
                row.name.as_str(),
                score_cell(&row.report, row.report.score),
                fmt_points(row.report.max_score),
                status(&row.report, row.fate),
            ),
            None => ("", String::new(), String::new(), "no submission"),
        };
        let _ = writeln!(
            o,
            "{},{},{},{score},{max},{st}",
            csv(id),
            csv(name),
            csv(sub)
        );
    };
    if let Some(roster) = roster {
        for s in &roster.students {
            let row = rows.iter().find(|r| r.name == s.submission);
            line(&mut o, &s.id, &s.name, row);
        }
    }
    for row in rows.iter().filter(|r| r.student.is_none()) {
        line(&mut o, "", "", Some(row));
    }
    o
}

/// Canvas's gradebook import: `Student, ID, SIS User ID, SIS Login ID, Section`, then one
/// column for the assignment (its name as in Canvas, e.g. "Lab 3: pipes (1234)" with the
/// assignment's id, or a new name to make a new assignment), a "Points Possible" row, and
/// one row per student of the roster who handed something in. A blank cell leaves the
/// student's grade in Canvas as it is: that is what a not gradable submission gets.
pub fn canvas_csv(rows: &[Row], roster: &Roster, assignment: &str) -> String {
    let mut o = format!(
        "Student,ID,SIS User ID,SIS Login ID,Section,{}\n",
        csv(assignment)
    );
    let max = rows
        .iter()
        .find(|r| r.report.gradable)
        .map(|r| fmt_points(r.report.max_score))
        .unwrap_or_default();
    let _ = writeln!(o, "    Points Possible,,,,,{max}");
    for s in &roster.students {
        let Some(row) = rows.iter().find(|r| r.name == s.submission) else {
            continue;
        };
        let _ = writeln!(
            o,
            "{},{},{},{},{},{}",
            csv(&s.name),
            csv(&s.id),
            csv(&s.sis_user_id),
            csv(&s.sis_login_id),
            csv(&s.section),
            score_cell(&row.report, row.report.score)
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quoted fields with commas, doubled quotes and line breaks, a byte-order mark and CRLF.
    #[test]
    fn a_roster_is_read_by_column_name() {
        let roster = Roster::parse(
            "\u{feff}name,id,submission,section\r\n\"Doe, Jane \"\"JD\"\"\",101,jane,A\r\n\r\n\"Roe,\nRichard\",102,rich,\n",
        )
        .unwrap();
        assert_eq!(roster.students.len(), 2);
        assert_eq!(roster.students[0].name, "Doe, Jane \"JD\"");
        assert_eq!(roster.students[0].section, "A");
        assert_eq!(roster.find("rich").unwrap().name, "Roe,\nRichard");
        let err = Roster::parse("student,id\nx,1\n").unwrap_err();
        assert!(err.contains("no `submission` column"), "{err}");
    }

    /// Canvas's columns and a blank, never 0, for a submission that was not gradable.
    #[test]
    fn canvas_export_leaves_not_gradable_blank() {
        let mut graded = Report::new("pipes", "Pipes", "a".as_ref(), 100.0, 1);
        graded.score = 85.0;
        graded.compiled = true;
        let broken =
            Report::new("pipes", "Pipes", "b".as_ref(), 100.0, 1).not_gradable(None, "no cargo");
        let roster = Roster::parse(
            "submission,id,name,sis_user_id,sis_login_id,section\n\
             a,1,\"Doe, A\",s1,a@x,S1\nb,2,B,,,\nc,3,C,,,\n",
        )
        .unwrap();
        let rows = vec![
            Row {
                name: "a".into(),
                student: roster.find("a").cloned(),
                report: graded,
                fate: Fate::Graded,
            },
            Row {
                name: "b".into(),
                student: roster.find("b").cloned(),
                report: broken,
                fate: Fate::NotGradable,
            },
        ];
        assert_eq!(
            canvas_csv(&rows, &roster, "Lab 1: pipes (77)"),
            "Student,ID,SIS User ID,SIS Login ID,Section,Lab 1: pipes (77)\n    \
             Points Possible,,,,,100\n\"Doe, A\",1,s1,a@x,S1,85\nB,2,,,,\n"
        );
        assert_eq!(
            grades_csv(&rows, Some(&roster)),
            "student_id,name,submission,score,max_score,status\n1,\"Doe, A\",a,85,100,graded\n\
             2,B,b,,100,not gradable\n3,C,,,,no submission\n"
        );
    }
}
