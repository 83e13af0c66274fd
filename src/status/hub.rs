//! Who listens to one stream, and how: the bookkeeping behind the browser's `SseStreamer`,
//! generic over what a listener and a byte-stream consumer are (JS functions and
//! `ReadableStream` controllers there, plain values in the tests).
//!
//! Three kinds of listener: subscribers (every event, removed by the handle `subscribe`
//! returns), typed listeners (per event type, like `addEventListener`: the same listener twice
//! for one type is one registration), and byte streams (SSE frames). Every list is read as a
//! snapshot, so a listener may (un)subscribe while events are delivered.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::request::{backlog_message, over_backlog};
use super::{EventKind, StatusEvent, sse};

/// What the hub needs from the platform to deliver one event: the browser implements it with
/// `CustomEvent`s on an `EventTarget`, JS callbacks and `ReadableStream` controllers.
pub trait Delivery {
    type Listener: Clone + PartialEq;
    type Consumer: Clone;
    /// The event as listeners receive it (a JS object), built once per event.
    type Detail;

    /// Converts the event; `None` when it cannot be (the implementation reports why).
    fn detail(&self, event: &StatusEvent) -> Option<Self::Detail>;
    /// Calls one subscriber; what it throws is reported, never propagated.
    fn call(&self, listener: &Self::Listener, detail: &Self::Detail);
    /// Dispatches the typed event (a DOM `CustomEvent` of type `kind`).
    fn dispatch_typed(&self, kind: EventKind, detail: &Self::Detail);
    /// The consumer's `desiredSize`: negative once its reader is behind, `None` once errored.
    fn desired_size(&self, consumer: &Self::Consumer) -> Option<f64>;
    /// Queues one frame; `false` when the consumer was closed from the reader's side.
    fn enqueue(&self, consumer: &Self::Consumer, frame: &str) -> bool;
    /// Errors the consumer's stream with `message` (it fell too far behind).
    fn disconnect(&self, consumer: &Self::Consumer, message: String);
}

/// The listeners of one stream. `L` is a listener, `C` a byte-stream consumer.
pub struct Hub<L, C> {
    /// Once the underlying event target is handed out, listeners can be added behind the
    /// hub's back, so every event must be dispatched from then on.
    exposed: Cell<bool>,
    typed: RefCell<Vec<(EventKind, L)>>,
    subscribers: RefCell<Vec<(u64, L)>>,
    streams: RefCell<Vec<(u64, C)>>,
    next_handle: Cell<u64>,
}

impl<L, C> Default for Hub<L, C> {
    fn default() -> Self {
        Hub {
            exposed: Cell::new(false),
            typed: RefCell::new(Vec::new()),
            subscribers: RefCell::new(Vec::new()),
            streams: RefCell::new(Vec::new()),
            next_handle: Cell::new(1),
        }
    }
}

impl<L: Clone + PartialEq, C: Clone> Hub<L, C> {
    pub fn new() -> Self {
        Hub::default()
    }

    /// A new handle for a subscriber or a stream (from 1, never reused).
    pub fn handle(&self) -> u64 {
        let h = self.next_handle.get();
        self.next_handle.set(h + 1);
        h
    }

    /// The event target was handed out: dispatch every event from now on.
    pub fn expose(&self) {
        self.exposed.set(true);
    }

    /// Whether events of `kind` must be dispatched as typed (DOM) events.
    pub fn wants_typed(&self, kind: EventKind) -> bool {
        self.exposed.get() || self.typed.borrow().iter().any(|(k, _)| *k == kind)
    }

    /// Registers `listener` for `kind`; `false` (and nothing changes) when it already is.
    pub fn add_typed(&self, kind: EventKind, listener: L) -> bool {
        let mut typed = self.typed.borrow_mut();
        if typed.iter().any(|(k, l)| *k == kind && *l == listener) {
            return false;
        }
        typed.push((kind, listener));
        true
    }

    /// Forgets `listener` for `kind` (nothing when it was not registered).
    pub fn remove_typed(&self, kind: EventKind, listener: &L) {
        self.typed.borrow_mut().retain(|(k, l)| !(*k == kind && l == listener));
    }

