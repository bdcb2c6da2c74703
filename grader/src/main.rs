//! The `grader` command: parses arguments and calls the library.
//!
//! Exit status: 0 graded (whatever the score; with `--exit-code`, 1 when an item graded
//! fails), 2 usage error, 3 not gradable (for `grade-all`: at least one submission was not
//! gradable; every other one is graded and every file written all the same).
//!
//! Its length is clap's declaration of every subcommand's arguments, each documented, and
//! the exit status each one's outcome maps to; what they do is the library's.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use grader::grade::{self, Options};
use grader::labfile::Tree;

#[derive(Parser)]
#[command(name = "grader", version, about = "Grade IPC lab submissions")]
struct Cli {
    /// The lab tree (with labs/ and solutions/); default: $GRADER_ROOT or this workspace.
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the labs and their rubrics.
    List,
    /// Grade one submission (a folder, .zip or .tar.gz) and print the report.
    Grade {
        /// The lab's slug, e.g. `pipes`.
        slug: String,
        /// The submission.
        submission: PathBuf,
        /// Also write our JSON report here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also write Gradescope's results.json here.
        #[arg(long)]
        gradescope: Option<PathBuf>,
        /// Also write JUnit XML here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Replay the random choices of an earlier run.
        #[arg(long)]
        seed: Option<u64>,
        /// Grade only this item (repeatable).
        #[arg(long)]
        only: Vec<String>,
        /// Run only the tests whose `stem::name` contains this.
        #[arg(long = "test")]
        test_filter: Option<String>,
        /// Replace every item's timeout with this many seconds.
        #[arg(long)]
        timeout: Option<f64>,
        /// The shared cargo target folder for the lab.
        #[arg(long)]
        target_dir: Option<PathBuf>,
        /// Print no progress and no report (the exit status and the files still tell).
        #[arg(long, short)]
        quiet: bool,
        /// A student's own grading (`cargo grade` in a handout): the items graded before
        /// submission only, run as this user, with no jail.
        #[arg(long)]
        local: bool,
        /// Grade again whenever the submission's files change (Ctrl-C stops).
        #[arg(long)]
        watch: bool,
        /// Exit with status 1 when an item graded here fails (for CI steps such as GitHub
        /// Classroom's, which judge by the exit status).
        #[arg(long)]
        exit_code: bool,
    },
    /// Grade every submission in a folder (sub-folders, .zip, .tar.gz): each one's report
    /// (JSON, HTML, text), gradebook.csv, grades.csv (canvas.csv with a roster) and
    /// summary.html. Resumable: a graded submission whose content has not changed is kept.
    GradeAll {
        /// The lab's slug.
        slug: String,
        /// The folder of submissions.
        dir: PathBuf,
        /// Submissions graded at once.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Regrade these submissions (by name) even if unchanged; alone, all of them.
        #[arg(long, num_args = 0.., value_name = "NAME")]
        force: Option<Vec<String>>,
        /// Output folder (default: DIR/grades).
        #[arg(long)]
        out: Option<PathBuf>,
        /// One seed for every submission.
        #[arg(long)]
        seed: Option<u64>,
        /// Also write JUnit XML (one suite per submission) here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// A CSV file with the columns submission, id, name (and optionally sis_user_id,
        /// sis_login_id, section): who each submission is, for the gradebook, the summary
        /// and canvas.csv.
        #[arg(long)]
        roster: Option<PathBuf>,
        /// The assignment's column in canvas.csv, as Canvas names it, e.g.
        /// "Lab 1: pipes (1234)" (default: the lab's title, which Canvas makes a new one of).
        #[arg(long)]
        canvas_assignment: Option<String>,
        /// Do not compare the submissions' code for the summary page.
        #[arg(long)]
        no_similarity: bool,
        /// Grade only this item (repeatable); the others score 0, marked "not run".
        #[arg(long)]
        only: Vec<String>,
    },
    /// Internal: run a command as PID 1 of a new PID namespace (see grader::sandbox::init).
    #[command(name = "__init", hide = true)]
    Init {
        /// Run the command as UID:GID.
        #[arg(long, value_parser = parse_user)]
        user: Option<(u32, u32)>,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<std::ffi::OsString>,
    },
    /// Internal: run a command confined as a test is (a jail, the student identity, limits),
    /// in a fresh scratch folder whose path is printed first on stderr; for the grader's own
    /// tests, and for course staff who want to see what a submission sees.
    #[command(name = "__jail", hide = true)]
    Jail {
        /// Also show this host path read-only.
        #[arg(long)]
        ro: Vec<PathBuf>,
        /// Seconds before the command is stopped.
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<std::ffi::OsString>,
    },
    /// Internal: remove the IPC objects of the namespace this runs in, printing them.
    #[command(name = "__leftovers", hide = true)]
    Leftovers,
    /// Internal: run one check in this process (the grader starts it as a child).
    #[command(name = "__check", hide = true)]
    Check {
        #[arg(long)]
        lab: String,
        #[arg(long)]
        check: String,
        #[arg(long)]
        bins: PathBuf,
        #[arg(long)]
        scratch: PathBuf,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        result: PathBuf,
        /// The identity the student's programs run as (UID:GID).
        #[arg(long, value_parser = parse_user)]
        student: Option<(u32, u32)>,
        /// The grader's fixtures folder (npm packages of peer programs), read-only.
        #[arg(long)]
        fixtures: Option<PathBuf>,
        /// The peers' folder, owned by the peers' identity.
        #[arg(long)]
        peers: Option<PathBuf>,
    },
}

