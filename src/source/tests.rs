use futures::executor::block_on;

use super::*;
use crate::status::{Payload, Recorder};

fn entry(key: &str, sha256: Option<&str>, file_bytes: u64) -> CatalogEntry {
    CatalogEntry {
        key: key.to_owned(),
        url: format!("/models/{key}.gguf"),
        sha256: sha256.map(str::to_owned),
        arch: "llama".to_owned(),
        quant: "Q4_0".to_owned(),
        file_bytes,
        context_length: 4096,
        description: String::new(),
        required_bytes: None,
    }
}

#[test]
fn throttle_admits_each_percent_once_and_the_end_once() {
    let mut t = Throttle::default();
    let admitted: Vec<u64> =
        [0, 1, 5, 10, 15, 20, 20, 999, 1000, 1000].into_iter().filter(|&n| t.admit(n, Some(1000))).collect();
    assert_eq!(admitted, [0, 10, 20, 999, 1000]);
}

#[test]
fn throttle_without_a_total_admits_once_per_mib() {
    let mut t = Throttle::default();
    let mib = 1 << 20;
    let admitted: Vec<u64> = [1, 2, mib - 1, mib, mib + 7, 3 * mib].into_iter().filter(|&n| t.admit(n, None)).collect();
    assert_eq!(admitted, [1, mib, 3 * mib]);
    // A zero total is an unknown one, never a division by zero.
    assert!(Throttle::default().admit(5, Some(0)));
}

#[test]
fn http_headers_parse_and_format() {
    assert_eq!(range_header(&(0..1024)), "bytes=0-1023");
    assert_eq!(range_header(&(10..11)), "bytes=10-10");
    assert_eq!(content_range_total("bytes 0-1023/4096"), Some(4096));
    assert_eq!(content_range_total("bytes 0-1023/*"), None);
    assert_eq!(content_range_total(""), None);
    assert_eq!(content_length(" 42 "), Some(42));
    assert_eq!(content_length("-1"), None);
}

#[test]
fn a_body_shorter_or_longer_than_announced_is_truncated() {
    assert_eq!(check_complete("u", Some(10), 10), Ok(()));
    assert_eq!(check_complete("u", None, 3), Ok(()));
    assert_eq!(
        check_complete("u", Some(10), 4),
        Err(SourceError::Truncated { url: "u".into(), expected: 10, received: 4 })
    );
}

#[test]
fn source_errors_carry_their_code_and_fields() {
    let http = SourceError::Http { url: "/m.gguf".into(), status: 404, status_text: "Not Found".into() };
    assert_eq!(http.code(), ErrorCode::HttpStatus);
    assert_eq!(http.code().class(), crate::error::ErrorClass::Download);
    assert_eq!(http.details(), vec![("url", Detail::Text("/m.gguf".into())), ("status", Detail::Number(404.0))]);
    assert!(http.message().contains("HTTP 404 Not Found."));
    let offline = SourceError::Network { url: "/m".into(), detail: "TypeError".into() };
    assert_eq!(offline.details()[1], ("status", Detail::Number(0.0)));
    let cut = SourceError::Truncated { url: "/m".into(), expected: 9, received: 3 };
    assert_eq!(cut.code(), ErrorCode::TruncatedBody);
    assert_eq!(cut.details()[1..], [("expectedBytes", Detail::Number(9.0)), ("receivedBytes", Detail::Number(3.0))]);
    assert_eq!(SourceError::Aborted { url: "/m".into() }.code().class(), crate::error::ErrorClass::Cancelled);
    let big = SourceError::too_large("/m", Some(5_000_000_000));
    assert_eq!(big.code(), ErrorCode::ReadFailed);
    assert!(big.to_string().contains("5000000000 bytes, too large"), "{big}");
    assert!(SourceError::too_large("/m", None).to_string().contains("larger than one browser buffer"));
}

#[test]
fn cache_file_names_tell_changed_files_apart_and_give_back_the_key() {
    let hashed = entry("smollm2-135m", Some("0123456789abcdef0123456789abcdef"), 7);
    assert_eq!(cache_file_name(&hashed), "smollm2-135m-0123456789abcdef.gguf");
    assert_eq!(cache_file_name(&entry("tiny", None, 1234)), "tiny-1234.gguf");
    // A short hash is used whole rather than cut out of bounds.
    assert_eq!(cache_file_name(&entry("tiny", Some("abc"), 1)), "tiny-abc.gguf");
    assert_eq!(cache_key_of("smollm2-135m-0123456789abcdef.gguf"), "smollm2-135m");
    assert_eq!(cache_key_of("plain.gguf"), "plain.gguf");
}

