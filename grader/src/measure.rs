//! Figures measured the same way by the speed checks and by `cargo xtask bench`: the median
//! of rounds, nginx's configuration as the baseline, wrk's report.

use std::path::Path;

/// The median of `v` (the upper one of an even count); `v` must not be empty.
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The configuration of nginx: the same root, `WORKERS` workers, no access log, every
/// file it writes under `dir`.
pub fn nginx_conf(dir: &Path, root: &Path, port: u16, workers: usize) -> String {
    let d = dir.display();
    format!(
        "daemon off;\nmaster_process on;\nworker_processes {workers};\npid {d}/nginx.pid;\n\
         error_log {d}/error.log;\nevents {{ worker_connections 1024; }}\nhttp {{\n\
         \x20   access_log off;\n    client_body_temp_path {d}/body;\n\
         \x20   proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n\
         \x20   uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
         \x20   default_type application/octet-stream;\n    sendfile on;\n\
         \x20   server {{ listen 127.0.0.1:{port}; root {}; }}\n}}\n",
        root.display()
    )
}

/// What wrk reported.
#[derive(Debug, Clone, Copy, Default)]
pub struct WrkFigures {
    pub requests: u64,
    pub per_sec: f64,
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
    pub non_2xx: u64,
}

impl WrkFigures {
    /// Requests that failed: socket errors and non-2xx responses. wrk's "timeout" counts
    /// responses that came, but later than `--timeout` (a connection that waited in the
    /// accept queue while every worker was busy): late, not lost, so not here.
    pub fn failed(&self) -> u64 {
        self.connect + self.read + self.write + self.non_2xx
    }

    pub fn describe(&self) -> String {
        format!(
            "{} requests ({:.0}/s); errors: connect {}, read {}, write {}; answered after over \
             5 s {}; non-2xx responses {}",
            self.requests,
            self.per_sec,
            self.connect,
            self.read,
            self.write,
            self.timeout,
            self.non_2xx
        )
    }
}

/// Parses wrk's report.
pub fn parse_wrk(text: &str) -> Option<WrkFigures> {
    let mut f = WrkFigures::default();
    let mut seen = false;
    for line in text.lines().map(str::trim) {
        if let Some((n, _)) = line.split_once(" requests in ") {
            f.requests = n.trim().parse().ok()?;
            seen = true;
        } else if let Some(v) = line.strip_prefix("Requests/sec:") {
            f.per_sec = v.trim().parse().ok()?;
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            for part in v.split(',') {
                let mut w = part.split_whitespace();
                let (name, n) = (w.next()?, w.next()?.parse::<u64>().ok()?);
                match name {
                    "connect" => f.connect = n,
                    "read" => f.read = n,
                    "write" => f.write = n,
                    "timeout" => f.timeout = n,
                    _ => {}
                }
            }
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            f.non_2xx = v.trim().parse().ok()?;
        }
    }
    seen.then_some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_figure() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 3.0);
    }

    #[test]
    fn reads_wrk_reports() {
        let text = "Running 3s test @ http://127.0.0.1:1/4k.bin\n  2 threads and 64 connections\n\
                    \x20 32720 requests in 3.07s, 131.81MB read\n\
                    \x20 Socket errors: connect 0, read 3, write 1, timeout 2\n\
                    \x20 Non-2xx or 3xx responses: 5\nRequests/sec:  10653.67\n";
        let f = parse_wrk(text).unwrap();
        assert_eq!(
            (f.requests, f.read, f.write, f.timeout, f.non_2xx),
            (32720, 3, 1, 2, 5)
        );
        assert_eq!(f.failed(), 9);
        assert!((f.per_sec - 10653.67).abs() < 0.01);
        assert!(parse_wrk("nothing").is_none());
    }
}
