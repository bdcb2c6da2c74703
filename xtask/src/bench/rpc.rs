//! The rpc reference solution's speed, as figures measured in one run:
//!
//! - calls per second of `add` on the reference `rpc-server` (release), `CONNS` connections
//!   at once, each making `CALLS` calls one after the other (a call waits for its reply);
//! - the same calls with a `"_client"` member, so that each goes through the reply cache
//!   (the price of at-most-once);
//! - the same number of round trips of lines of the same size through a line echo server
//!   in this process (a thread per connection): the transport alone, without JSON.
//!
//! The three are measured in alternating rounds and compared by their medians.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use grader::labfile::Tree;

const CONNS: usize = 8;
const CALLS: usize = 4000;

pub fn run(tree: &Tree, rounds: usize) -> Result<()> {
    let work = tempfile::tempdir()?;
    let exe = super::release_bin(tree, "rpc", "rpc-server", work.path())?;
    let mut server = Command::new(exe)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start rpc-server")?;
    let result = measure(&mut server, rounds);
    let _ = server.kill();
    let _ = server.wait();
    result
}

fn measure(server: &mut std::process::Child, rounds: usize) -> Result<()> {
    let mut line = String::new();
    BufReader::new(server.stdout.take().context("stdout")?).read_line(&mut line)?;
    let port: u16 = line
        .trim()
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("rpc-server printed {line:?}"))?;
    let echo = echo_server()?;

    let plain = |c: usize, i: usize| {
        format!(r#"{{"jsonrpc":"2.0","method":"add","params":[{c},{i}],"id":{i}}}"#)
    };
    let cached = |c: usize, i: usize| {
        format!(
            r#"{{"jsonrpc":"2.0","method":"add","params":[{c},{i}],"id":{i},"_client":"bench-{c}"}}"#
        )
    };
    let (mut a, mut b, mut e) = (Vec::new(), Vec::new(), Vec::new());
    load(port, &plain)?; // warm-up
    for _ in 0..rounds.max(3) {
        a.push(load(port, &plain)?);
        b.push(load(port, &cached)?);
        e.push(load(echo, &plain)?);
    }
    let (a, b, e) = (super::median(&a), super::median(&b), super::median(&e));
    println!(
        "rpc-server (release), {CONNS} connections x {CALLS} sequential add calls, median of {} \
         alternating rounds:",
        rounds.max(3)
    );
    println!("  add                          {a:>9.0} calls/s");
    println!(
        "  add with _client (cached)    {b:>9.0} calls/s  ({:.3} of plain add)",
        b / a
    );
    println!(
        "  line echo (transport only)   {e:>9.0} round trips/s  (add/echo {:.3})",
        a / e
    );
    Ok(())
}

/// `CONNS` connections, each sending `CALLS` lines one after the other and reading each
/// reply; calls per second over all of them.
fn load(port: u16, line: &(dyn Fn(usize, usize) -> String + Sync)) -> Result<f64> {
    let start = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..CONNS)
            .map(|c| {
                s.spawn(move || -> Result<()> {
                    let stream = TcpStream::connect(("127.0.0.1", port))?;
                    stream.set_nodelay(true)?;
                    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                    let mut w = stream.try_clone()?;
                    let mut r = BufReader::new(stream);
                    let mut reply = String::new();
                    for i in 0..CALLS {
                        let mut l = line(c, i);
                        l.push('\n');
                        w.write_all(l.as_bytes())?;
                        reply.clear();
                        if r.read_line(&mut reply)? == 0 {
                            bail!("the server closed the connection");
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().expect("a load thread")?;
        }
        Ok(())
    })?;
    Ok((CONNS * CALLS) as f64 / start.elapsed().as_secs_f64())
}

/// A line echo server on 127.0.0.1, a thread per connection; its port.
fn echo_server() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = conn.set_nodelay(true);
                let Ok(mut w) = conn.try_clone() else { return };
                let mut r = BufReader::new(conn);
                let mut line = String::new();
                while matches!(r.read_line(&mut line), Ok(n) if n > 0) {
                    if w.write_all(line.as_bytes()).is_err() {
                        return;
                    }
                    line.clear();
                }
            });
        }
    });
    Ok(port)
}
