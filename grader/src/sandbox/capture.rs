//! Capturing a stream: the first bytes up to a cap, the last few past it, and waiting on
//! what has arrived.

use std::io::Read;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// Output captured from one stream.
#[derive(Debug, Default)]
pub(super) struct CapState {
    data: Vec<u8>,
    dropped: u64,
    /// Past the cap: the last bytes, so that a summary printed at the end is still seen.
    tail: std::collections::VecDeque<u8>,
    eof: bool,
}

/// How much of the end of an over-long stream is kept.
const TAIL: usize = 16 << 10;

#[derive(Debug, Default)]
pub(super) struct Capture {
    state: Mutex<CapState>,
    cv: Condvar,
}

impl Capture {
    pub(super) fn pump(
        self: Arc<Self>,
        mut r: impl Read + Send + 'static,
        cap: usize,
    ) -> JoinHandle<()> {
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) => 0,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => 0,
                };
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if n == 0 {
                    st.eof = true;
                    self.cv.notify_all();
                    return;
                }
                let room = cap.saturating_sub(st.data.len()).min(n);
                st.data.extend_from_slice(&buf[..room]);
                st.dropped += (n - room) as u64;
                let rest = &buf[room..n];
                let rest = &rest[rest.len().saturating_sub(TAIL)..];
                st.tail.extend(rest);
                let excess = st.tail.len().saturating_sub(TAIL);
                st.tail.drain(..excess);
                self.cv.notify_all();
            }
        })
    }

    pub(super) fn snapshot(&self) -> (Vec<u8>, u64) {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (st.data.clone(), st.dropped)
    }

    pub(super) fn tail(&self) -> Vec<u8> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.tail.iter().copied().collect()
    }

    /// Waits until `pred(data)` holds or EOF or the deadline; returns whether `pred` held.
    pub(super) fn wait_for(&self, deadline: Instant, pred: impl Fn(&[u8]) -> bool) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if pred(&st.data) {
                return true;
            }
            let now = Instant::now();
            if st.eof || now >= deadline {
                return false;
            }
            st = self
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until EOF or the deadline; returns whether the stream reached EOF.
    pub(super) fn wait_eof(&self, deadline: Instant) -> bool {
        self.wait_for(deadline, |_| false);
        self.state.lock().unwrap_or_else(|e| e.into_inner()).eof
    }
}
