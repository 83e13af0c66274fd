//! The status stream: every step the library takes, as ordered, typed events.
//!
//! [`StatusStream`] numbers and timestamps events, keeps the last few in a bounded
//! replay buffer (like SSE's `Last-Event-ID`), and hands each one to a
//! [`StatusSink`]. The browser layer's sink dispatches DOM `CustomEvent`s on an
//! `EventTarget`, keeping its listeners in a [`hub::Hub`]; native tests use [`Recorder`].
//! [`sse`] renders events as `text/event-stream` frames and parses them back; [`request`]
//! checks what callers hand the stream (options, replay requests, progress, frames).

mod event;
pub mod hub;
pub mod request;
pub mod sse;

pub use event::{
    DoneStats, ErrorInfo, EventKind, Metrics, Payload, Phase, Progress, StatusEvent, StopReason, TokenEvent,
};

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

/// Where events go once numbered. Implementations must tolerate re-entrancy: a
/// listener may emit another event while `emit` is running.
pub trait StatusSink {
    fn emit(&self, event: &Rc<StatusEvent>);
}

/// Events kept for late subscribers unless configured otherwise.
pub const DEFAULT_REPLAY_CAPACITY: usize = 256;
/// The largest replay buffer accepted; bigger requests are an error, not an
/// unbounded allocation.
pub const MAX_REPLAY_CAPACITY: usize = 65_536;

/// Numbers, timestamps, buffers and forwards status events.
pub struct StatusStream {
    next_id: Cell<u64>,
    buffer: RefCell<VecDeque<Rc<StatusEvent>>>,
    capacity: usize,
    sink: Box<dyn StatusSink>,
    clock: fn() -> f64,
}

impl StatusStream {
    /// `capacity` is clamped to `1..=MAX_REPLAY_CAPACITY`; `clock` returns
    /// milliseconds since the Unix epoch.
    pub fn new(sink: Box<dyn StatusSink>, capacity: usize, clock: fn() -> f64) -> Self {
        let capacity = capacity.clamp(1, MAX_REPLAY_CAPACITY);
        StatusStream {
            next_id: Cell::new(1),
            buffer: RefCell::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity,
            sink,
            clock,
        }
    }

    /// A stream with the system clock, for native code and tests.
    pub fn with_sink(sink: Box<dyn StatusSink>) -> Self {
        StatusStream::new(sink, DEFAULT_REPLAY_CAPACITY, system_clock_ms)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Numbers the payload, stores it for replay and forwards it. Returns the id.
    pub fn emit(&self, payload: Payload, model_key: Option<&str>) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let event = Rc::new(StatusEvent {
            payload,
            id,
            // Whole milliseconds, like `Date.now()`; a clock before 1970 reads 0.
            timestamp: (self.clock)().max(0.0) as u64,
            model_key: model_key.map(str::to_owned),
        });
        {
            let mut buffer = self.buffer.borrow_mut();
            if buffer.len() == self.capacity {
                buffer.pop_front();
            }
            buffer.push_back(Rc::clone(&event));
        } // The borrow ends before the sink runs: listeners may emit in turn.
        self.sink.emit(&event);
        id
    }

    pub fn info(&self, message: impl Into<String>, model_key: Option<&str>) -> u64 {
        self.emit(Payload::Info(message.into()), model_key)
    }

    pub fn error(&self, error: ErrorInfo, model_key: Option<&str>) -> u64 {
        self.emit(Payload::Error(error), model_key)
    }

    pub fn progress(&self, progress: Progress, model_key: Option<&str>) -> u64 {
        self.emit(Payload::Progress(progress), model_key)
    }

    pub fn metrics(&self, metrics: Metrics, model_key: Option<&str>) -> u64 {
        self.emit(Payload::Metrics(metrics), model_key)
    }

    pub fn token(&self, token: TokenEvent, model_key: Option<&str>) -> u64 {
        self.emit(Payload::Token(token), model_key)
    }

    pub fn done(&self, stats: DoneStats, model_key: Option<&str>) -> u64 {
        self.emit(Payload::Done(stats), model_key)
    }

    /// The last `n` buffered events, oldest first.
    pub fn replay(&self, n: usize) -> Vec<Rc<StatusEvent>> {
        let buffer = self.buffer.borrow();
        let skip = buffer.len().saturating_sub(n);
        buffer.iter().skip(skip).cloned().collect()
    }

    /// The buffered events with an id greater than `last_event_id`, oldest first.
    /// Events older than the buffer are gone; compare the first id returned with
    /// `last_event_id + 1` to detect the gap.
    pub fn since(&self, last_event_id: u64) -> Vec<Rc<StatusEvent>> {
        let buffer = self.buffer.borrow();
        // Ids are consecutive in the buffer, so the start index is arithmetic.
        let Some(first) = buffer.front().map(|e| e.id) else { return Vec::new() };
        let skip = last_event_id.saturating_add(1).saturating_sub(first) as usize;
        buffer.iter().skip(skip).cloned().collect()
    }

    /// The id the next event will get.
    pub fn next_id(&self) -> u64 {
        self.next_id.get()
    }
}

/// Milliseconds since the Unix epoch from the system clock. On wasm32 without a
/// browser clock this reads 0; the web layer passes `Date.now` instead.
pub fn system_clock_ms() -> f64 {
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    }
    #[cfg(target_arch = "wasm32")]
    {
        0.0
    }
}

/// A sink that keeps every event, for tests and for native callers that poll.
#[derive(Default, Clone)]
pub struct Recorder {
    events: Rc<RefCell<Vec<Rc<StatusEvent>>>>,
}

impl Recorder {
    pub fn new() -> Self {
        Recorder::default()
    }

    pub fn events(&self) -> Vec<Rc<StatusEvent>> {
        self.events.borrow().clone()
    }

    /// The info messages so far, in order: the shape most flow tests assert on.
    pub fn infos(&self) -> Vec<String> {
        self.events
            .borrow()
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Info(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }
}

impl StatusSink for Recorder {
    fn emit(&self, event: &Rc<StatusEvent>) {
        self.events.borrow_mut().push(Rc::clone(event));
    }
}

#[cfg(test)]
mod tests;