/// `UID:GID`.
fn parse_user(s: &str) -> Result<(u32, u32), String> {
    let (u, g) = s.split_once(':').ok_or("expected UID:GID")?;
    Ok((
        u.parse().map_err(|e| format!("uid: {e}"))?,
        g.parse().map_err(|e| format!("gid: {e}"))?,
    ))
}

fn main() -> ExitCode {
    grader::sandbox::init::provide();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if let Err(e) = grader::sandbox::become_subreaper() {
        grader::errln!(
            "grader: cannot become a child subreaper ({e}): processes that escape may survive"
        );
    }
    match cli.cmd {
        Cmd::Check {
            lab,
            check,
            bins,
            scratch,
            seed,
            result,
            student,
            fixtures,
            peers,
        } => {
            let Some(c) = grader::labs::find(&lab, &check) else {
                grader::errln!("grader: no check `{check}` in lab `{lab}`");
                return ExitCode::from(2);
            };
            let bins = std::fs::read_dir(&bins)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                        .collect()
                })
                .unwrap_or_default();
            let mut ctx = grader::check::Ctx::new(bins, scratch, seed, student);
            ctx.fixtures = fixtures;
            ctx.peers = peers;
            match grader::check::child_main(c, ctx, &result) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    grader::errln!("grader: check {check}: {e}");
                    ExitCode::from(3)
                }
            }
        }
        Cmd::Init { user, command } => {
            let args: Vec<_> = command.into_iter().skip_while(|a| a == "--").collect();
            ExitCode::from(grader::sandbox::init::main(user, &args).clamp(0, 255) as u8)
        }
        Cmd::Jail {
            ro,
            timeout,
            command,
        } => match grader::run::jail_main(&ro, timeout, &command) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                grader::errln!("grader: {e}");
                ExitCode::from(3)
            }
        },
        Cmd::Leftovers => {
            grader::sandbox::leftovers::child_main();
            ExitCode::SUCCESS
        }
        Cmd::GradeAll {
            slug,
            dir,
            jobs,
            force,
            out,
            seed,
            junit,
            roster,
            canvas_assignment,
            no_similarity,
            only,
        } => {
            grader::interrupt::install(grader::interrupt::Mode::Batch);
            let force = match force {
                None => grader::batch::Force::None,
                Some(names) if names.is_empty() => grader::batch::Force::All,
                Some(names) => grader::batch::Force::Some(names),
            };
            let result = grade_all(
                cli.root.as_deref(),
                &slug,
                &absolute(dir),
                GradeAllArgs {
                    jobs,
                    force,
                    out: out.map(absolute),
                    seed,
                    junit: junit.map(absolute),
                    roster,
                    canvas_assignment,
                    similarity: !no_similarity,
                    only,
                },
            );
            if let Some(status) = grader::interrupt::done() {
                return ExitCode::from(status);
            }
            match result {
                Ok(tally) if tally.not_gradable > 0 => ExitCode::from(3),
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    grader::errln!("grader: {e}");
                    ExitCode::from(if e.is_usage() { 2 } else { 3 })
                }
            }
        }
        Cmd::List => match Tree::locate(cli.root.as_deref()).and_then(|t| list(&t)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                grader::errln!("grader: {e}");
                ExitCode::from(if e.is_usage() { 2 } else { 3 })
            }
        },
        Cmd::Grade {
            slug,
            submission,
            json,
            gradescope,
            junit,
            seed,
            only,
            timeout,
            test_filter,
            target_dir,
            quiet,
            local,
            watch,
            exit_code,
        } => {
            let (submission, json, gradescope, junit, target_dir) = (
                absolute(submission),
                json.map(absolute),
                gradescope.map(absolute),
                junit.map(absolute),
                target_dir.map(absolute),
            );
            let tree = match Tree::locate(cli.root.as_deref()) {
                Ok(t) => t,
                Err(e) => {
                    grader::errln!("grader: {e}");
                    return ExitCode::from(2);
                }
            };
            grader::interrupt::install(grader::interrupt::Mode::Grade);
            let opts = Options {
                seed,
                target_dir,
                only,
                progress: !quiet,
                timeout_s: timeout,
                test_filter,
                local,
            };
            if watch {
                return match grader::watch::run(&tree, &slug, &submission, &opts) {
                    Ok(()) => ExitCode::from(grader::interrupt::done().unwrap_or(0)),
                    Err(e) => {
                        grader::errln!("grader: {e}");
                        ExitCode::from(if e.is_usage() { 2 } else { 3 })
                    }
                };
            }
            let report = match grade::grade(&tree, &slug, &submission, &opts) {
                Ok(r) => r,
                Err(e) if e.is_usage() => {
                    grader::errln!("grader: {e}");
                    return ExitCode::from(2);
                }
                Err(e) => {
                    grader::errln!("grader: not gradable: {e}");
                    return ExitCode::from(3);
                }
            };
            if let Err(e) = grade::write_outputs(
                &report,
                json.as_deref(),
                gradescope.as_deref(),
                junit.as_deref(),
            ) {
                grader::errln!("grader: not gradable: cannot write the results: {e}");
                return ExitCode::from(3);
            }
            if !quiet {
                grader::console::out(&report.to_text());
            }
            if let Some(status) = grader::interrupt::done() {
                return ExitCode::from(status);
            }
            let failed = report
                .items
                .iter()
                .any(|i| !i.passed && !i.after_submission && !i.not_run);
            if exit_code && report.gradable && failed {
                return ExitCode::from(1);
            }
            if report.gradable {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            }
        }
    }
}

