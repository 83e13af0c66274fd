//! `SseStreamer`: the status stream for JS, backed by a real `EventTarget`.
//!
//! Three ways to listen, all fed by one [`Hub`] (the core `status::hub` bookkeeping and
//! delivery order, over JS functions and `ReadableStream` controllers):
//! - `subscribe(callback)` — every event, returns an unsubscribe function;
//! - `addEventListener(type, listener)` or `streamer.events` — DOM `CustomEvent`s
//!   whose `detail` is the event;
//! - `eventStream()` — a `ReadableStream` of `text/event-stream` bytes (a reader more than
//!   `status::request::MAX_STREAM_BACKLOG` frames behind is disconnected).
//!
//! A listener that throws is reported (like the DOM does, through `reportError`)
//! and never stops the others or the emitter. With nobody listening, an event
//! costs a slot in the replay buffer and nothing on the JS side.

use std::rc::{Rc, Weak};

use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use web_sys::{CustomEvent, CustomEventInit, EventTarget, ReadableStream, ReadableStreamDefaultController};

pub(super) use super::convert::{error_info, field, read_options};
use super::error::{ErrorCode, JsError};
use super::types::{ReplayOptionsArg, StreamerOptionsArg};
use crate::status::request::{self, FrameInput, ProgressInput, ReplayOptions, StreamerOptions};
use crate::status::{EventKind, Payload, StatusEvent, StatusSink, StatusStream, hub, sse};

/// Serialises an event as the JS `detail` object.
fn to_js<T: serde::Serialize + ?Sized>(value: &T) -> Result<JsValue, serde_wasm_bindgen::Error> {
    value.serialize(&serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true))
}

/// Reports an exception thrown by a listener the way the DOM does for event
/// listeners: to the global `reportError` (which fires `window.onerror`), else
/// the console. It is never rethrown.
fn report_listener_error(error: &JsValue) {
    if let Some(report) = field(&js_sys::global(), "reportError").and_then(|r| r.dyn_into::<Function>().ok())
        && report.call1(&JsValue::UNDEFINED, error).is_ok()
    {
        return;
    }
    web_sys::console::error_2(&JsValue::from_str("Hearth: a status listener threw:"), error);
}

/// Everyone listening to one stream: the core bookkeeping over JS functions and
/// `ReadableStream` controllers, and the `EventTarget` DOM listeners live on.
struct Hub {
    target: EventTarget,
    listeners: hub::Hub<Function, ReadableStreamDefaultController>,
}

impl hub::Delivery for Hub {
    type Listener = Function;
    type Consumer = ReadableStreamDefaultController;
    type Detail = JsValue;

    fn detail(&self, event: &StatusEvent) -> Option<JsValue> {
        to_js(event)
            .map_err(|e| {
                let message = format!("Hearth: status event {} could not be converted for JS: {e}", event.id);
                web_sys::console::error_1(&JsValue::from_str(&message));
            })
            .ok()
    }

    fn call(&self, callback: &Function, detail: &JsValue) {
        if let Err(e) = callback.call1(&JsValue::UNDEFINED, detail) {
            report_listener_error(&e);
        }
    }

    fn dispatch_typed(&self, kind: EventKind, detail: &JsValue) {
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

    fn desired_size(&self, controller: &ReadableStreamDefaultController) -> Option<f64> {
        controller.desired_size()
    }

    fn enqueue(&self, controller: &ReadableStreamDefaultController, frame: &str) -> bool {
        controller.enqueue_with_chunk(&Uint8Array::from(frame.as_bytes())).is_ok()
    }

    fn disconnect(&self, controller: &ReadableStreamDefaultController, message: String) {
        controller.error_with_e(&JsError::of(ErrorCode::StreamBacklog, message).into());
    }
}

struct HubSink(Rc<Hub>);

impl StatusSink for HubSink {
    fn emit(&self, event: &Rc<StatusEvent>) {
        self.0.listeners.deliver(&*self.0, event);
    }
}

fn read<T: for<'de> Deserialize<'de>>(value: &JsValue, what: &str, shape: &str) -> Result<T, JsError> {
    serde_wasm_bindgen::from_value(value.clone())
        .map_err(|e| JsError::of(ErrorCode::InvalidEventData, format!("Invalid {what}: {e}. Expected {shape}.")))
}

/// The ModelManager v3.1 design's `sseStreamer`: a status stream that UIs subscribe to.
#[wasm_bindgen]
pub struct SseStreamer {
    stream: Rc<StatusStream>,
    hub: Rc<Hub>,
}

impl SseStreamer {
    /// The core stream, for the rest of the web layer to emit into.
    pub fn stream(&self) -> Rc<StatusStream> {
        Rc::clone(&self.stream)
    }

