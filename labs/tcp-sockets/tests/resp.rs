//! Part A: requests parsed from a byte stream (cut anywhere, many at once, inline, lying
//! lengths) and replies encoded and parsed back.

use std::ops::Range;

use rstest::rstest;
use tcp_sockets::resp::{encode_request, parse_request};
use tcp_sockets::{ProtocolError, Reply};

const MAX: usize = 1 << 20;

/// What [`parse`] returns: the arguments and the request's length, when it is whole.
type Parsed = Result<Option<(Vec<Vec<u8>>, usize)>, ProtocolError>;

/// The arguments of the request at the start of `buf`, and its length.
#[track_caller]
fn parse(buf: &[u8]) -> Parsed {
    let mut ranges: Vec<Range<usize>> = vec![0..0; 3]; // not empty: parse_request clears it
    parse_request(buf, MAX, &mut ranges)
        .map(|done| done.map(|n| (ranges.iter().map(|r| buf[r.clone()].to_vec()).collect(), n)))
}

fn words(ws: &[&str]) -> Vec<Vec<u8>> {
    ws.iter().map(|w| w.as_bytes().to_vec()).collect()
}

/// A whole SET request: three arguments, every byte consumed.
#[test]
fn parses_a_whole_request_part_a() {
    let buf = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
    assert_eq!(
        parse(buf),
        Ok(Some((words(&["SET", "key", "value"]), buf.len())))
    );
}

/// A request cut at any byte is incomplete (`Ok(None)`), never an error, until its last
/// byte arrives.
#[rstest]
#[case::array(&b"*2\r\n$4\r\nECHO\r\n$11\r\nhello world\r\n"[..])]
#[case::inline(&b"SET k v\r\n"[..])]
#[case::empty_bulk(&b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"[..])]
fn every_cut_is_incomplete_until_the_last_byte_part_a(#[case] frame: &[u8]) {
    for k in 0..frame.len() {
        assert_eq!(
            parse(&frame[..k]),
            Ok(None),
            "the first {k} of {} bytes of {:?} must be `Ok(None)` (read more): TCP may cut a \
             request anywhere",
            frame.len(),
            String::from_utf8_lossy(frame)
        );
    }
    assert!(matches!(parse(frame), Ok(Some((_, n))) if n == frame.len()));
}

/// Two requests and half of a third in one buffer: each parse takes exactly one request.
#[test]
fn pipelined_requests_parse_one_at_a_time_part_a() {
    let buf = b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n*2\r\n$3\r\nGE";
    let (a, n1) = parse(buf).unwrap().expect("a whole PING");
    assert_eq!((a, n1), (words(&["PING"]), 14));
    let (b, n2) = parse(&buf[n1..]).unwrap().expect("a whole GET");
    assert_eq!((b, n2), (words(&["GET", "k"]), 20));
    let (c, n3) = parse(&buf[n1 + n2..]).unwrap().expect("an inline PING");
    assert_eq!((c, n3), (words(&["PING"]), 6));
    assert_eq!(parse(&buf[n1 + n2 + n3..]), Ok(None));
}

/// A bulk string is as long as its length says, `\r\n` and zero bytes inside included.
#[test]
fn binary_values_keep_their_length_part_a() {
    let value = b"a\r\nb\0\r\n\r\nc";
    let mut buf = Vec::new();
    encode_request(&[&b"SET"[..], b"k", value], &mut buf);
    assert_eq!(
        &buf[..],
        &b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\na\r\nb\0\r\n\r\nc\r\n"[..],
        "encode_request"
    );
    let (args, n) = parse(&buf).unwrap().expect("a whole request");
    assert_eq!(
        n,
        buf.len(),
        "a SET whose value holds \\r\\n: take the value by its length ($10), not up to the \
         first \\r\\n"
    );
    assert_eq!(
        args[2],
        value.to_vec(),
        "the value must be taken by its length, not up to a \\r\\n"
    );
}

/// Inline commands: words separated by spaces or tabs, `\r\n` or `\n` at the end; an empty
/// line is a request with no argument.
#[rstest]
#[case::ping(&b"PING\r\n"[..], &["PING"][..])]
#[case::lf_only(&b"GET k\n"[..], &["GET", "k"][..])]
#[case::spaces(&b"  SET  k \t v  \r\n"[..], &["SET", "k", "v"][..])]
#[case::empty(&b"\r\n"[..], &[][..])]
fn inline_commands_part_a(#[case] buf: &[u8], #[case] want: &[&str]) {
    assert_eq!(parse(buf), Ok(Some((words(want), buf.len()))));
}