fn list(tree: &Tree) -> grader::Result<()> {
    for slug in tree.slugs()? {
        let lab = tree.lab(&slug)?;
        let mut text = format!(
            "{slug}: {} ({} points)\n",
            lab.file.title,
            grader::report::fmt_points(lab.file.max_score())
        );
        for item in &lab.file.items {
            text.push_str(&format!(
                "    {:>4}  {:<24} {:?}/{:?}  {}\n",
                grader::report::fmt_points(item.points),
                item.id,
                item.kind,
                item.visibility,
                item.title
            ));
        }
        // The reader went away (`grader list | head`): nothing more to say.
        if !grader::console::out(&text) {
            break;
        }
    }
    Ok(())
}

/// `path` made absolute against the current folder, once, at the start: the grader hands
/// paths to processes that start elsewhere (a jail's working folder, a child grader).
fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}

/// `grade-all`'s options besides the lab and the folder.
struct GradeAllArgs {
    jobs: usize,
    force: grader::batch::Force,
    out: Option<PathBuf>,
    seed: Option<u64>,
    junit: Option<PathBuf>,
    roster: Option<PathBuf>,
    canvas_assignment: Option<String>,
    similarity: bool,
    only: Vec<String>,
}

fn grade_all(
    root: Option<&std::path::Path>,
    slug: &str,
    dir: &std::path::Path,
    args: GradeAllArgs,
) -> grader::Result<grader::batch::Tally> {
    use grader::batch;
    let tree = Tree::locate(root)?;
    let lab = tree.lab(slug)?;
    let out = args.out.unwrap_or_else(|| dir.join("grades"));
    let roster = args
        .roster
        .as_deref()
        .map(batch::Roster::read)
        .transpose()?;
    let opts = batch::BatchOptions {
        jobs: args.jobs,
        force: args.force,
        out: out.clone(),
        root: tree.root.clone(),
        seed: args.seed,
        per_submission: std::time::Duration::from_secs(1800),
        roster,
        canvas_assignment: args.canvas_assignment,
        junit: args.junit,
        similarity: args.similarity,
        only: args.only,
    };
    let tally = batch::grade_class(&lab, dir, &opts)?;
    let done = tally.graded + tally.skipped + tally.not_gradable;
    let stopped = match grader::interrupt::signal() {
        Some(sig) => format!(
            "; {} stopped by {} before they finished or started (run again to grade them)",
            tally.total - done,
            sig.as_str()
        ),
        None => String::new(),
    };
    if !tally.unknown.is_empty() {
        grader::errln!(
            "grader: the roster names no student for {} submission(s): {}",
            tally.unknown.len(),
            tally.unknown.join(", ")
        );
    }
    if !tally.missing.is_empty() {
        grader::errln!(
            "grader: no submission from {} student(s) of the roster: {}",
            tally.missing.len(),
            tally.missing.join(", ")
        );
    }
    grader::outln!(
        "{} submissions: {} graded, {} skipped (unchanged), {} not gradable{stopped}; written to {} ({} and each one's .json, .html and .txt)",
        tally.total,
        tally.graded,
        tally.skipped,
        tally.not_gradable,
        out.display(),
        tally.files.join(", "),
    );
    Ok(tally)
}
