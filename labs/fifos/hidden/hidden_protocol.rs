//! Hidden edge cases of part A: strict parsing, boundaries, and a decoder that survives
//! anything.

use fifos::protocol::{BadRequest, Decoder, MAX_LINE, Rejected, Reply, Request, parse_request};
use rstest::rstest;

/// Only `<digits> <digits>` is a request: no sign, no other whitespace.
#[rstest]
#[case::plus_sign(b"412 +5", Some(412), BadRequest::BadCount)]
#[case::plus_pid(b"+412 5", None, BadRequest::BadPid)]
#[case::leading_space(b" 412 5", None, BadRequest::Malformed)]
#[case::trailing_space(b"412 5 ", Some(412), BadRequest::Malformed)]
#[case::two_spaces(b"412  5", Some(412), BadRequest::Malformed)]
#[case::tab(b"412\t5", None, BadRequest::Malformed)]
#[case::carriage_return(b"412 5\r", Some(412), BadRequest::BadCount)]
#[case::decimal(b"412 5.0", Some(412), BadRequest::BadCount)]
#[case::huge_count(b"412 99999999999999999999999", Some(412), BadRequest::BadCount)]
#[case::huge_pid(b"99999999999999999999999 5", None, BadRequest::BadPid)]
#[case::negative_pid(b"-412 5", None, BadRequest::BadPid)]
#[case::not_utf8(b"\xff\xfe 5", None, BadRequest::BadPid)]
fn strict_parsing_hidden(
    #[case] line: &[u8],
    #[case] pid: Option<u32>,
    #[case] reason: BadRequest,
) {
    assert_eq!(
        parse_request(line),
        Err(Rejected { pid, reason }),
        "{:?}",
        String::from_utf8_lossy(line)
    );
}

/// The boundaries of count are inclusive.
#[rstest]
#[case::one(1)]
#[case::max(1_000_000)]
fn count_bounds_hidden(#[case] count: u64) {
    let line = format!("7 {count}");
    assert_eq!(
        parse_request(line.as_bytes()),
        Ok(Request { pid: 7, count })
    );
}

/// A request survives its trip through the wire.
#[test]
fn request_round_trip_hidden() {
    for req in [
        Request { pid: 1, count: 1 },
        Request {
            pid: 2_147_483_647,
            count: 1_000_000,
        },
    ] {
        let line = req.to_line();
        assert!(line.len() < MAX_LINE);
        assert_eq!(
            parse_request(line.trim_end_matches('\n').as_bytes()),
            Ok(req)
        );
    }
}

/// `error ` with an empty reason is still an error reply; a start with a sign is not a reply.
#[test]
fn reply_edges_hidden() {
    assert_eq!(Reply::parse(b"error "), Some(Reply::Error(String::new())));
    assert_eq!(Reply::parse(b"+5"), None);
    assert_eq!(Reply::parse(b"5 "), None);
}

/// Fed one byte at a time, the decoder finds the same lines.
#[test]
fn decoder_byte_by_byte_hidden() {
    let stream = b"1 2\n\n3 0\n4 5\n";
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for b in stream {
        out.extend(d.feed(std::slice::from_ref(b)));
    }
    let mut whole = Decoder::new();
    assert_eq!(out, whole.feed(stream));
    assert_eq!(out.len(), 4);
}

/// A line of MAX_LINE - 1 bytes is judged on its content; one byte more is too long.
#[test]
fn decoder_line_limit_hidden() {
    let mut d = Decoder::new();
    let mut fits = b"5 ".to_vec();
    fits.resize(MAX_LINE - 1, b'1');
    fits.push(b'\n');
    assert_eq!(
        d.feed(&fits),
        [Err(Rejected {
            pid: Some(5),
            reason: BadRequest::BadCount
        })]
    );
    let mut long = b"5 ".to_vec();
    long.resize(MAX_LINE, b'1');
    long.push(b'\n');
    assert_eq!(
        d.feed(&long),
        [Err(Rejected {
            pid: Some(5),
            reason: BadRequest::TooLong
        })]
    );
}

/// A megabyte without a newline neither grows memory without bound nor loses the next line.
#[test]
fn decoder_endless_line_hidden() {
    let mut d = Decoder::new();
    for _ in 0..256 {
        assert_eq!(d.feed(&[b'x'; 4096]), []);
    }
    assert_eq!(
        d.feed(b"\n6 6\n"),
        [
            Err(Rejected {
                pid: None,
                reason: BadRequest::TooLong
            }),
            Ok(Request { pid: 6, count: 6 })
        ]
    );
}