/// Bytes that are not RESP are `Malformed`.
#[rstest]
#[case::count_not_a_number(&b"*x\r\n"[..])]
#[case::integer_instead_of_bulk(&b"*1\r\n:5\r\n"[..])]
#[case::bulk_length_not_a_number(&b"*1\r\n$abc\r\n"[..])]
#[case::negative_bulk_length(&b"*1\r\n$-5\r\n"[..])]
#[case::bulk_too_long_for_its_length(&b"*1\r\n$2\r\nabc\r\n"[..])]
#[case::cr_without_lf(&b"*1\r$4\r\nPING\r\n"[..])]
fn malformed_requests_are_errors_part_a(#[case] buf: &[u8]) {
    assert!(
        matches!(parse(buf), Err(ProtocolError::Malformed(_))),
        "{:?} must be Err(ProtocolError::Malformed(..)), got {:?}",
        String::from_utf8_lossy(buf),
        parse(buf)
    );
}

/// A length over the cap is refused as soon as its header arrives, without waiting for (or
/// reserving room for) the bytes it announces.
#[test]
fn an_announced_length_over_the_cap_is_refused_at_once_part_a() {
    let got = parse(b"*2\r\n$3\r\nSET\r\n$1073741824\r\n");
    assert!(
        matches!(got, Err(ProtocolError::TooLarge { .. })),
        "a bulk of 1 GiB announced with a cap of {MAX} bytes: expected Err(TooLarge) at once, \
         got {got:?}"
    );
}

/// The cap is on the whole request, not on each argument: arguments each well under it
/// that add up to more are refused as soon as the header that crosses it arrives.
#[test]
fn the_cap_counts_the_whole_request_part_a() {
    let mut ranges = Vec::new();
    let mut buf = Vec::new();
    encode_request(
        &[
            &b"EXISTS"[..],
            &[b'a'; 300],
            &[b'b'; 300],
            &[b'c'; 300],
            &[b'd'; 300],
        ],
        &mut buf,
    );
    let got = parse_request(&buf, 1000, &mut ranges);
    assert!(
        matches!(got, Err(ProtocolError::TooLarge { .. })),
        "a request of {} bytes (5 arguments, none over 300 bytes) with a cap of 1000 bytes: \
         expected Err(TooLarge): the cap counts every byte of the request, got {got:?}",
        buf.len()
    );
    let header_end = buf.len() - 300 - 2;
    assert!(
        matches!(
            parse_request(&buf[..header_end], 1000, &mut ranges),
            Err(ProtocolError::TooLarge { .. })
        ),
        "the header `$300` that takes the request past the cap must be refused when it arrives"
    );
}

/// `*0` and `*-1` are requests with no argument, to be skipped like an empty line.
#[rstest]
#[case::empty_array(&b"*0\r\n"[..])]
#[case::null_array(&b"*-1\r\n"[..])]
fn empty_and_null_arrays_have_no_argument_part_a(#[case] buf: &[u8]) {
    assert_eq!(parse(buf), Ok(Some((Vec::new(), buf.len()))));
}

/// Bytes piling up without a whole request (an inline line without its newline) are
/// refused once they pass the cap.
#[test]
fn an_endless_line_is_refused_past_the_cap_part_a() {
    let mut ranges = Vec::new();
    let line = vec![b'a'; 2000];
    assert_eq!(parse_request(&line[..900], 1000, &mut ranges), Ok(None));
    assert!(matches!(
        parse_request(&line, 1000, &mut ranges),
        Err(ProtocolError::TooLarge { .. })
    ));
}

/// Every kind of reply encodes as RESP2 and parses back to itself, cut anywhere or not.
#[test]
fn replies_encode_and_parse_back_part_a() {
    let cases: Vec<(Reply, &[u8])> = vec![
        (Reply::Simple("OK".into()), b"+OK\r\n"),
        (Reply::Error("ERR no".into()), b"-ERR no\r\n"),
        (Reply::Integer(-42), b":-42\r\n"),
        (Reply::Bulk(b"a\r\nb".to_vec()), b"$4\r\na\r\nb\r\n"),
        (Reply::Nil, b"$-1\r\n"),
        (
            Reply::Array(vec![Reply::Integer(1), Reply::Bulk(b"x".to_vec())]),
            b"*2\r\n:1\r\n$1\r\nx\r\n",
        ),
    ];
    for (reply, wire) in cases {
        let mut out = Vec::new();
        reply.encode(&mut out);
        testkit::assert_same_bytes(&format!("{reply:?}.encode"), wire, &out);
        for k in 0..wire.len() {
            assert_eq!(Reply::parse(&wire[..k]), Ok(None), "{k} bytes of {reply:?}");
        }
        assert_eq!(Reply::parse(wire), Ok(Some((reply, wire.len()))));
    }
}
