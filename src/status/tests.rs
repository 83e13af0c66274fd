use super::sse::{self, EncodeError, Frame, Parser};
use super::*;

fn stream() -> (StatusStream, Recorder) {
    let recorder = Recorder::new();
    (StatusStream::with_sink(Box::new(recorder.clone())), recorder)
}

#[test]
fn ids_are_monotonic_and_order_is_kept() {
    let (s, rec) = stream();
    s.info("Checking memory for gemma-3-270m...", Some("gemma-3-270m"));
    s.progress(Progress::new(Phase::Download, 50, Some(200)), Some("gemma-3-270m"));
    s.metrics(Metrics { used_bytes: 10, ..Metrics::default() }, None);
    s.info("Model gemma-3-270m loaded successfully.", Some("gemma-3-270m"));
    let events = rec.events();
    assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert_eq!(
        events.iter().map(|e| e.kind()).collect::<Vec<_>>(),
        vec![EventKind::Info, EventKind::Progress, EventKind::Metrics, EventKind::Info]
    );
    assert!(events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    assert_eq!(events[0].model_key.as_deref(), Some("gemma-3-270m"));
    assert_eq!(events[2].model_key, None);
}

#[test]
fn progress_percent_is_derived_and_capped() {
    assert_eq!(Progress::new(Phase::Upload, 50, Some(200)).percent, Some(25.0));
    assert_eq!(Progress::new(Phase::Upload, 300, Some(200)).percent, Some(100.0));
    assert_eq!(Progress::new(Phase::Upload, 0, Some(0)).percent, Some(100.0));
    assert_eq!(Progress::new(Phase::Download, 7, None).percent, None);
}

#[test]
fn detail_json_has_the_documented_shape() {
    let (s, rec) = stream();
    s.progress(Progress::new(Phase::Download, 1, Some(4)), Some("smollm2-135m"));
    let json: serde_json::Value = serde_json::to_value(&*rec.events()[0]).unwrap();
    assert_eq!(json["type"], "progress");
    assert_eq!(json["id"], 1);
    assert_eq!(json["modelKey"], "smollm2-135m");
    assert_eq!(json["data"]["phase"], "download");
    assert_eq!(json["data"]["loaded"], 1);
    assert_eq!(json["data"]["total"], 4);
    assert_eq!(json["data"]["percent"], 25.0);
    assert!(json["timestamp"].as_u64().unwrap() > 1_600_000_000_000, "epoch milliseconds");
    // And it reads back into the same event.
    let back: StatusEvent = serde_json::from_value(json).unwrap();
    assert_eq!(back, *rec.events()[0]);
}

#[test]
fn replay_returns_the_last_n_from_a_bounded_buffer() {
    let recorder = Recorder::new();
    let s = StatusStream::new(Box::new(recorder), 3, system_clock_ms);
    for i in 0..5 {
        s.info(format!("m{i}"), None);
    }
    let ids = |v: Vec<Rc<StatusEvent>>| v.iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(s.replay(2)), vec![4, 5]);
    assert_eq!(ids(s.replay(100)), vec![3, 4, 5], "only the capacity is kept");
    assert_eq!(ids(s.replay(0)), Vec::<u64>::new());
    assert_eq!(ids(s.since(3)), vec![4, 5]);
    assert_eq!(ids(s.since(0)), vec![3, 4, 5], "a gap: 1 and 2 fell out of the buffer");
    assert_eq!(ids(s.since(5)), Vec::<u64>::new());
    assert_eq!(ids(s.since(u64::MAX)), Vec::<u64>::new());
}

#[test]
fn capacity_is_clamped() {
    let s = StatusStream::new(Box::new(Recorder::new()), 0, system_clock_ms);
    assert_eq!(s.capacity(), 1);
    let s = StatusStream::new(Box::new(Recorder::new()), usize::MAX, system_clock_ms);
    assert_eq!(s.capacity(), MAX_REPLAY_CAPACITY);
}

/// A sink whose listener emits into the same stream while being notified.
struct Reentrant {
    stream: RefCell<Option<Rc<StatusStream>>>,
    seen: Rc<RefCell<Vec<u64>>>,
}

impl StatusSink for Rc<Reentrant> {
    fn emit(&self, event: &Rc<StatusEvent>) {
        self.seen.borrow_mut().push(event.id);
        if event.id == 1 {
            let stream = self.stream.borrow().clone();
            stream.unwrap().info("nested", None);
        }
    }
}

#[test]
fn a_listener_may_emit_while_being_notified() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::new(Reentrant { stream: RefCell::new(None), seen: seen.clone() });
    let stream = Rc::new(StatusStream::with_sink(Box::new(sink.clone())));
    *sink.stream.borrow_mut() = Some(stream.clone());
    stream.info("outer", None);
    assert_eq!(*seen.borrow(), vec![1, 2]);
    assert_eq!(stream.replay(10).len(), 2);
    *sink.stream.borrow_mut() = None; // break the cycle
}

