//! `text/event-stream` framing, as specified by the HTML Living Standard,
//! "Server-sent events" § "Parsing an event stream" and "Interpreting an event
//! stream".
//!
//! [`encode`] writes one frame; [`Parser`] is an incremental, spec-following
//! reader used by the tests to prove that what we write is what an `EventSource`
//! would read, including multi-line data and every line-ending style.

use std::fmt;

use super::StatusEvent;

/// One event as it travels on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    /// The `event:` field; `None` means the default type, `message`.
    pub event: Option<String>,
    /// The `id:` field.
    pub id: Option<String>,
    /// The payload; may contain line breaks, which become several `data:` lines.
    pub data: String,
    /// The `retry:` field, in milliseconds.
    pub retry: Option<u64>,
}

/// A field value that cannot be written without changing its meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// `event:` and `id:` values end at the first line break, so they may not hold one.
    LineBreakIn { field: &'static str },
    /// A reader ignores an `id:` that contains U+0000.
    NulInId,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::LineBreakIn { field } => {
                write!(f, "the SSE `{field}:` field cannot contain a line break")
            }
            EncodeError::NulInId => write!(f, "the SSE `id:` field cannot contain U+0000"),
        }
    }
}

impl std::error::Error for EncodeError {}

fn has_line_break(s: &str) -> bool {
    s.contains(['\n', '\r'])
}

/// Writes one frame, terminated by the blank line that dispatches it.
///
/// Data is split on CRLF, LF and CR — the three line endings a reader accepts — so
/// each line becomes its own `data:` field and the reader joins them with LF. A
/// value that starts with a space gets the single space a reader strips.
pub fn encode(frame: &Frame) -> Result<String, EncodeError> {
    let mut out = String::with_capacity(frame.data.len() + 48);
    if let Some(event) = &frame.event {
        if has_line_break(event) {
            return Err(EncodeError::LineBreakIn { field: "event" });
        }
        push_field(&mut out, "event", event);
    }
    if let Some(id) = &frame.id {
        if has_line_break(id) {
            return Err(EncodeError::LineBreakIn { field: "id" });
        }
        if id.contains('\0') {
            return Err(EncodeError::NulInId);
        }
        push_field(&mut out, "id", id);
    }
    if let Some(retry) = frame.retry {
        push_field(&mut out, "retry", &retry.to_string());
    }
    for line in split_lines(&frame.data) {
        push_field(&mut out, "data", line);
    }
    out.push('\n');
    Ok(out)
}

fn push_field(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push(':');
    // Always write the separating space: the reader removes exactly one, so a
    // value's own leading space survives.
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// Splits on CRLF, LF or CR; an empty string is one empty line (an event with
/// empty data still needs one `data:` field to be dispatched).
fn split_lines(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' => {
                lines.push(&s[start..i]);
                i += if bytes.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
                start = i;
            }
            b'\n' => {
                lines.push(&s[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    lines.push(&s[start..]);
    lines
}

/// The frame of a status event: its kind as `event:`, its id as `id:`, and its
/// JSON detail as `data:`.
pub fn frame_for(event: &StatusEvent) -> Frame {
    Frame {
        event: Some(event.kind().as_str().to_owned()),
        id: Some(event.id.to_string()),
        // Serialising our own plain-data types cannot fail: no maps with non-string
        // keys, no custom serialisers.
        data: serde_json::to_string(event).unwrap_or_default(),
        retry: None,
    }
}

/// `encode(frame_for(event))`; our kinds and numeric ids never need escaping.
pub fn encode_event(event: &StatusEvent) -> String {
    encode(&frame_for(event)).unwrap_or_default()
}

/// An event as a reader dispatches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEvent {
    /// `message` unless an `event:` field said otherwise.
    pub event: String,
    pub data: String,
    /// The stream's last event id at dispatch time (it persists across events).
    pub last_event_id: String,
}

/// Incremental reader following the spec's algorithm: feed it chunks split
/// anywhere (even inside a CRLF or a UTF-8 sequence) and collect events.
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    /// The previous chunk ended in CR: a leading LF in the next one belongs to it.
    after_cr: bool,
    /// The UTF-8 BOM is stripped once, at the very start of the stream.
    started: bool,
    event_type: String,
    data: String,
    last_event_id: String,
    retry: Option<u64>,
}

impl Parser {
    pub fn new() -> Self {
        Parser::default()
    }

    /// The reconnection time the stream asked for, if any.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Consumes a chunk and returns the events it completed.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Vec<ParsedEvent> {
        let out = Vec::new();
        if !self.started && !chunk.is_empty() {
            // Hold back a possible partial BOM until we can tell.
            let bom = b"\xEF\xBB\xBF";
            let mut probe = std::mem::take(&mut self.line);
            probe.extend_from_slice(chunk);
            if probe.len() < 3 && bom.starts_with(&probe) {
                self.line = probe;
                return out;
            }
            self.started = true;
            let owned = if probe.starts_with(bom) { probe[3..].to_vec() } else { probe };
            return self.feed_started(&owned, out);
        }
        if self.after_cr && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
        }
        self.after_cr = false;
        self.feed_started(chunk, out)
    }

    fn feed_started(&mut self, chunk: &[u8], mut out: Vec<ParsedEvent>) -> Vec<ParsedEvent> {
        let mut i = 0;
        while i < chunk.len() {
            match chunk[i] {
                b'\r' => {
                    self.end_line(&mut out);
                    if chunk.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    } else if i + 1 == chunk.len() {
                        self.after_cr = true;
                    }
                }
                b'\n' => self.end_line(&mut out),
                b => self.line.push(b),
            }
            i += 1;
        }
        out
    }

    fn end_line(&mut self, out: &mut Vec<ParsedEvent>) {
        let raw = std::mem::take(&mut self.line);
        let line = String::from_utf8_lossy(&raw);
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return; // a comment
        }
        let (field, value) = match line.find(':') {
            Some(at) => {
                let value = &line[at + 1..];
                (&line[..at], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (&line[..], ""),
        };
        match field {
            "event" => self.event_type = value.to_owned(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.last_event_id = value.to_owned(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            _ => {} // unknown fields are ignored
        }
    }

    fn dispatch(&mut self, out: &mut Vec<ParsedEvent>) {
        let event_type = std::mem::take(&mut self.event_type);
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the trailing LF the last `data:` line added
        out.push(ParsedEvent {
            event: if event_type.is_empty() { "message".to_owned() } else { event_type },
            data,
            last_event_id: self.last_event_id.clone(),
        });
    }
}

/// A frame that cannot be encoded is the caller's: `InvalidInputError` `INVALID_SSE_FRAME`.
impl crate::error::Coded for EncodeError {
    fn code(&self) -> crate::error::ErrorCode {
        crate::error::ErrorCode::InvalidSseFrame
    }

    fn message(&self) -> String {
        format!("{self}.")
    }
}