    /// Adds a subscriber; returns the handle that removes it.
    pub fn subscribe(&self, listener: L) -> u64 {
        let handle = self.handle();
        self.subscribers.borrow_mut().push((handle, listener));
        handle
    }

    /// Removes a subscriber; a second call is harmless.
    pub fn unsubscribe(&self, handle: u64) {
        self.subscribers.borrow_mut().retain(|(h, _)| *h != handle);
    }

    pub fn has_subscribers(&self) -> bool {
        !self.subscribers.borrow().is_empty()
    }

    /// The subscribers now, in subscription order.
    pub fn subscribers(&self) -> Vec<L> {
        self.subscribers.borrow().iter().map(|(_, l)| l.clone()).collect()
    }

    /// Adds a byte-stream consumer under `handle` (from [`Hub::handle`]).
    pub fn add_stream(&self, handle: u64, consumer: C) {
        self.streams.borrow_mut().push((handle, consumer));
    }

    /// Adds a byte-stream consumer under `handle` after queueing the frames of `backlog` (the
    /// buffered events a reader asked to be replayed), oldest first.
    pub fn add_stream_after<D>(&self, platform: &D, handle: u64, consumer: C, backlog: &[Rc<StatusEvent>])
    where
        D: Delivery<Listener = L, Consumer = C>,
    {
        for event in backlog {
            platform.enqueue(&consumer, &sse::encode_event(event));
        }
        self.add_stream(handle, consumer);
    }

    /// Removes a byte-stream consumer; a second call is harmless.
    pub fn remove_stream(&self, handle: u64) {
        self.streams.borrow_mut().retain(|(h, _)| *h != handle);
    }

    pub fn has_streams(&self) -> bool {
        !self.streams.borrow().is_empty()
    }

    /// The byte-stream consumers now, with their handles.
    pub fn streams(&self) -> Vec<(u64, C)> {
        self.streams.borrow().clone()
    }