fn parse_all(bytes: &[u8]) -> Vec<sse::ParsedEvent> {
    let mut p = Parser::new();
    p.feed(bytes)
}

#[test]
fn sse_frames_round_trip_through_the_spec_parser() {
    let (s, rec) = stream();
    s.info("line one\nline two", Some("k"));
    s.error(ErrorInfo::of(crate::error::ErrorCode::NotEnoughMemory, "Not enough VRAM"), None);
    let wire: String = rec.events().iter().map(|e| sse::encode_event(e)).collect();
    let parsed = parse_all(wire.as_bytes());
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0].event, "info");
    assert_eq!(parsed[0].last_event_id, "1");
    let detail: StatusEvent = serde_json::from_str(&parsed[0].data).unwrap();
    assert_eq!(detail, *rec.events()[0]);
    assert_eq!(parsed[1].event, "error");
    assert_eq!(parsed[1].last_event_id, "2");
}

#[test]
fn multi_line_data_is_split_into_data_fields_and_rejoined() {
    for (data, lines) in [
        ("a\nb\nc", 3),
        ("a\r\nb", 2),
        ("a\rb", 2),
        ("", 1),
        ("trailing\n", 2),
        ("\n\n", 3),
        (" leading space", 1),
        (": not a comment", 1),
    ] {
        let frame = Frame { event: Some("info".into()), id: Some("9".into()), data: data.into(), retry: None };
        let wire = sse::encode(&frame).unwrap();
        assert_eq!(wire.matches("data:").count(), lines, "{data:?} -> {wire:?}");
        let parsed = parse_all(wire.as_bytes());
        assert_eq!(parsed.len(), 1, "{wire:?}");
        // A reader turns every line ending into LF.
        let expected = data.replace("\r\n", "\n").replace('\r', "\n");
        assert_eq!(parsed[0].data, expected);
        assert_eq!(parsed[0].event, "info");
        assert_eq!(parsed[0].last_event_id, "9");
    }
}

#[test]
fn encoder_rejects_fields_that_would_change_meaning() {
    let bad_event = Frame { event: Some("a\nb".into()), ..Frame::default() };
    assert_eq!(sse::encode(&bad_event), Err(EncodeError::LineBreakIn { field: "event" }));
    let bad_id = Frame { id: Some("1\r".into()), ..Frame::default() };
    assert_eq!(sse::encode(&bad_id), Err(EncodeError::LineBreakIn { field: "id" }));
    let nul_id = Frame { id: Some("1\0".into()), ..Frame::default() };
    assert_eq!(sse::encode(&nul_id), Err(EncodeError::NulInId));
}

#[test]
fn parser_follows_the_spec_on_hand_written_streams() {
    // From the spec's examples and edge cases.
    let stream = b"\xEF\xBB\xBF: comment\r\ndata: first\r\ndata:second\r\n\r\nevent: add\rdata\rid: 7\r\rdata: x\nid: 8\0\n\ndata: dropped at EOF";
    let parsed = parse_all(stream);
    assert_eq!(parsed.len(), 3);
    assert_eq!(parsed[0].event, "message");
    assert_eq!(parsed[0].data, "first\nsecond");
    assert_eq!(parsed[1].event, "add");
    assert_eq!(parsed[1].data, "", "a `data` field without colon appends an empty line");
    assert_eq!(parsed[1].last_event_id, "7");
    assert_eq!(parsed[2].last_event_id, "7", "an id with NUL is ignored; the last id persists");
    // An event with no data is not dispatched, but its event type is reset.
    let parsed = parse_all(b"event: x\n\ndata: y\n\n");
    assert_eq!(
        parsed,
        vec![sse::ParsedEvent { event: "message".into(), data: "y".into(), last_event_id: String::new() }]
    );
    let mut p = Parser::new();
    p.feed(b"retry: 1500\nretry: 1x\n\n");
    assert_eq!(p.retry(), Some(1500));
}

#[test]
fn parser_handles_chunks_split_anywhere() {
    let (s, rec) = stream();
    s.info("héllo 🦀\nworld", None);
    s.info("second", None);
    let wire: String = rec.events().iter().map(|e| sse::encode_event(e)).collect();
    let wire = format!("\u{FEFF}{}", wire.replace('\n', "\r\n"));
    let whole = parse_all(wire.as_bytes());
    assert_eq!(whole.len(), 2);
    for size in 1..8 {
        let mut p = Parser::new();
        let mut got = Vec::new();
        for chunk in wire.as_bytes().chunks(size) {
            got.extend(p.feed(chunk));
        }
        assert_eq!(got, whole, "chunk size {size}");
    }
}
