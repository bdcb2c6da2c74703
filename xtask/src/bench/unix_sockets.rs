//! The unix-sockets reference solution's figures, measured in one run:
//!
//! - lines per second through the reference `uds-bus` (release) with 8 clients that send
//!   and 8 that only receive, 64-byte lines: every line reaches the 15 other clients;
//! - bytes per second through one UNIX stream socket with 64 KiB writes: the C anchor
//!   (`xtask/bench/uds_stream.c`, two processes), Rust's `UnixStream` (two threads), and
//!   one client to another through the reference bus (4096-byte lines, two socket hops and
//!   the framing in between). Medians of alternating runs.
//!
//! Every client keeps its senders within a window of what the slowest client has received,
//! as a well-behaved client of a bus would: the bus drops a client that falls more than its
//! outbox behind, and a benchmark that got itself dropped would measure nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use grader::labfile::Tree;
use grader::measure::median;

/// Bytes of each stream run.
const STREAM_BYTES: usize = 1 << 30;
/// Bytes through the bus in a stream run (the bus copies twice, so fewer).
const BUS_BYTES: usize = 256 << 20;
/// Write size of the stream runs.
const CHUNK: usize = 64 << 10;
/// Senders and receivers of the lines run.
const SENDERS: usize = 8;
const RECEIVERS: usize = 8;
/// Lines each sender sends, and their length with the newline.
const LINES: usize = 25_000;
const LINE: usize = 64;
/// How far ahead of the slowest client a sender may be, in bytes.
const WINDOW: u64 = 128 << 10;

pub fn run(tree: &Tree, runs: usize) -> Result<()> {
    let work = tempfile::tempdir()?;
    let bus = build_reference(tree, work.path())?;
    let anchor = build_c(tree)?;
    let runs = runs.max(3);

    let mut lines = Vec::new();
    for _ in 0..runs {
        lines.push(lines_run(&bus, work.path())?);
    }
    let rate = median(&lines);
    println!(
        "uds-bus (reference, release), {SENDERS} senders + {RECEIVERS} receivers, {LINE}-byte \
         lines, {} lines in, median of {runs}: {:.0} lines/s in, {:.2} M deliveries/s \
         (each line to {} clients)",
        SENDERS * LINES,
        rate,
        rate * (SENDERS + RECEIVERS - 1) as f64 / 1e6,
        SENDERS + RECEIVERS - 1
    );

    let (mut c, mut rust, mut through_bus) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        if let Some(exe) = &anchor {
            c.push(c_run(exe)?);
        }
        rust.push(rust_run()?);
        through_bus.push(bus_stream_run(&bus, work.path())?);
    }
    let gbs = |v: &mut Vec<f64>| median(v) / 1e9;
    let rust_gbs = gbs(&mut rust);
    let bus_gbs = gbs(&mut through_bus);
    println!(
        "UNIX stream, {} KiB writes, median of {runs} alternating runs:",
        CHUNK >> 10
    );
    match anchor {
        Some(exe) => {
            let c_gbs = gbs(&mut c);
            println!(
                "  C anchor (socketpair, 2 processes)   {c_gbs:>6.2} GB/s   {}",
                exe.display()
            );
            println!(
                "  Rust UnixStream (2 threads)          {rust_gbs:>6.2} GB/s   ratio Rust/C {:.3}",
                rust_gbs / c_gbs
            );
            println!(
                "  through uds-bus (reference)          {bus_gbs:>6.2} GB/s   ratio bus/C {:.3}",
                bus_gbs / c_gbs
            );
        }
        None => {
            println!("  C anchor: skipped, no `cc` on this machine");
            println!("  Rust UnixStream (2 threads)          {rust_gbs:>6.2} GB/s");
            println!("  through uds-bus (reference)          {bus_gbs:>6.2} GB/s");
        }
    }
    Ok(())
}

/// Builds the reference `uds-bus` in release mode, staged as the grader stages it.
fn build_reference(tree: &Tree, work: &Path) -> Result<PathBuf> {
    super::release_bin(tree, "unix-sockets", "uds-bus", work)
}