#[test]
fn reads_outside_the_source_and_refused_ranges_are_read_errors() {
    assert_eq!(SourceError::check_range(&(0..10), Some(10)), Ok(()));
    assert_eq!(SourceError::check_range(&(5..20), None), Ok(()));
    let outside = SourceError::check_range(&(4..11), Some(10)).unwrap_err();
    assert_eq!(outside, SourceError::Read { detail: "bytes 4..11 are outside the 10-byte file".into() });
    assert!(SourceError::check_range(&Range { start: 6, end: 5 }, Some(10)).is_err());
    assert!(SourceError::no_ranges("/m", None).to_string().contains("/m does not support range requests"));
    assert!(
        SourceError::no_ranges("/m", Some(200)).to_string().contains("stopped honouring range requests (HTTP 200)")
    );
    assert_eq!(check_fits("/m", Some(10), 10), Ok(()));
    assert_eq!(check_fits("/m", None, 10), Ok(()));
    assert_eq!(check_fits("/m", Some(11), 10), Err(SourceError::too_large("/m", Some(11))));
}

/// A body of `chunks` announcing `announced`, failing with `error` after them when given.
struct Pieces {
    chunks: std::vec::IntoIter<Vec<u8>>,
    announced: Option<u64>,
    error: Option<SourceError>,
    cancelled: bool,
}

fn pieces(chunks: &[&[u8]], announced: Option<u64>) -> Pieces {
    let chunks: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
    Pieces { chunks: chunks.into_iter(), announced, error: None, cancelled: false }
}

impl Body for Pieces {
    type Chunk = Vec<u8>;

    fn announced_len(&self) -> Option<u64> {
        self.announced
    }

    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        match self.chunks.next() {
            Some(chunk) => Ok(Some(chunk)),
            None => self.error.take().map_or(Ok(None), Err),
        }
    }

    fn cancel(&mut self) {
        self.cancelled = true;
    }
}

/// What streaming a body came to: the result, the chunks taken with their offsets, and the
/// progress heard.
type Streamed = (Result<u64, SourceError>, Vec<(u64, Vec<u8>)>, Vec<u64>);

/// Streams `body` into a buffer.
fn stream(body: &mut Pieces, limit: u64) -> Streamed {
    let mut taken = Vec::new();
    let heard = RefCell::new(Vec::new());
    let take = async |chunk: Vec<u8>, at| {
        taken.push((at, chunk));
        Ok::<_, SourceError>(())
    };
    let result = block_on(stream_body("/m", body, limit, take, &|n| heard.borrow_mut().push(n)));
    (result, taken, heard.into_inner())
}

#[test]
fn a_body_is_streamed_chunk_by_chunk_with_offsets_and_progress() {
    let mut body = pieces(&[b"abc", b"", b"defg"], Some(7));
    let (result, taken, heard) = stream(&mut body, u64::MAX);
    assert_eq!(result, Ok(7));
    assert_eq!(taken, [(0, b"abc".to_vec()), (3, Vec::new()), (3, b"defg".to_vec())]);
    assert_eq!(heard, [3, 3, 7]);
    assert!(!body.cancelled);
    // Without an announced length any length is whole.
    assert_eq!(stream(&mut pieces(&[b"ab"], None), u64::MAX).0, Ok(2));
}

#[test]
fn a_body_longer_than_announced_or_the_limit_is_cancelled_before_the_excess_is_taken() {
    let mut body = pieces(&[b"abc", b"defg"], Some(5));
    let (result, taken, heard) = stream(&mut body, u64::MAX);
    assert_eq!(result, Err(SourceError::overlong("/m", 5)));
    assert_eq!((taken.len(), heard, body.cancelled), (1, vec![3], true));
    let mut body = pieces(&[b"abc", b"defg"], None);
    let (result, taken, _) = stream(&mut body, 6);
    assert_eq!(result, Err(SourceError::too_large("/m", None)));
    assert_eq!((taken.len(), body.cancelled), (1, true));
    let mut body = pieces(&[b"abc"], Some(7));
    let (result, taken, _) = stream(&mut body, 6);
    assert_eq!(result, Err(SourceError::too_large("/m", Some(7))));
    assert_eq!((taken.len(), body.cancelled, body.chunks.len()), (0, true, 1));
}

#[test]
fn a_short_body_is_truncated_and_read_errors_pass_through() {
    let (result, ..) = stream(&mut pieces(&[b"abc"], Some(10)), u64::MAX);
    assert_eq!(result, Err(SourceError::Truncated { url: "/m".into(), expected: 10, received: 3 }));
    let mut body = pieces(&[b"abc"], Some(10));
    body.error = Some(SourceError::Aborted { url: "/m".into() });
    assert_eq!(stream(&mut body, u64::MAX).0, Err(SourceError::Aborted { url: "/m".into() }));
}

#[test]
fn a_failing_take_cancels_the_body() {
    let mut body = pieces(&[b"abc", b"def"], Some(6));
    let take = async |_: Vec<u8>, at| if at > 0 { Err(SourceError::Read { detail: "disk".into() }) } else { Ok(()) };
    let result = block_on(stream_body("/m", &mut body, u64::MAX, take, &|_| {}));
    assert_eq!(result, Err(SourceError::Read { detail: "disk".into() }));
    assert!(body.cancelled);
}

