//! `TaskExecutor`: generation tasks across the manager's models, one at a time.
//!
//! The flow is the core's [`crate::manager::Executor`]: tasks wait in priority order (higher
//! first, first in first out within a priority), the pump switches the manager to a task's model
//! when needed (through the manager's operation chain, so the status stream says "Loading model
//! ..." before the tokens) and generates; a task's failure rejects its own `result` (and becomes
//! an `error` event) and the pump goes on. This file is the [`Job`] over a task's JS sides: its
//! input read when it runs, its `AbortController`, and its handle ([`handle`]).
//!
//! Cancelling (`cancel(id)`, the handle's `cancel()`, the task's `signal`, or leaving a
//! `for await` loop early) removes a waiting task, or stops a running one between tokens
//! (or its model's load); its `result` rejects with `CancelledError`.

use std::rc::Rc;

use wasm_bindgen::prelude::*;
use web_sys::AbortSignal;

use crate::infer::session::{GenerationOut, LoadedModel};
use crate::manager::task::{TaskOptions, TaskResult};
use crate::manager::{self, Job};

use super::convert::{read_options, to_js};
use super::error::JsError;
use super::manager::{ModelManager, WebEngine};
use super::model::GenerateRequest;
use super::types::TaskOptionsArg;

mod handle;

use handle::Task;
pub use handle::TaskHandle;

/// The core executor over the browser's engine and tasks.
type Executor = manager::Executor<WebEngine, Task>;

impl Job<WebEngine> for Task {
    type Output = GenerationOut;
    type Error = JsError;

    fn signal(&self) -> AbortSignal {
        self.controller.signal()
    }

    fn abort(&self) {
        self.controller.abort();
    }

    /// Reads the task's input and `params` now, as `generate` would (a bad `params` fails the
    /// task in its turn), then generates; each token goes to the task's iterator and to its own
    /// `onToken`.
    async fn generate(&self, model: &Rc<LoadedModel>) -> Result<GenerationOut, JsError> {
        let request = GenerateRequest::read(&self.input, &self.params)?;
        request.generate(model, |token| self.outlet.token(token.clone()), Some(&self.controller.signal())).await
    }

    fn resolve(&self, result: TaskResult<GenerationOut>) -> Result<(), JsError> {
        self.outlet.resolve(to_js(&result)?);
        Ok(())
    }

    fn fail(&self, error: JsError) {
        self.outlet.fail(error.into());
    }
}

/// Runs generation tasks across a `ModelManager`'s models, one at a time, highest priority
/// first. `new TaskExecutor(manager)`.
#[wasm_bindgen]
pub struct TaskExecutor {
    inner: Rc<Executor>,
}

#[wasm_bindgen]
impl TaskExecutor {
    /// An executor over `manager`'s models (several executors share the manager's load chain,
    /// but each runs its own queue).
    #[wasm_bindgen(constructor)]
    pub fn new(manager: &ModelManager) -> TaskExecutor {
        TaskExecutor { inner: Executor::new(manager.lifecycle.clone()) }
    }

    /// Queues a generation: `{ modelKey, prompt | messages, params, priority, signal }`
    /// (`modelKey` defaults to the current model; `params` are `generate`'s options; higher
    /// `priority` runs first, default 0). Returns the task's handle at once. Throws
    /// `InvalidInputError` for a bad task (no model, no prompt, unknown key): nothing is queued;
    /// bad `params` fail the task when it runs (its `result` rejects with the typed error).
    pub fn enqueue(
        &self,
        #[wasm_bindgen(unchecked_param_type = "TaskOptions")] task: TaskOptionsArg,
    ) -> Result<TaskHandle, JsError> {
        let task: JsValue = task.into();
        let opts: TaskOptions = read_options(Some(task.clone()), "task")?;
        let model_key = self.inner.model_for(opts.model_key)?;
        let (task, channel, result) = handle::read_task(&task)?;
        let id = self.inner.push(model_key.clone(), opts.priority.unwrap_or(0), task);
        wasm_bindgen_futures::spawn_local(self.inner.clone().pump());
        Ok(TaskHandle { id, model_key, result, channel, executor: self.inner.clone() })
    }

    /// Cancels task `id` (waiting or running); `false` if there is no such task.
    pub fn cancel(&self, id: f64) -> bool {
        self.inner.cancel(id as u64)
    }

    /// The waiting tasks in the order they will run: `{ id, modelKey, priority }`.
    #[wasm_bindgen(unchecked_return_type = "PendingTask[]")]
    pub fn pending(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.pending())
    }

    /// The running task's id, or `undefined`.
    #[wasm_bindgen(getter)]
    pub fn running(&self) -> Option<f64> {
        self.inner.running().map(|id| id as f64)
    }
}
