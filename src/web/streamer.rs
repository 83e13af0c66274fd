//! `SseStreamer`: the status stream for JS, backed by a real `EventTarget`.
//!
//! Three ways to listen, all fed by one [`Hub`]:
//! - `subscribe(callback)` — every event, returns an unsubscribe function;
//! - `addEventListener(type, listener)` or `streamer.events` — DOM `CustomEvent`s
//!   whose `detail` is the event;
//! - `eventStream()` — a `ReadableStream` of `text/event-stream` bytes.
//!
//! A listener that throws is reported (like the DOM does, through `reportError`)
//! and never stops the others or the emitter. With nobody listening, an event
//! costs a slot in the replay buffer and nothing on the JS side.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use web_sys::{CustomEvent, CustomEventInit, EventTarget, ReadableStream, ReadableStreamDefaultController};

use super::error::JsError;
use super::types::{ReplayOptionsArg, StreamerOptionsArg};
use crate::status::sse::{self, Frame};
use crate::status::{
    DEFAULT_REPLAY_CAPACITY, DoneStats, ErrorInfo, EventKind, MAX_REPLAY_CAPACITY, Metrics, Phase, Progress,
    StatusEvent, StatusSink, StatusStream, TokenEvent,
};

/// A consumer of `eventStream()` this many frames behind is cut off with an error
/// rather than buffered without bound.
const MAX_STREAM_BACKLOG: f64 = 4096.0;

/// Serialises an event as the JS `detail` object.
fn to_js<T: serde::Serialize + ?Sized>(value: &T) -> Result<JsValue, serde_wasm_bindgen::Error> {
    value.serialize(&serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true))
}

/// Reports an exception thrown by a listener the way the DOM does for event
/// listeners: to the global `reportError` (which fires `window.onerror`), else
/// the console. It is never rethrown.
fn report_listener_error(error: &JsValue) {
    let global = js_sys::global();
    if let Ok(report) = Reflect::get(&global, &JsValue::from_str("reportError"))
        && let Some(report) = report.dyn_ref::<Function>()
        && report.call1(&JsValue::UNDEFINED, error).is_ok()
    {
        return;
    }
    web_sys::console::error_2(&JsValue::from_str("Hearth: a status listener threw:"), error);
}

/// Everyone listening to one stream.
struct Hub {
    target: EventTarget,
    /// Once JS holds the `EventTarget` itself, listeners can be added behind our
    /// back, so every event is dispatched from then on.
    exposed: Cell<bool>,
    /// Listeners added through `SseStreamer.addEventListener`, per type.
    dom_listeners: RefCell<Vec<(EventKind, Function)>>,
    subscribers: RefCell<Vec<(u64, Function)>>,
    streams: RefCell<Vec<(u64, ReadableStreamDefaultController)>>,
    next_handle: Cell<u64>,
}

impl Hub {
    fn handle(&self) -> u64 {
        let h = self.next_handle.get();
        self.next_handle.set(h + 1);
        h
    }

    fn wants_dom(&self, kind: EventKind) -> bool {
        self.exposed.get() || self.dom_listeners.borrow().iter().any(|(k, _)| *k == kind)
    }

    fn dispatch(&self, event: &StatusEvent) {
        let kind = event.kind();
        let dom = self.wants_dom(kind);
        let has_subscribers = !self.subscribers.borrow().is_empty();
        if dom || has_subscribers {
            match to_js(event) {
                Ok(detail) => {
                    if has_subscribers {
                        // A snapshot: callbacks may (un)subscribe while we iterate.
                        let subscribers: Vec<Function> =
                            self.subscribers.borrow().iter().map(|(_, f)| f.clone()).collect();
                        for callback in subscribers {
                            if let Err(e) = callback.call1(&JsValue::UNDEFINED, &detail) {
                                report_listener_error(&e);
                            }
                        }
                    }
                    if dom {
                        self.dispatch_dom(kind, &detail);
                    }
                }
                Err(e) => web_sys::console::error_1(&JsValue::from_str(&format!(
                    "Hearth: status event {} could not be converted for JS: {e}",
                    event.id
                ))),
            }
        }
        if !self.streams.borrow().is_empty() {
            self.enqueue_frame(&sse::encode_event(event));
        }
    }

