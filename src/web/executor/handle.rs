//! A task's JS sides: what `enqueue` reads from it ([`read_task`]: the [`Task`] the core
//! executor runs), and the `TaskHandle` JS holds (an async iterator of its tokens and its `result`
//! promise) with the [`Outlet`] the task feeds them through.

use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use web_sys::{AbortController, AbortSignal};

use crate::manager::task::{self, TokenStream};

use super::super::error::{ErrorCode, JsError};
use super::super::streamer::field;

use super::Executor;

/// What a task's iterator reads: its tokens, then its error.
pub(super) type Channel = TokenStream<JsValue, JsValue>;

/// The task's end of its handle: tokens in, the result settled (see [`task::Outlet`]). Dropping
/// it ends the iterator.
pub(super) type Outlet = task::Outlet<JsValue, JsValue, JsValue>;

/// A new task's outlet, the channel its handle reads and its result promise.
fn open() -> (Outlet, Rc<Channel>, Promise) {
    let (outlet, channel, settled) = task::outlet();
    let result = wasm_bindgen_futures::future_to_promise(async move {
        // The outlet settles every task it is given; a task that never runs stays pending.
        match settled.await {
            Ok(outcome) => outcome,
            Err(_) => std::future::pending().await,
        }
    });
    // A failure is also thrown by the iterator; an app that only iterates must not see an
    // "unhandled rejection" for the result it never awaited.
    let noop = Closure::once_into_js(|_: JsValue| {});
    if let Ok(catch) = Reflect::get(&result, &"catch".into()).and_then(|c| c.dyn_into::<Function>()) {
        let _ = catch.call1(&result, &noop);
    }
    (outlet, channel, result)
}

/// A queued task as the core executor runs it (see `Job for Task` in the executor).
pub(super) struct Task {
    /// The prompt string or chat messages (exactly one given, checked).
    pub input: JsValue,
    /// The generate options (`params`: sampling, `maxTokens`, `stop`, `chat`, `onToken`), an
    /// object; `GenerateRequest::read` checks them when the task runs.
    pub params: JsValue,
    /// The task's own controller; the task's `signal` aborts it too.
    pub controller: AbortController,
    /// Its handle's tokens and result.
    pub outlet: Outlet,
}

/// Reads `{ prompt | messages, params, signal }` (an `InvalidInputError` names what is wrong):
/// the task, the channel its handle reads and its result promise.
pub(super) fn read_task(task: &JsValue) -> Result<(Task, Rc<Channel>, Promise), JsError> {
    // Each field with whether it has the right type.
    let typed = |name: &str, right: fn(&JsValue) -> bool| field(task, name).map(|v| (v.clone(), right(&v)));
    let input = task::pick_input(typed("prompt", JsValue::is_string), typed("messages", js_sys::Array::is_array))
        .map_err(|m| JsError::of(ErrorCode::InvalidPrompt, m))?;
    let params = field(task, "params").unwrap_or_else(|| Object::new().into());
    if !params.is_object() {
        return Err(JsError::of(ErrorCode::InvalidOptions, "enqueue: `params` must be an object of generate options."));
    }
    let controller =
        AbortController::new().map_err(|_| JsError::of(ErrorCode::NoAbort, "AbortController is unavailable."))?;
    if let Some(signal) = field(task, "signal") {
        let signal: AbortSignal = signal.unchecked_into();
        if signal.aborted() {
            controller.abort();
        } else {
            let c = controller.clone();
            let abort = Closure::once_into_js(move || c.abort());
            let _ = signal.add_event_listener_with_callback("abort", abort.unchecked_ref());
        }
    }
    let (outlet, channel, result) = open();
    Ok((Task { input, params, controller, outlet }, channel, result))
}

/// A queued task: `for await (const t of handle)` yields its tokens (`{ text, tokenId, index }`);
/// `await handle.result` gives the text and timings.
#[wasm_bindgen]
pub struct TaskHandle {
    pub(super) id: u64,
    pub(super) model_key: String,
    pub(super) result: Promise,
    pub(super) channel: Rc<Channel>,
    pub(super) executor: Rc<Executor>,
}

#[wasm_bindgen]
impl TaskHandle {
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> f64 {
        self.id as f64
    }

    #[wasm_bindgen(getter, js_name = modelKey)]
    pub fn model_key(&self) -> String {
        self.model_key.clone()
    }

    /// Resolves with `{ text, promptTokens, generatedTokens, ttftMs, prefillTokensPerSecond,
    /// decodeTokensPerSecond, stopReason, taskId, modelKey, ... }`; rejects with the task's
    /// error (`CancelledError`, `ModelLoadError`, `InvalidInputError`, ...).
    #[wasm_bindgen(getter, unchecked_return_type = "Promise<TaskResult>")]
    pub fn result(&self) -> Promise {
        self.result.clone()
    }

    /// Cancels this task; `false` if it already finished.
    pub fn cancel(&self) -> bool {
        self.executor.cancel(self.id)
    }

    /// The async-iterator protocol: the next token, `{ done: true }` at the end; throws the
    /// task's error after the tokens before it.
    #[wasm_bindgen(unchecked_return_type = "Promise<IteratorResult<TokenData>>")]
    pub fn next(&self) -> Promise {
        let channel = self.channel.clone();
        wasm_bindgen_futures::future_to_promise(async move { Ok(step(channel.next().await.transpose()?.as_ref())) })
    }

    /// Leaving a `for await` loop early cancels the task.
    #[wasm_bindgen(js_name = "return", unchecked_return_type = "Promise<IteratorResult<TokenData>>")]
    pub fn return_(&self) -> Promise {
        self.executor.cancel(self.id);
        Promise::resolve(&step(None))
    }
}

/// An iterator step: `{ value, done: false }` with a token, `{ done: true }` at the end.
fn step(token: Option<&JsValue>) -> JsValue {
    let out = Object::new();
    if let Some(token) = token {
        let _ = Reflect::set(&out, &"value".into(), token);
    }
    let _ = Reflect::set(&out, &"done".into(), &JsValue::from_bool(token.is_none()));
    out.into()
}