/// The file `0, 1, 2, ...` (bytes mod 251) from offset `start` on, in chunks of `sizes`.
fn file_body(start: u64, sizes: &[usize]) -> Pieces {
    let mut at = start;
    let chunks: Vec<Vec<u8>> = sizes
        .iter()
        .map(|&n| {
            let chunk = (at..at + n as u64).map(|i| (i % 251) as u8).collect();
            at += n as u64;
            chunk
        })
        .collect();
    Pieces { chunks: chunks.into_iter(), announced: None, error: None, cancelled: false }
}

fn file_bytes(range: Range<u64>) -> Vec<u8> {
    range.map(|i| (i % 251) as u8).collect()
}

#[test]
fn a_cursor_serves_increasing_ranges_across_chunk_edges_from_one_body() {
    let mut cursor = Cursor::new(file_body(100, &[5, 0, 7, 3, 20]), 100);
    let heard = RefCell::new(Vec::new());
    // Within a chunk, across three, with a gap (dropped), and an empty range.
    for range in [100..103, 103..111, 113..118, 118..118, 120..135] {
        assert!(cursor.serves(&range), "{range:?}");
        heard.borrow_mut().clear();
        let got = block_on(cursor.read("/m", range.clone(), &|n| heard.borrow_mut().push(n)));
        assert_eq!(got, Ok(file_bytes(range.clone())), "{range:?}");
        let want = range.end - range.start;
        assert_eq!(heard.borrow().last().copied().unwrap_or(0), want, "{range:?}");
    }
    // Behind it, or further ahead than a request costs: not served, and a read behind is refused.
    assert!(!cursor.serves(&(130..131)));
    assert!(!cursor.serves(&(135 + SKIP_BYTES + 1..135 + SKIP_BYTES + 2)));
    assert!(matches!(block_on(cursor.read("/m", 130..131, &|_| {})), Err(SourceError::Read { .. })));
    // The body ends before the range does.
    let short = block_on(cursor.read("/m", 135..140, &|_| {}));
    assert_eq!(short, Err(SourceError::Truncated { url: "/m".into(), expected: 5, received: 0 }));
    cursor.cancel();
    assert!(cursor.body.cancelled);
}

#[test]
fn a_cursor_passes_the_bodys_errors_through() {
    let mut body = file_body(0, &[4]);
    body.error = Some(SourceError::Aborted { url: "/m".into() });
    let mut cursor = Cursor::new(body, 0);
    assert_eq!(block_on(cursor.read("/m", 0..2, &|_| {})), Ok(file_bytes(0..2)));
    assert_eq!(block_on(cursor.read("/m", 2..9, &|_| {})), Err(SourceError::Aborted { url: "/m".into() }));
}

/// A callback that keeps what it hears.
#[derive(Default)]
struct Heard(RefCell<Vec<(u64, Option<u64>)>>);

impl ProgressCallback for &Heard {
    fn call(&self, progress: &Progress) {
        assert_eq!(progress.phase, Phase::Download);
        self.0.borrow_mut().push((progress.loaded, progress.total));
    }
}

#[test]
fn progress_reaches_the_callback_throttled_and_offset() {
    let heard = Heard::default();
    let reporter = ProgressReporter::new(Some(&heard));
    for n in [0, 5, 10, 500, 1000, 1000] {
        reporter.report(n, Some(1000));
    }
    assert_eq!(*heard.0.borrow(), [(0, Some(1000)), (10, Some(1000)), (500, Some(1000)), (1000, Some(1000))]);
    let heard = Heard::default();
    let reporter = ProgressReporter::new(Some(&heard));
    let hook = ProgressReporter::hook(Some(&reporter), 100, Some(200));
    hook(0);
    hook(100);
    assert_eq!(*heard.0.borrow(), [(100, Some(200)), (200, Some(200))]);
    // No reporter: nothing to call.
    ProgressReporter::<&Heard>::hook(None, 0, None)(5);
}

#[test]
fn progress_to_a_status_stream_is_tagged_with_the_model_key() {
    let recorder = Recorder::new();
    let status = Rc::new(StatusStream::with_sink(Box::new(recorder.clone())));
    let reporter = ProgressReporter::<&Heard>::to_status(status, "tiny");
    for n in [0, 0, 50] {
        reporter.report(n, Some(50));
    }
    let events = recorder.events();
    let loaded: Vec<u64> = events
        .iter()
        .map(|e| match &e.payload {
            Payload::Progress(p) => p.loaded,
            other => panic!("not progress: {other:?}"),
        })
        .collect();
    assert_eq!(loaded, [0, 50]);
    assert!(events.iter().all(|e| e.model_key.as_deref() == Some("tiny")));
}