    /// Delivers `event` to everyone listening: the detail is built only when a subscriber or
    /// a typed listener wants it, subscribers are called in order, then the typed event is
    /// dispatched, then every byte stream gets the SSE frame. A stream more than
    /// [`super::request::MAX_STREAM_BACKLOG`] frames behind is disconnected with an error
    /// instead, and one closed by its reader is forgotten.
    pub fn deliver<D: Delivery<Listener = L, Consumer = C>>(&self, platform: &D, event: &StatusEvent) {
        let kind = event.kind();
        let typed = self.wants_typed(kind);
        let subscribed = self.has_subscribers();
        if (typed || subscribed)
            && let Some(detail) = platform.detail(event)
        {
            // A snapshot: callbacks may (un)subscribe while we iterate.
            for listener in self.subscribers() {
                platform.call(&listener, &detail);
            }
            if typed {
                platform.dispatch_typed(kind, &detail);
            }
        }
        if !self.has_streams() {
            return;
        }
        let frame = sse::encode_event(event);
        for (handle, consumer) in self.streams() {
            if over_backlog(platform.desired_size(&consumer)) {
                platform.disconnect(&consumer, backlog_message());
                self.remove_stream(handle);
            } else if !platform.enqueue(&consumer, &frame) {
                self.remove_stream(handle);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Payload, StatusEvent};

    /// Records what the hub asked for; consumers are `(name, desired size, open)`.
    #[derive(Default)]
    struct Fake {
        log: RefCell<Vec<String>>,
        convertible: Cell<bool>,
    }

    type Consumer = (&'static str, Option<f64>, bool);

    impl Delivery for Fake {
        type Listener = &'static str;
        type Consumer = Consumer;
        type Detail = u64;

        fn detail(&self, event: &StatusEvent) -> Option<u64> {
            self.log.borrow_mut().push(format!("detail {}", event.id));
            self.convertible.get().then_some(event.id)
        }
        fn call(&self, listener: &&'static str, detail: &u64) {
            self.log.borrow_mut().push(format!("call {listener} {detail}"));
        }
        fn dispatch_typed(&self, kind: EventKind, detail: &u64) {
            self.log.borrow_mut().push(format!("typed {} {detail}", kind.as_str()));
        }
        fn desired_size(&self, consumer: &Consumer) -> Option<f64> {
            consumer.1
        }
        fn enqueue(&self, consumer: &Consumer, frame: &str) -> bool {
            self.log.borrow_mut().push(format!("frame {} {}", consumer.0, frame.lines().next().unwrap_or("")));
            consumer.2
        }
        fn disconnect(&self, consumer: &Consumer, message: String) {
            self.log.borrow_mut().push(format!("disconnect {} {}", consumer.0, message.contains("4096")));
        }
    }

    fn event(id: u64, payload: Payload) -> StatusEvent {
        StatusEvent { payload, id, timestamp: 0, model_key: None }
    }

    fn fake() -> Fake {
        let f = Fake::default();
        f.convertible.set(true);
        f
    }

    fn take(f: &Fake) -> Vec<String> {
        f.log.take()
    }

    #[test]
    fn with_nobody_listening_nothing_is_built() {
        let (hub, f) = (Hub::<&str, Consumer>::new(), fake());
        hub.deliver(&f, &event(1, Payload::Info("x".into())));
        assert!(take(&f).is_empty());
    }

    #[test]
    fn subscribers_then_typed_listeners_then_streams() {
        let (hub, f) = (Hub::<&str, Consumer>::new(), fake());
        let a = hub.subscribe("a");
        hub.subscribe("b");
        assert!(hub.add_typed(EventKind::Info, "dom"));
        assert!(!hub.add_typed(EventKind::Info, "dom"), "one registration per listener and type");
        let h = hub.handle();
        hub.add_stream(h, ("s", Some(0.0), true));
        hub.deliver(&f, &event(1, Payload::Info("x".into())));
        assert_eq!(take(&f), ["detail 1", "call a 1", "call b 1", "typed info 1", "frame s event: info"]);
        // Typed listeners only get their type; subscribers get all.
        hub.unsubscribe(a);
        hub.unsubscribe(a);
        hub.deliver(&f, &event(2, Payload::Error(crate::status::ErrorInfo::new("E", "m"))));
        assert_eq!(take(&f), ["detail 2", "call b 2", "frame s event: error"]);
        hub.remove_typed(EventKind::Info, &"dom");
        assert!(!hub.wants_typed(EventKind::Info));
        hub.expose();
        assert!(hub.wants_typed(EventKind::Done), "an exposed target gets every event");
    }

    #[test]
    fn a_stream_gets_its_backlog_first_then_the_events_after_it() {
        let (hub, f) = (Hub::<&str, Consumer>::new(), fake());
        let backlog = [Rc::new(event(1, Payload::Info("a".into()))), Rc::new(event(2, Payload::Info("b".into())))];
        hub.add_stream_after(&f, hub.handle(), ("s", Some(0.0), true), &backlog);
        hub.deliver(&f, &event(3, Payload::Info("c".into())));
        assert_eq!(take(&f), ["frame s event: info", "frame s event: info", "frame s event: info"]);
        assert_eq!(hub.streams().len(), 1);
    }

    #[test]
    fn an_unconvertible_event_still_reaches_the_streams() {
        let (hub, f) = (Hub::<&str, Consumer>::new(), Fake::default());
        hub.subscribe("a");
        hub.add_stream(hub.handle(), ("s", None, true));
        hub.deliver(&f, &event(1, Payload::Info("x".into())));
        assert_eq!(take(&f), ["detail 1", "frame s event: info"]);
    }

    #[test]
    fn a_stream_too_far_behind_is_disconnected_and_a_closed_one_forgotten() {
        let (hub, f) = (Hub::<&str, Consumer>::new(), fake());
        hub.add_stream(hub.handle(), ("slow", Some(-4097.0), true));
        hub.add_stream(hub.handle(), ("closed", Some(0.0), false));
        hub.add_stream(hub.handle(), ("ok", Some(-4096.0), true));
        hub.deliver(&f, &event(1, Payload::Info("x".into())));
        assert_eq!(take(&f), ["disconnect slow true", "frame closed event: info", "frame ok event: info"]);
        assert_eq!(hub.streams().iter().map(|(_, c)| c.0).collect::<Vec<_>>(), ["ok"]);
        hub.remove_stream(3);
        assert!(!hub.has_streams());
    }
}