    fn details(&self, events: Vec<Rc<StatusEvent>>) -> Result<Array, JsError> {
        let detail = |event: &Rc<StatusEvent>| {
            let message = |e| format!("Event {} cannot be converted: {e}", event.id);
            to_js(&**event).map_err(|e| JsError::of(ErrorCode::Unserialisable, message(e)))
        };
        events.iter().map(detail).collect()
    }

    /// Emits `payload` (an empty model key is none); returns the event's id as a JS number.
    fn emit(&self, payload: Payload, model_key: Option<String>) -> f64 {
        self.stream.emit(payload, model_key.filter(|k| !k.is_empty()).as_deref()) as f64
    }
}

#[wasm_bindgen]
impl SseStreamer {
    /// Internal: a second JS handle on this stream and its subscribers (see `convert::shared`).
    #[wasm_bindgen(js_name = "__share", skip_typescript)]
    pub fn share(&self) -> SseStreamer {
        SseStreamer { stream: Rc::clone(&self.stream), hub: Rc::clone(&self.hub) }
    }

    /// Creates a stream. `bufferSize` (default 256, at most 65536) bounds how many
    /// past events `replay` can return.
    #[wasm_bindgen(constructor)]
    pub fn new(options: Option<StreamerOptionsArg>) -> Result<SseStreamer, JsError> {
        let options: StreamerOptions = read_options(options, "SseStreamer options")?;
        let capacity = options.capacity()?;
        let target = EventTarget::new()
            .map_err(|_| JsError::of(ErrorCode::NoEventTarget, "This environment cannot construct an EventTarget."))?;
        let hub = Rc::new(Hub { target, listeners: hub::Hub::new() });
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
        self.emit(Payload::Info(text), model_key)
    }

    /// Emits an `error` event from a JS `Error` (keeping `name`, `message`, `stack`
    /// and `code`), a string, or any other thrown value. Returns its id.
    #[wasm_bindgen(js_name = streamError)]
    pub fn stream_error(
        &self,
        #[wasm_bindgen(unchecked_param_type = "unknown")] error: JsValue,
        #[wasm_bindgen(js_name = modelKey)] model_key: Option<String>,
    ) -> f64 {
        self.emit(Payload::Error(error_info(&error)), model_key)
    }

    /// Emits a `progress` event; `percent` is computed from `loaded` and `total`.
    /// Throws `InvalidInputError` for a missing phase or a bad byte count.
    #[wasm_bindgen(js_name = streamProgress)]
    pub fn stream_progress(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ProgressInput")] progress: JsValue,
        #[wasm_bindgen(js_name = modelKey)] model_key: Option<String>,
    ) -> Result<f64, JsError> {
        let input: ProgressInput = read(&progress, "progress", ProgressInput::SHAPE)?;
        Ok(self.emit(Payload::Progress(input.progress()?), model_key))
    }

    /// Emits a `metrics` event. Throws `InvalidInputError` for malformed data.
    #[wasm_bindgen(js_name = streamMetrics)]
    pub fn stream_metrics(
        &self,
        #[wasm_bindgen(unchecked_param_type = "MetricsData")] metrics: JsValue,
        #[wasm_bindgen(js_name = modelKey)] model_key: Option<String>,
    ) -> Result<f64, JsError> {
        let shape = "{ usedBytes: number, reservedBytes?: number, ... }";
        Ok(self.emit(Payload::Metrics(read(&metrics, "metrics", shape)?), model_key))
    }

    /// Emits a `token` event.
    #[wasm_bindgen(js_name = streamToken)]
    pub fn stream_token(
        &self,
        #[wasm_bindgen(unchecked_param_type = "TokenData")] token: JsValue,
        #[wasm_bindgen(js_name = modelKey)] model_key: Option<String>,
    ) -> Result<f64, JsError> {
        let shape = "{ text: string, tokenId: number, index: number }";
        Ok(self.emit(Payload::Token(read(&token, "token", shape)?), model_key))
    }

