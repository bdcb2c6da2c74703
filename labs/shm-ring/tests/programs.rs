//! Part C: `ring-send NAME` and `ring-recv NAME`: either may start first, the stream ends
//! where the input ends, errors are one line and exit 1, and nothing stays in /dev/shm.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{DEADLINE, RingName, bin, pattern};

const HINT: &str = "ring-send closes its half at the end of its input; ring-recv stops when \
read returns 0";

/// Waits until `cond` holds, at most `limit`.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    cond()
}

fn pair(name: &RingName, data: &[u8], sender_first: bool) {
    let mut first = if sender_first {
        bin("ring-send")
    } else {
        bin("ring-recv")
    };
    first.arg(name.as_str());
    let mut second = if sender_first {
        bin("ring-recv")
    } else {
        bin("ring-send")
    };
    second.arg(name.as_str());
    let (what1, what2) = if sender_first {
        ("ring-send", "ring-recv")
    } else {
        ("ring-recv", "ring-send")
    };
    let input1: &[u8] = if sender_first { data } else { b"" };
    let input2: &[u8] = if sender_first { b"" } else { data };
    let n = name.0.clone();
    let d1 = input1.to_vec();
    let h = std::thread::spawn(move || {
        testkit::run(&mut first, &format!("{what1} {n}"), &d1, DEADLINE, HINT)
    });
    assert!(
        wait_for(DEADLINE, || name.made()),
        "{what1} {} did not create {} within {DEADLINE:?}",
        name.0,
        name.path()
    );
    let out2 = testkit::run(
        &mut second,
        &format!("{what2} {}", name.0),
        input2,
        DEADLINE,
        HINT,
    );
    let out1 = h.join().expect("the first program");
    let (send, recv) = if sender_first {
        (out1, out2)
    } else {
        (out2, out1)
    };
    assert!(
        send.status.success(),
        "ring-send {} ended with {}; stderr: {}",
        name.0,
        send.status,
        String::from_utf8_lossy(&send.stderr)
    );
    assert!(
        recv.status.success(),
        "ring-recv {} ended with {}; stderr: {}",
        name.0,
        recv.status,
        String::from_utf8_lossy(&recv.stderr)
    );
    testkit::assert_same_bytes("ring-recv's stdout", data, &recv.stdout);
    assert!(
        !name.exists(),
        "{} is still in /dev/shm after both programs ended: remove the name (shm_unlink) once both halves are attached",
        name.path()
    );
}

/// ring-send started first, then ring-recv: 3 MiB arrive intact, nothing left behind.
#[test]
fn sender_first_part_c() {
    let name = RingName::new();
    pair(&name, &pattern(3 << 20), true);
}

/// ring-recv started first, then ring-send: 3 MiB arrive intact, nothing left behind.
#[test]
fn receiver_first_part_c() {
    let name = RingName::new();
    pair(&name, &pattern(3 << 20), false);
}

/// Empty input: ring-recv prints nothing and both exit 0.
#[test]
fn empty_input_part_c() {
    let name = RingName::new();
    pair(&name, b"", true);
}

