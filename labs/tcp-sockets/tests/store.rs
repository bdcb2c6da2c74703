//! Part B: the commands and their replies, byte for byte.

use std::ops::Range;

use rstest::rstest;
use tcp_sockets::{Args, Store};

/// Runs `words` (one request) on `store` and returns the reply's bytes.
fn run(store: &mut Store, words: &[&[u8]]) -> Vec<u8> {
    let buf: Vec<u8> = words.concat();
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let mut at = 0;
    for w in words {
        ranges.push(at..at + w.len());
        at += w.len();
    }
    let mut out = b"before|".to_vec();
    store.execute(
        Args {
            buf: &buf,
            ranges: &ranges,
        },
        &mut out,
    );
    assert!(
        out.starts_with(b"before|"),
        "execute must append to `out`, not replace it"
    );
    out.split_off(7)
}

#[track_caller]
fn check(store: &mut Store, words: &[&[u8]], want: &[u8]) {
    let got = run(store, words);
    // Bytes that are not text (a name that is not UTF-8, a \r\n) shown escaped.
    let shown: Vec<String> = words.iter().map(|w| w.escape_ascii().to_string()).collect();
    testkit::assert_same_bytes(&format!("the reply to {}", shown.join(" ")), want, &got);
}

/// PING, PING msg, ECHO msg.
#[test]
fn ping_and_echo_part_b() {
    let mut s = Store::new();
    check(&mut s, &[b"PING"], b"+PONG\r\n");
    check(&mut s, &[b"PING", b"hi there"], b"$8\r\nhi there\r\n");
    check(&mut s, &[b"ECHO", b"a\r\nb"], b"$4\r\na\r\nb\r\n");
}

/// SET then GET returns the value; GET of a missing key is nil; SET replaces.
#[test]
fn set_and_get_part_b() {
    let mut s = Store::new();
    check(&mut s, &[b"GET", b"k"], b"$-1\r\n");
    check(&mut s, &[b"SET", b"k", b"v1"], b"+OK\r\n");
    check(&mut s, &[b"GET", b"k"], b"$2\r\nv1\r\n");
    check(&mut s, &[b"SET", b"k", b""], b"+OK\r\n");
    check(&mut s, &[b"GET", b"k"], b"$0\r\n\r\n");
    check(&mut s, &[b"SET", b"\0bin\r\n", b"\xff\r\n"], b"+OK\r\n");
    check(&mut s, &[b"GET", b"\0bin\r\n"], b"$3\r\n\xff\r\n\r\n");
    assert_eq!(s.len(), 2);
}

/// DEL and EXISTS count keys (EXISTS counts a key named twice twice).
#[test]
fn del_and_exists_count_part_b() {
    let mut s = Store::new();
    check(&mut s, &[b"SET", b"a", b"1"], b"+OK\r\n");
    check(&mut s, &[b"SET", b"b", b"2"], b"+OK\r\n");
    check(&mut s, &[b"EXISTS", b"a", b"a", b"b", b"c"], b":3\r\n");
    check(&mut s, &[b"DEL", b"a", b"c"], b":1\r\n");
    check(&mut s, &[b"DEL", b"a"], b":0\r\n");
    check(&mut s, &[b"EXISTS", b"a"], b":0\r\n");
}

/// Command names are case-insensitive.
#[rstest]
#[case(b"ping")]
#[case(b"Ping")]
#[case(b"pInG")]
fn names_are_case_insensitive_part_b(#[case] name: &[u8]) {
    check(&mut Store::new(), &[name], b"+PONG\r\n");
}

/// Anything else: `-ERR unknown command '<name>'`, with the name as sent.
#[test]
fn unknown_commands_part_b() {
    let mut s = Store::new();
    check(
        &mut s,
        &[b"FLUSHALL"],
        b"-ERR unknown command 'FLUSHALL'\r\n",
    );
    check(&mut s, &[b"incr", b"x"], b"-ERR unknown command 'incr'\r\n");
}

/// A known command with the wrong number of arguments is an error reply, and changes
/// nothing.
#[test]
fn wrong_number_of_arguments_part_b() {
    let mut s = Store::new();
    for words in [
        &[&b"GET"[..]][..],
        &[b"GET", b"k", b"extra"],
        &[b"SET", b"k"],
        &[b"SET", b"k", b"v", b"extra"],
        &[b"DEL"],
        &[b"ECHO"],
        &[b"ECHO", b"a", b"b"],
        &[b"EXISTS"],
        &[b"PING", b"a", b"b"],
    ] {
        let got = run(&mut s, words);
        assert!(
            got.starts_with(b"-ERR wrong number of arguments") && got.ends_with(b"\r\n"),
            "{:?} with {} argument(s): expected `-ERR wrong number of arguments for '...' \
             command`, got {}",
            String::from_utf8_lossy(words[0]),
            words.len() - 1,
            testkit::compare::show(&got)
        );
    }
    assert!(s.is_empty());
}

/// A command name is bytes, not text: one that is not UTF-8 is an unknown command, named
/// as sent (and nothing panics).
#[test]
fn names_that_are_not_utf8_are_unknown_part_b() {
    let mut s = Store::new();
    check(
        &mut s,
        &[b"\xff\xfe", b"k"],
        b"-ERR unknown command '\xff\xfe'\r\n",
    );
    check(
        &mut s,
        &[b"G\xc3T", b"k"],
        b"-ERR unknown command 'G\xc3T'\r\n",
    );
}

/// An error reply is one line, whatever bytes the name holds: a name with `\r` or `\n` in it
/// (any bytes may be a bulk string) must not end the line early, or the client reads the rest
/// of the name as the next reply and every reply after it is off by one.
#[test]
fn an_error_reply_is_one_line_part_b() {
    let mut s = Store::new();
    for name in [&b"A\r\nB!"[..], b"\r\n+OK", b"two\nlines", b"cr\rhere"] {
        let got = run(&mut s, &[name]);
        let body = got
            .strip_prefix(b"-ERR unknown command '")
            .and_then(|b| b.strip_suffix(b"'\r\n"));
        assert!(
            body.is_some_and(|b| !b.contains(&b'\r') && !b.contains(&b'\n')),
            "the unknown command `{}` got `{}`: expected one line `-ERR unknown command \
             '...'\\r\\n` with no `\\r` or `\\n` before its end (write the name's line breaks \
             as spaces, say)",
            name.escape_ascii(),
            got.escape_ascii()
        );
    }
}

/// A request with no argument (an empty inline line) has no reply at all.
#[test]
fn an_empty_request_has_no_reply_part_b() {
    check(&mut Store::new(), &[], b"");
}