    /// Emits a `done` event (`cachedTokens` may be left out: 0).
    #[wasm_bindgen(js_name = streamDone)]
    pub fn stream_done(
        &self,
        #[wasm_bindgen(unchecked_param_type = "DoneInput")] done: JsValue,
        #[wasm_bindgen(js_name = modelKey)] model_key: Option<String>,
    ) -> Result<f64, JsError> {
        Ok(self.emit(Payload::Done(read(&done, "done", "DoneData")?), model_key))
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
        for detail in self.details(self.stream.backlog(&options)?)?.iter() {
            hub::Delivery::call(&*self.hub, &callback, &detail);
        }
        let handle = self.hub.listeners.subscribe(callback);
        let hub: Weak<Hub> = Rc::downgrade(&self.hub);
        let unsubscribe = Closure::<dyn Fn()>::new(move || {
            if let Some(hub) = hub.upgrade() {
                hub.listeners.unsubscribe(handle);
            }
        });
        Ok(unsubscribe.into_js_value().unchecked_into())
    }

    /// DOM-style: `listener` receives a `CustomEvent` whose `detail` is the event.
    #[wasm_bindgen(js_name = addEventListener)]
    pub fn add_event_listener(
        &self,
        #[wasm_bindgen(js_name = "type", unchecked_param_type = "HearthEventType")] event_type: String,
        #[wasm_bindgen(unchecked_param_type = "HearthEventListener")] listener: Function,
    ) -> Result<(), JsError> {
        let kind = request::event_kind(&event_type)?;
        // The DOM ignores a second registration of the same listener; so do we.
        if self.hub.listeners.add_typed(kind, listener.clone())
            && self.hub.target.add_event_listener_with_callback(kind.as_str(), &listener).is_err()
        {
            self.hub.listeners.remove_typed(kind, &listener);
            return Err(JsError::of(ErrorCode::InvalidListener, "The listener could not be added."));
        }
        Ok(())
    }

    #[wasm_bindgen(js_name = removeEventListener)]
    pub fn remove_event_listener(
        &self,
        #[wasm_bindgen(js_name = "type", unchecked_param_type = "HearthEventType")] event_type: String,
        #[wasm_bindgen(unchecked_param_type = "HearthEventListener")] listener: Function,
    ) -> Result<(), JsError> {
        let kind = request::event_kind(&event_type)?;
        let _ = self.hub.target.remove_event_listener_with_callback(kind.as_str(), &listener);
        self.hub.listeners.remove_typed(kind, &listener);
        Ok(())
    }

    /// The `EventTarget` itself, for code that wants the DOM API directly.
    #[wasm_bindgen(getter)]
    pub fn events(&self) -> EventTarget {
        self.hub.listeners.expose();
        self.hub.target.clone()
    }

    /// The last `n` events still in the buffer (all of them when `n` is omitted),
    /// oldest first.
    #[wasm_bindgen(unchecked_return_type = "HearthEvent[]")]
    pub fn replay(&self, n: Option<f64>) -> Result<Array, JsError> {
        self.details(self.stream.replay_arg(n)?)
    }

    /// The buffered events with an id greater than `lastEventId`, oldest first.
    #[wasm_bindgen(unchecked_return_type = "HearthEvent[]")]
    pub fn since(&self, #[wasm_bindgen(js_name = lastEventId)] last_event_id: f64) -> Result<Array, JsError> {
        self.details(self.stream.since(request::count(last_event_id, "lastEventId")?))
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
        let backlog = self.stream.backlog(&options)?;
        let handle = self.hub.listeners.handle();
        let hub = Rc::downgrade(&self.hub);
        // Called by the constructor below, while the hub is alive.
        let start = Closure::once_into_js(move |controller: ReadableStreamDefaultController| {
            if let Some(hub) = hub.upgrade() {
                hub.listeners.add_stream_after(&*hub, handle, controller, &backlog);
            }
        });
        let hub = Rc::downgrade(&self.hub);
        let cancel = Closure::once_into_js(move |_reason: JsValue| {
            if let Some(hub) = hub.upgrade() {
                hub.listeners.remove_stream(handle);
            }
        });
        let source = Object::new();
        let _ = Reflect::set(&source, &JsValue::from_str("start"), &start);
        let _ = Reflect::set(&source, &JsValue::from_str("cancel"), &cancel);
        ReadableStream::new_with_underlying_source(&source)
            .map_err(|_| JsError::of(ErrorCode::NoReadableStream, "ReadableStream is unavailable here."))
    }

    /// Renders one SSE frame. `data` may span lines; each becomes a `data:` field.
    /// Throws `InvalidInputError` when `event` or `id` holds a line break.
    #[wasm_bindgen(js_name = encodeFrame)]
    pub fn encode_frame(#[wasm_bindgen(unchecked_param_type = "SseFrame")] frame: JsValue) -> Result<String, JsError> {
        let input: FrameInput = read(&frame, "SSE frame", FrameInput::SHAPE)?;
        Ok(input.encode()?)
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