    fn dispatch_dom(&self, kind: EventKind, detail: &JsValue) {
        let init = CustomEventInit::new();
        init.set_detail(detail);
        match CustomEvent::new_with_event_init_dict(kind.as_str(), &init) {
            // `dispatchEvent` reports listener exceptions itself and returns normally.
            Ok(dom_event) => {
                let _ = self.target.dispatch_event(&dom_event);
            }
            Err(e) => report_listener_error(&e),
        }
    }

    fn enqueue_frame(&self, frame: &str) {
        let streams: Vec<(u64, ReadableStreamDefaultController)> = self.streams.borrow().clone();
        for (handle, controller) in streams {
            if controller.desired_size().is_some_and(|d| d < -MAX_STREAM_BACKLOG) {
                let error = JsError::invalid_input(
                    "STREAM_BACKLOG",
                    format!(
                        "The event stream's reader fell more than {MAX_STREAM_BACKLOG} events behind \
                         and was disconnected; read it continuously or cancel it."
                    ),
                );
                controller.error_with_e(&error.into());
                self.remove_stream(handle);
                continue;
            }
            let bytes = Uint8Array::from(frame.as_bytes());
            if controller.enqueue_with_chunk(&bytes).is_err() {
                // The stream was closed or errored from the reader's side.
                self.remove_stream(handle);
            }
        }
    }

    fn remove_stream(&self, handle: u64) {
        self.streams.borrow_mut().retain(|(h, _)| *h != handle);
    }
}

struct HubSink(Rc<Hub>);

