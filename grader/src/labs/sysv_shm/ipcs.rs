//! What `shmctr stat` printed and what `ipcs -m` shows, for `stat_matches_ipcs`.

use crate::check::Fail;
use crate::sandbox::Spec;

use super::SHORT;
use super::scene::Scene;
use super::text::hex;

/// The fields of a `shmctr stat` line, `size=8 nattch=0 mode=600 cpid=123`.
pub(super) fn parse_stat(text: &str) -> Option<(u64, u64, u32, i32)> {
    let mut size = None;
    let mut nattch = None;
    let mut mode = None;
    let mut cpid = None;
    for field in text.split_whitespace() {
        let (k, v) = field.split_once('=')?;
        match k {
            "size" => size = v.parse().ok(),
            "nattch" => nattch = v.parse().ok(),
            "mode" => mode = u32::from_str_radix(v.trim_start_matches("0o"), 8).ok(),
            "cpid" => cpid = v.parse().ok(),
            _ => {}
        }
    }
    Some((size?, nattch?, mode?, cpid?))
}

/// From `ipcs -m` and `ipcs -m -p`: the bytes, nattch, perms and cpid of `key`'s segment.
pub(super) fn ipcs_row(scene: &mut Scene, key: i32) -> Result<(u64, u64, u32, i32), Fail> {
    let ipcs = |scene: &mut Scene, args: &[&str]| -> Result<String, Fail> {
        let spec = Spec::new("ipcs", &scene.ctx.scratch).args(args);
        // Not the student's fault: say so, for the course staff.
        let broken = |why: String| {
            Fail(format!(
                "the grader could not run `ipcs` (util-linux), which this check compares with: \
                 {why}. This is a problem of the grading machine: tell your course staff"
            ))
        };
        let mut p = scene.ctx.spawn(&spec).map_err(|Fail(m)| broken(m))?;
        let out = scene.ctx.finish("ipcs", &mut p, SHORT)?;
        if out.status() != 0 {
            return Err(broken(out.stderr_str().trim().to_owned()));
        }
        Ok(out.stdout_str())
    };
    let want = hex(key);
    // key shmid owner perms bytes nattch status
    let plain = ipcs(scene, &["-m"])?;
    let row = plain
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.first() == Some(&want.as_str()))
        .ok_or_else(|| Fail(format!("`ipcs -m` shows no segment with key {want}")))?;
    let shmid = row[1].to_owned();
    let perms = u32::from_str_radix(row[3], 8)?;
    let bytes = row[4].parse()?;
    let nattch = row[5].parse()?;
    // shmid owner cpid lpid
    let pids = ipcs(scene, &["-m", "-p"])?;
    let cpid = pids
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.first() == Some(&shmid.as_str()))
        .and_then(|f| f.get(2)?.parse().ok())
        .ok_or_else(|| Fail(format!("`ipcs -m -p` shows no segment with shmid {shmid}")))?;
    Ok((bytes, nattch, perms & 0o777, cpid))
}