/// Compiles `xtask/bench/uds_stream.c` with `cc -O2`; `None` without a `cc`.
fn build_c(tree: &Tree) -> Result<Option<PathBuf>> {
    let source = tree.root.join("xtask").join("bench").join("uds_stream.c");
    let dir = tree.root.join("target").join("bench");
    std::fs::create_dir_all(&dir)?;
    let exe = dir.join("uds_stream");
    match Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(&exe)
        .arg(&source)
        .status()
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context("cannot run cc"),
        Ok(s) if s.success() => Ok(Some(exe)),
        Ok(s) => bail!("cc -O2 {} failed: {s}", source.display()),
    }
}

/// Bytes per second of the C anchor.
fn c_run(exe: &Path) -> Result<f64> {
    let out = Command::new(exe)
        .args([STREAM_BYTES.to_string(), CHUNK.to_string()])
        .output()?;
    ensure!(
        out.status.success(),
        "{} failed: {}",
        exe.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
    Ok(STREAM_BYTES as f64 / secs)
}

/// Bytes per second through `UnixStream::pair`, a writer thread and a reader thread.
fn rust_run() -> Result<f64> {
    let (mut a, mut b) = UnixStream::pair()?;
    let t0 = Instant::now();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        let buf = vec![0x5Au8; CHUNK];
        for _ in 0..STREAM_BYTES / CHUNK {
            a.write_all(&buf)?;
        }
        Ok(())
    });
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0;
    loop {
        let n = b.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let secs = t0.elapsed().as_secs_f64();
    writer.join().expect("writer thread")?;
    ensure!(got == STREAM_BYTES, "read {got} of {STREAM_BYTES} bytes");
    Ok(STREAM_BYTES as f64 / secs)
}

/// A running `uds-bus` with its log followed; killed when dropped.
struct Bus {
    child: Child,
    joined: Arc<(Mutex<usize>, Condvar)>,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Bus {
    fn start(exe: &Path, work: &Path) -> Result<Bus> {
        let dir = tempfile::Builder::new().prefix("bus-").tempdir_in(work)?;
        let path = dir.path().join("bus.sock");
        let mut child = Command::new(exe)
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        let mut ready = String::new();
        BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut ready)?;
        ensure!(
            ready == "ready\n",
            "uds-bus printed {ready:?} instead of ready"
        );
        let joined = Arc::new((Mutex::new(0), Condvar::new()));
        let seen = Arc::clone(&joined);
        let err = child.stderr.take().context("stderr")?;
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
                if line.ends_with(" joined") {
                    *seen.0.lock().unwrap() += 1;
                    seen.1.notify_all();
                } else if line.contains(" dropped") {
                    eprintln!("bench: {line}");
                }
            }
        });
        Ok(Bus {
            child,
            joined,
            path,
            _dir: dir,
        })
    }

    /// Connects `n` clients, one after the other, each once the bus logged it.
    fn clients(&self, n: usize) -> Result<Vec<UnixStream>> {
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            v.push(UnixStream::connect(&self.path)?);
            let (lock, cv) = &*self.joined;
            let (count, timeout) = cv
                .wait_timeout_while(lock.lock().unwrap(), Duration::from_secs(5), |c| *c < i + 1)
                .unwrap();
            ensure!(
                !timeout.timed_out(),
                "uds-bus logged {} joins of {}",
                *count,
                i + 1
            );
        }
        Ok(v)
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Who has sent and received what, so that senders stay within [`WINDOW`].
struct Flow {
    state: Mutex<(Vec<u64>, Vec<u64>)>,
    cv: Condvar,
}

impl Flow {
    /// Waits until every client has received all but [`WINDOW`] bytes of what the others
    /// sent to it.
    fn wait_room(&self) {
        let mut st = self.state.lock().unwrap();
        loop {
            let total: u64 = st.0.iter().sum();
            let lag = (0..st.1.len())
                .map(|c| {
                    // A sender counts its bytes once written: a receiver may be ahead.
                    (total - st.0.get(c).copied().unwrap_or(0)).saturating_sub(st.1[c])
                })
                .max()
                .unwrap_or(0);
            if lag <= WINDOW {
                return;
            }
            st = self.cv.wait(st).unwrap();
        }
    }
}

