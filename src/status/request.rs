//! What callers hand the status stream, checked: the streamer's options, which buffered events
//! a new listener sees first, and the progress and SSE frames a page emits itself. The web
//! layer reads JS values into these serde types; every rule about them is here.

use std::rc::Rc;

use serde::Deserialize;

use super::sse::{self, Frame};
use super::{DEFAULT_REPLAY_CAPACITY, EventKind, MAX_REPLAY_CAPACITY, Phase, Progress, StatusEvent, StatusStream};
use crate::input::{self, InputError, InputKind};

/// A consumer of `eventStream()` this many frames behind is cut off with an error rather than
/// buffered without bound.
pub const MAX_STREAM_BACKLOG: u32 = 4096;

/// Whether a stream whose queue reports `desired_size` (a `ReadableStream` controller's
/// `desiredSize`: negative once the reader is behind; `None` once errored) is more than
/// [`MAX_STREAM_BACKLOG`] frames behind and must be disconnected.
pub fn over_backlog(desired_size: Option<f64>) -> bool {
    desired_size.is_some_and(|d| d < -f64::from(MAX_STREAM_BACKLOG))
}

/// The error a disconnected stream's reader gets.
pub fn backlog_message() -> String {
    format!(
        "The event stream's reader fell more than {MAX_STREAM_BACKLOG} events behind and was disconnected; read it \
         continuously or cancel it."
    )
}

/// The options of a new streamer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamerOptions {
    pub buffer_size: Option<f64>,
}

impl StreamerOptions {
    /// The replay buffer's capacity: `bufferSize` (whole, `1..=MAX_REPLAY_CAPACITY`; fractions
    /// round down) or [`DEFAULT_REPLAY_CAPACITY`].
    pub fn capacity(&self) -> Result<usize, InputError> {
        match self.buffer_size {
            None => Ok(DEFAULT_REPLAY_CAPACITY),
            Some(n) if n.is_finite() && n >= 1.0 && n <= MAX_REPLAY_CAPACITY as f64 => Ok(n as usize),
            Some(n) => {
                Err(InputError::options(format!("`bufferSize` must be between 1 and {MAX_REPLAY_CAPACITY}, got {n}.")))
            }
        }
    }
}

/// Which buffered events a new subscriber or event stream receives first.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayOptions {
    /// The last `replay` events.
    pub replay: Option<f64>,
    /// The events after this id (like SSE's `Last-Event-ID`); wins over `replay`.
    pub last_event_id: Option<f64>,
}

/// A count argument (`n`, `lastEventId`): see [`input::lenient_count`].
pub fn count(value: f64, field: &str) -> Result<u64, InputError> {
    input::lenient_count(value)
        .ok_or_else(|| InputError::argument(format!("`{field}` must be a non-negative number, got {value}.")))
}

impl StatusStream {
    /// The buffered events `options` asks to see first: those after `lastEventId`, else the
    /// last `replay`, else none.
    pub fn backlog(&self, options: &ReplayOptions) -> Result<Vec<Rc<StatusEvent>>, InputError> {
        Ok(match (options.last_event_id, options.replay) {
            (Some(last), _) => self.since(count(last, "lastEventId")?),
            (None, Some(n)) => self.replay(count(n, "replay")? as usize),
            (None, None) => Vec::new(),
        })
    }

    /// `replay(n)`: the last `n` buffered events, all of them without `n`.
    pub fn replay_arg(&self, n: Option<f64>) -> Result<Vec<Rc<StatusEvent>>, InputError> {
        let n = match n {
            Some(n) => count(n, "n")? as usize,
            None => usize::MAX,
        };
        Ok(self.replay(n))
    }
}

/// An event type by name, as `addEventListener` takes it.
pub fn event_kind(name: &str) -> Result<EventKind, InputError> {
    EventKind::parse(name).ok_or_else(|| {
        InputError::new(
            InputKind::EventType,
            format!("Unknown event type {name:?}; expected one of info, error, progress, metrics, token, done."),
        )
    })
}

/// A byte count in event data: a finite, non-negative integer within the safe range.
fn byte_count(value: f64, what: &str, field: &str) -> Result<u64, InputError> {
    input::exact_integer(value).ok_or_else(|| {
        InputError::new(
            InputKind::EventData,
            format!("Invalid {what}: `{field}` must be a non-negative integer, got {value}."),
        )
    })
}

/// A progress event a page emits itself.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProgressInput {
    pub phase: Phase,
    pub loaded: f64,
    pub total: Option<f64>,
}

impl ProgressInput {
    /// The shape named in the error when the object cannot be read.
    pub const SHAPE: &str = "{ phase: 'download' | 'cache' | 'upload' | 'ready', loaded: number, total?: number }";

    /// The progress record, its byte counts checked and its percentage computed.
    pub fn progress(&self) -> Result<Progress, InputError> {
        let loaded = byte_count(self.loaded, "progress", "loaded")?;
        let total = self.total.map(|t| byte_count(t, "progress", "total")).transpose()?;
        Ok(Progress::new(self.phase, loaded, total))
    }
}

/// An SSE frame a page renders with `encodeFrame`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FrameInput {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
    pub retry: Option<f64>,
}

impl FrameInput {
    /// The shape named in the error when the object cannot be read.
    pub const SHAPE: &str = "{ data: string, event?: string, id?: string, retry?: number }";