impl StatusSink for HubSink {
    fn emit(&self, event: &Rc<StatusEvent>) {
        self.0.dispatch(event);
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct StreamerOptions {
    buffer_size: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ReplayOptions {
    replay: Option<f64>,
    last_event_id: Option<f64>,
}

#[derive(Deserialize)]
struct ProgressInput {
    phase: Phase,
    loaded: f64,
    total: Option<f64>,
}

#[derive(Deserialize)]
struct FrameInput {
    event: Option<String>,
    id: Option<String>,
    data: String,
    retry: Option<f64>,
}

/// Reads a non-serde field (a function, a signal, an object) from an options bag.
pub(super) fn field(options: &JsValue, name: &str) -> Option<JsValue> {
    if !options.is_object() {
        return None;
    }
    Reflect::get(options, &JsValue::from_str(name)).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

/// Reads an optional options object: `undefined`/`null` mean defaults.
pub(super) fn read_options<T: for<'de> Deserialize<'de> + Default>(
    value: Option<impl Into<JsValue>>,
    what: &str,
) -> Result<T, JsError> {
    let Some(value) = value.map(Into::into).filter(|v| !v.is_undefined() && !v.is_null()) else {
        return Ok(T::default());
    };
    serde_wasm_bindgen::from_value(value.clone())
        .map_err(|e| JsError::invalid_input("INVALID_OPTIONS", format!("Invalid {what}: {e}.")))
}

fn read<T: for<'de> Deserialize<'de>>(value: &JsValue, what: &str, shape: &str) -> Result<T, JsError> {
    serde_wasm_bindgen::from_value(value.clone())
        .map_err(|e| JsError::invalid_input("INVALID_EVENT_DATA", format!("Invalid {what}: {e}. Expected {shape}.")))
}

/// A byte count from JS: a finite, non-negative integer within the safe range.
fn byte_count(value: f64, what: &str, field: &str) -> Result<u64, JsError> {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    if !(value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= MAX_SAFE) {
        return Err(JsError::invalid_input(
            "INVALID_EVENT_DATA",
            format!("Invalid {what}: `{field}` must be a non-negative integer, got {value}."),
        ));
    }
    Ok(value as u64)
}

/// A count from JS (`n`, `lastEventId`): non-negative; fractions round down,
/// and counts past what can exist saturate.
fn count(value: f64, field: &str) -> Result<u64, JsError> {
    if value.is_nan() || value < 0.0 {
        return Err(JsError::invalid_input(
            "INVALID_ARGUMENT",
            format!("`{field}` must be a non-negative number, got {value}."),
        ));
    }
    Ok(if value >= u64::MAX as f64 { u64::MAX } else { value as u64 })
}

/// Renders any thrown value as the error the UI shows.
pub(super) fn error_info(value: &JsValue) -> ErrorInfo {
    let string_prop = |key: &str| Reflect::get(value, &JsValue::from_str(key)).ok().and_then(|v| v.as_string());
    if let Some(message) = value.as_string() {
        return ErrorInfo::new("Error", message);
    }
    if value.is_object() {
        let message = string_prop("message");
        let name = string_prop("name");
        if message.is_some() || value.is_instance_of::<js_sys::Error>() {
            return ErrorInfo {
                name: name.unwrap_or_else(|| "Error".to_owned()),
                message: message.unwrap_or_default(),
                stack: string_prop("stack"),
                code: string_prop("code"),
            };
        }
    }
    // Not an Error: say what it was, in JSON when it has a JSON form.
    let rendered = js_sys::JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .or_else(|| value.as_f64().map(|n| n.to_string()))
        .unwrap_or_else(|| format!("{value:?}"));
    ErrorInfo::new("Error", format!("Non-Error value thrown: {rendered}"))
}

/// The seed's `sseStreamer`: a status stream that UIs subscribe to.
#[wasm_bindgen]
pub struct SseStreamer {
    stream: Rc<StatusStream>,
    hub: Rc<Hub>,
}

impl SseStreamer {
    /// Another handle on the same stream and subscribers.
    pub fn share(&self) -> SseStreamer {
        SseStreamer { stream: Rc::clone(&self.stream), hub: Rc::clone(&self.hub) }
    }

    /// The Rust side of a JS `SseStreamer` object, without taking it from JS (wasm-bindgen's
    /// conversion consumes the object it converts, so it converts a fresh handle instead).
    pub fn from_js(value: &JsValue) -> Option<SseStreamer> {
        use wasm_bindgen::convert::TryFromJsValue;
        let share = js_sys::Reflect::get(value, &"__share".into()).ok()?.dyn_into::<js_sys::Function>().ok()?;
        SseStreamer::try_from_js_value(share.call0(value).ok()?).ok()
    }

    /// The core stream, for the rest of the web layer to emit into.
    pub fn stream(&self) -> Rc<StatusStream> {
        Rc::clone(&self.stream)
    }

    fn details(&self, events: Vec<Rc<StatusEvent>>) -> Result<Array, JsError> {
        let out = Array::new_with_length(events.len() as u32);
        for (i, event) in events.iter().enumerate() {
            let detail = to_js(&**event).map_err(|e| {
                JsError::invalid_input("UNSERIALISABLE", format!("Event {} cannot be converted: {e}", event.id))
            })?;
            out.set(i as u32, detail);
        }
        Ok(out)
    }

    fn model_key(model_key: Option<String>) -> Option<String> {
        model_key.filter(|k| !k.is_empty())
    }
}

#[wasm_bindgen]
impl SseStreamer {
    /// Internal: a second JS handle on this stream (see `from_js`).
    #[wasm_bindgen(js_name = "__share", skip_typescript)]
    pub fn share_js(&self) -> SseStreamer {
        self.share()
    }

    /// Creates a stream. `bufferSize` (default 256, at most 65536) bounds how many
    /// past events `replay` can return.
    #[wasm_bindgen(constructor)]
    pub fn new(options: Option<StreamerOptionsArg>) -> Result<SseStreamer, JsError> {
        let options: StreamerOptions = read_options(options, "SseStreamer options")?;
        let capacity = match options.buffer_size {
            None => DEFAULT_REPLAY_CAPACITY,
            Some(n) if n.is_finite() && n >= 1.0 && n <= MAX_REPLAY_CAPACITY as f64 => n as usize,
            Some(n) => {
                return Err(JsError::invalid_input(
                    "INVALID_OPTIONS",
                    format!("`bufferSize` must be between 1 and {MAX_REPLAY_CAPACITY}, got {n}."),
                ));
            }
        };
        let target = EventTarget::new().map_err(|_| {
            JsError::invalid_input("NO_EVENT_TARGET", "This environment cannot construct an EventTarget.")
        })?;
        let hub = Rc::new(Hub {
            target,
            exposed: Cell::new(false),
            dom_listeners: RefCell::new(Vec::new()),
            subscribers: RefCell::new(Vec::new()),
            streams: RefCell::new(Vec::new()),
            next_handle: Cell::new(1),
        });
        let stream = StatusStream::new(Box::new(HubSink(Rc::clone(&hub))), capacity, js_sys::Date::now);
        Ok(SseStreamer { stream: Rc::new(stream), hub })
    }

    /// Emits an `info` event. Returns its id.
    #[wasm_bindgen(js_name = streamInfo)]
    pub fn stream_info(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] message: JsValue,
        #[wasm_bindgen(js_name = modelKey)] model_key: Option<String>,
    ) -> f64 {
        // A non-string message is rendered, not rejected: status text is for people.
        let text = message.as_string().unwrap_or_else(|| error_info(&message).message);
        self.stream.info(text, Self::model_key(model_key).as_deref()) as f64
    }

    /// Emits an `error` event from a JS `Error` (keeping `name`, `message`, `stack`
    /// and `code`), a string, or any other thrown value. Returns its id.
    #[wasm_bindgen(js_name = streamError)]
    pub fn stream_error(
        &self,
        #[wasm_bindgen(unchecked_param_type = "unknown")] error: JsValue,
        #[wasm_bindgen(js_name = modelKey)] model_key: Option<String>,
    ) -> f64 {
        self.stream.error(error_info(&error), Self::model_key(model_key).as_deref()) as f64
    }

    /// Emits a `progress` event; `percent` is computed from `loaded` and `total`.
    /// Throws `InvalidInputError` for a missing phase or a bad byte count.
    #[wasm_bindgen(js_name = streamProgress)]
    pub fn stream_progress(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ProgressInput")] progress: JsValue,
        #[wasm_bindgen(js_name = modelKey)] model_key: Option<String>,
    ) -> Result<f64, JsError> {
        let input: ProgressInput = read(
            &progress,
            "progress",
            "{ phase: 'download' | 'cache' | 'upload' | 'ready', loaded: number, total?: number }",
        )?;
        let loaded = byte_count(input.loaded, "progress", "loaded")?;
        let total = input.total.map(|t| byte_count(t, "progress", "total")).transpose()?;
        let id = self.stream.progress(Progress::new(input.phase, loaded, total), Self::model_key(model_key).as_deref());
        Ok(id as f64)
    }

    /// Emits a `metrics` event. Throws `InvalidInputError` for malformed data.
    #[wasm_bindgen(js_name = streamMetrics)]
    pub fn stream_metrics(
        &self,
        #[wasm_bindgen(unchecked_param_type = "MetricsData")] metrics: JsValue,
        #[wasm_bindgen(js_name = modelKey)] model_key: Option<String>,
    ) -> Result<f64, JsError> {
        let metrics: Metrics = read(&metrics, "metrics", "{ usedBytes: number, reservedBytes?: number, ... }")?;
        Ok(self.stream.metrics(metrics, Self::model_key(model_key).as_deref()) as f64)
    }

    /// Emits a `token` event.
    #[wasm_bindgen(js_name = streamToken)]
    pub fn stream_token(
        &self,
        #[wasm_bindgen(unchecked_param_type = "TokenData")] token: JsValue,
        #[wasm_bindgen(js_name = modelKey)] model_key: Option<String>,
    ) -> Result<f64, JsError> {
        let token: TokenEvent = read(&token, "token", "{ text: string, tokenId: number, index: number }")?;
        Ok(self.stream.token(token, Self::model_key(model_key).as_deref()) as f64)
    }

    /// Emits a `done` event.
    #[wasm_bindgen(js_name = streamDone)]
    pub fn stream_done(
        &self,
        #[wasm_bindgen(unchecked_param_type = "DoneData")] done: JsValue,
        #[wasm_bindgen(js_name = modelKey)] model_key: Option<String>,
    ) -> Result<f64, JsError> {
        let done: DoneStats = read(&done, "done", "DoneData")?;
        Ok(self.stream.done(done, Self::model_key(model_key).as_deref()) as f64)
    }

    /// Calls `callback` with every event from now on (after first replaying the
    /// last `options.replay` events, or those after `options.lastEventId`).
    /// Returns the function that unsubscribes; calling it twice is harmless.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: HearthEvent) => void")] callback: Function,
        options: Option<ReplayOptionsArg>,
    ) -> Result<Function, JsError> {
        let options: ReplayOptions = read_options(options, "subscribe options")?;
        for detail in self.details(self.backlog(&options)?)?.iter() {
            if let Err(e) = callback.call1(&JsValue::UNDEFINED, &detail) {
                report_listener_error(&e);
            }
        }
        let handle = self.hub.handle();
        self.hub.subscribers.borrow_mut().push((handle, callback));
        let hub: Weak<Hub> = Rc::downgrade(&self.hub);
        let unsubscribe = Closure::<dyn Fn()>::new(move || {
            if let Some(hub) = hub.upgrade() {
                hub.subscribers.borrow_mut().retain(|(h, _)| *h != handle);
            }
        });
        Ok(unsubscribe.into_js_value().unchecked_into())
    }

    /// The buffered events `options` asks to see first: those after
    /// `lastEventId`, else the last `replay`, else none.
    fn backlog(&self, options: &ReplayOptions) -> Result<Vec<Rc<StatusEvent>>, JsError> {
        Ok(match (options.last_event_id, options.replay) {
            (Some(last), _) => self.stream.since(count(last, "lastEventId")?),
            (None, Some(n)) => self.stream.replay(count(n, "replay")? as usize),
            (None, None) => Vec::new(),
        })
    }

    /// DOM-style: `listener` receives a `CustomEvent` whose `detail` is the event.
    #[wasm_bindgen(js_name = addEventListener)]
    pub fn add_event_listener(
        &self,
        #[wasm_bindgen(js_name = "type", unchecked_param_type = "HearthEventType")] event_type: String,
        #[wasm_bindgen(unchecked_param_type = "HearthEventListener")] listener: Function,
    ) -> Result<(), JsError> {
        let kind = Self::kind(&event_type)?;
        let mut listeners = self.hub.dom_listeners.borrow_mut();
        // The DOM ignores a second registration of the same listener; so do we.
        if !listeners.iter().any(|(k, f)| *k == kind && f == &listener) {
            self.hub
                .target
                .add_event_listener_with_callback(kind.as_str(), &listener)
                .map_err(|_| JsError::invalid_input("INVALID_LISTENER", "The listener could not be added."))?;
            listeners.push((kind, listener));
        }
        Ok(())
    }

    #[wasm_bindgen(js_name = removeEventListener)]
    pub fn remove_event_listener(
        &self,
        #[wasm_bindgen(js_name = "type", unchecked_param_type = "HearthEventType")] event_type: String,
        #[wasm_bindgen(unchecked_param_type = "HearthEventListener")] listener: Function,
    ) -> Result<(), JsError> {
        let kind = Self::kind(&event_type)?;
        let _ = self.hub.target.remove_event_listener_with_callback(kind.as_str(), &listener);
        self.hub.dom_listeners.borrow_mut().retain(|(k, f)| !(*k == kind && f == &listener));
        Ok(())
    }

    fn kind(event_type: &str) -> Result<EventKind, JsError> {
        EventKind::parse(event_type).ok_or_else(|| {
            JsError::invalid_input(
                "UNKNOWN_EVENT_TYPE",
                format!(
                    "Unknown event type {event_type:?}; expected one of info, error, progress, metrics, token, done."
                ),
            )
        })
    }

    /// The `EventTarget` itself, for code that wants the DOM API directly.
    #[wasm_bindgen(getter)]
    pub fn events(&self) -> EventTarget {
        self.hub.exposed.set(true);
        self.hub.target.clone()
    }

    /// The last `n` events still in the buffer (all of them when `n` is omitted),
    /// oldest first.
    #[wasm_bindgen(unchecked_return_type = "HearthEvent[]")]
    pub fn replay(&self, n: Option<f64>) -> Result<Array, JsError> {
        let n = match n {
            Some(n) => count(n, "n")? as usize,
            None => usize::MAX,
        };
        self.details(self.stream.replay(n))
    }

    /// The buffered events with an id greater than `lastEventId`, oldest first.
    #[wasm_bindgen(unchecked_return_type = "HearthEvent[]")]
    pub fn since(&self, #[wasm_bindgen(js_name = lastEventId)] last_event_id: f64) -> Result<Array, JsError> {
        self.details(self.stream.since(count(last_event_id, "lastEventId")?))
    }

    /// The id of the newest event, 0 before the first.
    #[wasm_bindgen(getter, js_name = lastEventId)]
    pub fn last_event_id(&self) -> f64 {
        (self.stream.next_id() - 1) as f64
    }

    /// How many events `replay` can return at most.
    #[wasm_bindgen(getter, js_name = bufferSize)]
    pub fn buffer_size(&self) -> f64 {
        self.stream.capacity() as f64
    }

    /// A `ReadableStream` of `text/event-stream` bytes: each event as an SSE frame
    /// (`event:` type, `id:`, `data:` JSON detail). Replays buffered events first
    /// when asked (`lastEventId` works like the SSE header of that name). A reader
    /// more than 4096 frames behind is disconnected with an error.
    #[wasm_bindgen(js_name = eventStream, unchecked_return_type = "ReadableStream<Uint8Array>")]
    pub fn event_stream(&self, options: Option<ReplayOptionsArg>) -> Result<ReadableStream, JsError> {
        let options: ReplayOptions = read_options(options, "eventStream options")?;
        let backlog = self.backlog(&options)?;
        let handle = self.hub.handle();
        let hub = Rc::downgrade(&self.hub);
        let start = Closure::once_into_js(move |controller: ReadableStreamDefaultController| {
            for event in &backlog {
                let bytes = Uint8Array::from(sse::encode_event(event).as_bytes());
                let _ = controller.enqueue_with_chunk(&bytes);
            }
            if let Some(hub) = hub.upgrade() {
                hub.streams.borrow_mut().push((handle, controller));
            }
        });
        let hub = Rc::downgrade(&self.hub);
        let cancel = Closure::once_into_js(move |_reason: JsValue| {
            if let Some(hub) = hub.upgrade() {
                hub.remove_stream(handle);
            }
        });
        let source = Object::new();
        let _ = Reflect::set(&source, &JsValue::from_str("start"), &start);
        let _ = Reflect::set(&source, &JsValue::from_str("cancel"), &cancel);
        ReadableStream::new_with_underlying_source(&source)
            .map_err(|_| JsError::invalid_input("NO_READABLE_STREAM", "ReadableStream is unavailable here."))
    }

    /// Renders one SSE frame. `data` may span lines; each becomes a `data:` field.
    /// Throws `InvalidInputError` when `event` or `id` holds a line break.
    #[wasm_bindgen(js_name = encodeFrame)]
    pub fn encode_frame(#[wasm_bindgen(unchecked_param_type = "SseFrame")] frame: JsValue) -> Result<String, JsError> {
        let input: FrameInput =
            read(&frame, "SSE frame", "{ data: string, event?: string, id?: string, retry?: number }")?;
        let retry = input.retry.map(|r| byte_count(r, "SSE frame", "retry")).transpose()?;
        Ok(sse::encode(&Frame { event: input.event, id: input.id, data: input.data, retry })?)
    }

    /// The SSE frame of an event detail, as `eventStream()` writes it.
    #[wasm_bindgen(js_name = toSseFrame)]
    pub fn to_sse_frame(
        #[wasm_bindgen(unchecked_param_type = "HearthEvent")] event: JsValue,
    ) -> Result<String, JsError> {
        let event: StatusEvent = read(&event, "event", "a HearthEvent ({ type, data, id, timestamp, modelKey? })")?;
        Ok(sse::encode_event(&event))
    }
}