/// Lines in per second with `SENDERS` senders and `RECEIVERS` receivers.
fn lines_run(exe: &Path, work: &Path) -> Result<f64> {
    let bus = Bus::start(exe, work)?;
    let clients = bus.clients(SENDERS + RECEIVERS)?;
    let n = clients.len();
    let flow = Arc::new(Flow {
        state: Mutex::new((vec![0; SENDERS], vec![0; n])),
        cv: Condvar::new(),
    });
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for (c, stream) in clients.into_iter().enumerate() {
        // Clients 0..SENDERS send; every client receives what the others sent.
        let expected = ((SENDERS - usize::from(c < SENDERS)) * LINES * LINE) as u64;
        let mut reader = stream.try_clone()?;
        let flow_r = Arc::clone(&flow);
        handles.push(std::thread::spawn(move || -> Result<()> {
            let mut buf = vec![0u8; 64 << 10];
            let mut got = 0u64;
            while got < expected {
                let k = reader.read(&mut buf)?;
                ensure!(
                    k > 0,
                    "client {c} was disconnected after {got} of {expected} bytes"
                );
                got += k as u64;
                flow_r.state.lock().unwrap().1[c] = got;
                flow_r.cv.notify_all();
            }
            Ok(())
        }));
        if c < SENDERS {
            let mut writer = stream;
            let flow_w = Arc::clone(&flow);
            handles.push(std::thread::spawn(move || -> Result<()> {
                let mut line = format!("sender {c} ").into_bytes();
                line.resize(LINE - 1, b'x');
                line.push(b'\n');
                let batch: Vec<u8> = line.repeat(64);
                for _ in 0..LINES / 64 {
                    flow_w.wait_room();
                    writer.write_all(&batch)?;
                    flow_w.state.lock().unwrap().0[c] += batch.len() as u64;
                }
                let rest = LINES % 64;
                writer.write_all(&line.repeat(rest))?;
                flow_w.state.lock().unwrap().0[c] += (rest * LINE) as u64;
                Ok(())
            }));
        }
    }
    for h in handles {
        h.join().expect("a client thread panicked")?;
    }
    let secs = t0.elapsed().as_secs_f64();
    Ok((SENDERS * LINES) as f64 / secs)
}

/// Bytes per second from one client to another through the bus, 4096-byte lines written
/// 64 KiB at a time.
fn bus_stream_run(exe: &Path, work: &Path) -> Result<f64> {
    let bus = Bus::start(exe, work)?;
    let mut clients = bus.clients(2)?;
    let mut receiver = clients.pop().context("two clients")?;
    let mut sender = clients.pop().context("two clients")?;
    let received = Arc::new((Mutex::new(0u64), Condvar::new()));
    let seen = Arc::clone(&received);
    let t0 = Instant::now();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        let mut line = vec![b'y'; 4095];
        line.push(b'\n');
        let chunk = line.repeat(CHUNK / line.len());
        let mut sent = 0u64;
        while (sent as usize) < BUS_BYTES {
            {
                let (lock, cv) = &*seen;
                let mut got = lock.lock().unwrap();
                // At most 256 KiB in flight: never more than the bus's outbox holds, so
                // the receiver is never dropped however the three processes are scheduled.
                while sent.saturating_sub(*got) > WINDOW * 2 {
                    got = cv.wait(got).unwrap();
                }
            }
            sender.write_all(&chunk)?;
            sent += chunk.len() as u64;
        }
        Ok(())
    });
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    while (got as usize) < BUS_BYTES {
        let n = receiver.read(&mut buf)?;
        ensure!(n > 0, "the receiver was disconnected after {got} bytes");
        got += n as u64;
        let (lock, cv) = &*received;
        *lock.lock().unwrap() = got;
        cv.notify_all();
    }
    let secs = t0.elapsed().as_secs_f64();
    writer.join().expect("writer thread")?;
    Ok(BUS_BYTES as f64 / secs)
}