    /// The frame as written on the wire. Refused when `retry` is not a whole non-negative
    /// number, or `event` or `id` holds a line break (or `id` a NUL).
    pub fn encode(self) -> Result<String, InputError> {
        let retry = self.retry.map(|r| byte_count(r, "SSE frame", "retry")).transpose()?;
        sse::encode(&Frame { event: self.event, id: self.id, data: self.data, retry })
            .map_err(|e| InputError::new(InputKind::SseFrame, format!("{e}.")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Recorder, StatusStream};

    fn stream_with(n: u64, capacity: usize) -> StatusStream {
        let stream = StatusStream::new(Box::new(Recorder::new()), capacity, || 0.0);
        for i in 0..n {
            stream.info(format!("e{i}"), None);
        }
        stream
    }

    fn ids(events: Vec<Rc<StatusEvent>>) -> Vec<u64> {
        events.iter().map(|e| e.id).collect()
    }

    #[test]
    fn the_buffer_size_is_checked() {
        assert_eq!(StreamerOptions::default().capacity(), Ok(DEFAULT_REPLAY_CAPACITY));
        assert_eq!(StreamerOptions { buffer_size: Some(8.7) }.capacity(), Ok(8));
        assert_eq!(StreamerOptions { buffer_size: Some(65_536.0) }.capacity(), Ok(MAX_REPLAY_CAPACITY));
        for bad in [0.0, 0.5, -1.0, 65_537.0, f64::NAN, f64::INFINITY] {
            let e = StreamerOptions { buffer_size: Some(bad) }.capacity().unwrap_err();
            assert_eq!(e.kind, InputKind::Options, "{bad}");
        }
        let e = StreamerOptions { buffer_size: Some(0.0) }.capacity().unwrap_err();
        assert_eq!(e.message, "`bufferSize` must be between 1 and 65536, got 0.");
    }

    #[test]
    fn the_backlog_is_after_the_last_id_else_the_last_n_else_nothing() {
        let stream = stream_with(10, 4);
        let pick = |replay, last_event_id| stream.backlog(&ReplayOptions { replay, last_event_id }).map(ids);
        assert_eq!(pick(None, None), Ok(vec![]));
        assert_eq!(pick(Some(2.0), None), Ok(vec![9, 10]));
        assert_eq!(pick(Some(99.0), None), Ok(vec![7, 8, 9, 10]), "only what the buffer holds");
        assert_eq!(pick(Some(1.0), Some(8.0)), Ok(vec![9, 10]), "lastEventId wins");
        assert_eq!(pick(None, Some(2.0)), Ok(vec![7, 8, 9, 10]), "older events are gone");
        assert_eq!(pick(None, Some(1e300)), Ok(vec![]));
        assert_eq!(pick(Some(1.9), None), Ok(vec![10]), "fractions round down");
        let e = pick(None, Some(-1.0)).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (InputKind::Argument, "`lastEventId` must be a non-negative number, got -1.")
        );
        assert_eq!(pick(Some(f64::NAN), None).unwrap_err().message, "`replay` must be a non-negative number, got NaN.");
    }

    #[test]
    fn replay_without_n_is_everything() {
        let stream = stream_with(3, 8);
        assert_eq!(stream.replay_arg(None).map(ids), Ok(vec![1, 2, 3]));
        assert_eq!(stream.replay_arg(Some(1.0)).map(ids), Ok(vec![3]));
        assert_eq!(stream.replay_arg(Some(-2.0)).unwrap_err().message, "`n` must be a non-negative number, got -2.");
    }

    #[test]
    fn a_stream_more_than_4096_frames_behind_is_disconnected() {
        assert!(!over_backlog(None), "an errored stream is removed by its enqueue, not here");
        assert!(!over_backlog(Some(1.0)));
        assert!(!over_backlog(Some(-4096.0)));
        assert!(over_backlog(Some(-4097.0)));
        assert!(backlog_message().contains("more than 4096 events behind"));
    }

    #[test]
    fn event_types_are_named() {
        assert_eq!(event_kind("token"), Ok(EventKind::Token));
        let e = event_kind("tokens").unwrap_err();
        assert_eq!(e.kind, InputKind::EventType);
        assert_eq!(e.kind.code().as_str(), "UNKNOWN_EVENT_TYPE");
        assert!(e.message.starts_with("Unknown event type \"tokens\""));
    }

    #[test]
    fn progress_byte_counts_are_checked_and_the_percentage_computed() {
        let input = |loaded, total| ProgressInput { phase: Phase::Download, loaded, total };
        assert_eq!(input(50.0, Some(200.0)).progress(), Ok(Progress::new(Phase::Download, 50, Some(200))));
        assert_eq!(input(50.0, Some(200.0)).progress().unwrap().percent, Some(25.0));
        assert_eq!(input(7.0, None).progress().unwrap().percent, None);
        let e = input(1.5, None).progress().unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (InputKind::EventData, "Invalid progress: `loaded` must be a non-negative integer, got 1.5.")
        );
        assert!(input(1.0, Some(-1.0)).progress().unwrap_err().message.contains("`total`"));
        let parsed: ProgressInput = serde_json::from_str(r#"{"phase":"upload","loaded":3}"#).unwrap();
        assert_eq!(parsed, ProgressInput { phase: Phase::Upload, loaded: 3.0, total: None });
    }

    #[test]
    fn frames_are_checked_before_they_are_written() {
        let frame =
            |id: Option<&str>, retry| FrameInput { event: None, id: id.map(str::to_owned), data: "a\nb".into(), retry };
        assert_eq!(frame(Some("7"), Some(1000.0)).encode(), Ok("id: 7\nretry: 1000\ndata: a\ndata: b\n\n".to_owned()));
        let e = frame(Some("1\n2"), None).encode().unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (InputKind::SseFrame, "the SSE `id:` field cannot contain a line break.")
        );
        let e = frame(None, Some(-5.0)).encode().unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (InputKind::EventData, "Invalid SSE frame: `retry` must be a non-negative integer, got -5.")
        );
    }
}