/// No NAME: usage on stderr, exit 2.
#[test]
fn usage_error_exits_2_part_c() {
    let out = testkit::run(&mut bin("ring-recv"), "ring-recv", b"", DEADLINE, "");
    assert_eq!(
        out.status.code(),
        Some(2),
        "ring-recv with no argument: expected exit 2, stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bad NAME: one line `ring-send: ...` on stderr, exit 1.
#[test]
fn bad_name_exits_1_part_c() {
    for prog in ["ring-send", "ring-recv"] {
        let out = testkit::run(
            bin(prog).arg("no/slash"),
            &format!("{prog} no/slash"),
            b"",
            DEADLINE,
            "",
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{prog} no/slash: expected exit 1, stderr: {err}"
        );
        assert!(
            err.starts_with(&format!("{prog}: ")) && err.lines().count() == 1,
            "{prog} no/slash: expected one line `{prog}: ...` on stderr, got {err:?}"
        );
    }
}

/// An object of that name that is not a ring: exit 1 with a line that says so, and the
/// object (not theirs) is left alone.
#[test]
fn an_object_that_is_not_a_ring_exits_1_part_c() {
    let name = RingName::new();
    std::fs::write(name.path(), vec![0x5Au8; 100]).expect("write a fake object");
    let out = testkit::run(
        bin("ring-recv").arg(name.as_str()),
        "ring-recv on a fake object",
        b"",
        DEADLINE,
        "",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "ring-recv on 100 bytes that are not a ring: expected exit 1, stderr: {err}"
    );
    assert!(
        err.starts_with("ring-recv: "),
        "expected `ring-recv: ...` on stderr, got {err:?}"
    );
}

/// A second ring-send on a name whose ring already has a sender exits 1; the first one
/// still delivers its stream.
#[test]
fn a_second_sender_is_refused_part_c() {
    let name = RingName::new();
    let mut first = bin("ring-send");
    first.arg(name.as_str()).stdin(Stdio::piped());
    let mut g = testkit::Group::spawn(&mut first, "ring-send (first)");
    assert!(
        wait_for(DEADLINE, || name.made()),
        "ring-send did not create {}",
        name.path()
    );
    assert!(
        common::wait_asleep(g.pid(), DEADLINE),
        "the first ring-send never waited for input"
    );
    let second = testkit::run(
        bin("ring-send").arg(name.as_str()),
        "ring-send (second)",
        b"x",
        DEADLINE,
        "",
    );
    assert_eq!(
        second.status.code(),
        Some(1),
        "a second ring-send on {}: expected exit 1, stderr: {}",
        name.0,
        String::from_utf8_lossy(&second.stderr)
    );
    let mut stdin = g.child().stdin.take().expect("stdin");
    stdin.write_all(b"from the first").expect("write");
    drop(stdin);
    // ring-send closes its half and exits; the bytes wait in the ring.
    let st = g.wait_or_explain(DEADLINE, HINT);
    assert!(st.success(), "the first ring-send ended with {st}");
    let recv = testkit::run(
        bin("ring-recv").arg(name.as_str()),
        "ring-recv",
        b"",
        DEADLINE,
        HINT,
    );
    testkit::assert_same_bytes("ring-recv's stdout", b"from the first", &recv.stdout);
    assert!(
        !name.exists(),
        "{} is still in /dev/shm after both programs ended",
        name.path()
    );
}

/// ring-recv has printed everything and sleeps waiting for more; then ring-send's input
/// ends: the end of the stream must wake ring-recv, which exits 0.
#[test]
fn end_of_stream_wakes_a_sleeping_receiver_part_c() {
    let name = RingName::new();
    let mut send = bin("ring-send");
    send.arg(name.as_str()).stdin(Stdio::piped());
    let mut s = testkit::Group::spawn(&mut send, "ring-send");
    assert!(
        wait_for(DEADLINE, || name.made()),
        "ring-send did not create {} within {DEADLINE:?}",
        name.path()
    );
    let mut recv = bin("ring-recv");
    recv.arg(name.as_str()).stdout(Stdio::piped());
    let mut r = testkit::Group::spawn(&mut recv, "ring-recv");
    let out = testkit::deadline::Capture::start(r.child().stdout.take().expect("stdout"), 1 << 20);
    let mut stdin = s.child().stdin.take().expect("stdin");
    stdin.write_all(b"all of it\n").expect("write");
    assert!(
        wait_for(DEADLINE, || out.bytes() == b"all of it\n"),
        "ring-recv printed {:?} of \"all of it\"",
        String::from_utf8_lossy(&out.bytes())
    );
    // Let it get as far as its wait (a futex sleep, or a spin for a receiver that spins).
    common::wait_asleep(r.pid(), Duration::from_secs(1));
    drop(stdin);
    let st = r.wait_or_explain(DEADLINE, "when the producer closes, a consumer asleep in its futex wait must wake up and see the end of the stream");
    assert!(st.success(), "ring-recv ended with {st}");
    let st = s.wait_or_explain(DEADLINE, HINT);
    assert!(st.success(), "ring-send ended with {st}");
    assert!(
        !name.exists(),
        "{} is still in /dev/shm after both programs ended",
        name.path()
    );
}
