//! `TaskExecutor`: generation tasks across the manager's models, one at a time.
//!
//! Tasks wait in the core's [`TaskRunner`] (higher priority first, FIFO within a priority). Its pump
//! takes the next one, switches the manager to its model when needed (through the manager's
//! operation chain, so the status stream says "Loading model ..." before the tokens), and
//! generates; tokens go to the task's async iterator and out as `token` events, then a `done`
//! event. A task's failure rejects its own `result` and the pump goes on with the next.
//!
//! Cancelling (`cancel(id)`, the handle's `cancel()`, the task's `signal`, or leaving a
//! `for await` loop early) removes a waiting task, or stops a running one between tokens
//! (or its model's load); its `result` rejects with `CancelledError`.

use std::rc::Rc;

use wasm_bindgen::prelude::*;
use web_sys::AbortController;

use crate::infer::session::GenerationOut;
use crate::manager::task::{PendingTask, TaskError, TaskOptions, TaskResult, cancelled_waiting_info, failure_message};
use crate::manager::{Cancelled, TaskRunner};
use crate::status::ErrorInfo;

use super::error::{ErrorClass, ErrorCode, JsError};
use super::manager::{Lifecycle, ModelManager};
use super::memory::to_js;
use super::model::{GenerateRequest, token_object};
use super::types::TaskOptionsArg;

mod handle;

pub use handle::TaskHandle;
use handle::{Outlet, TaskInput};

struct Task {
    model_key: String,
    /// Its input and `params` (generate's options), read with [`GenerateRequest::read`] when the
    /// task runs: a bad `params` fails the task (an `error` event, its `result` rejects) as a
    /// failed generation does, after the tasks before it.
    input: JsValue,
    params: JsValue,
    controller: AbortController,
    /// Its handle's tokens and result.
    outlet: Outlet,
}

struct ExecInner {
    manager: Rc<Lifecycle>,
    tasks: TaskRunner<Task>,
}

/// Runs generation tasks across a `ModelManager`'s models, one at a time, highest priority
/// first. `new TaskExecutor(manager)`.
#[wasm_bindgen]
pub struct TaskExecutor {
    inner: Rc<ExecInner>,
}

/// Task `id` on `key` failed with `error` (a cancellation names the task and the model).
fn task_error(error: TaskError, id: u64, key: &str) -> JsError {
    let e = JsError::of(error.code(), error.message(id, key)).with("taskId", id as f64);
    if error.code() == ErrorCode::Aborted { e.with("modelKey", key) } else { e }
}

impl ExecInner {
    /// Starts the pump unless it runs (it then takes the new task in its turn).
    fn start(self: &Rc<Self>) {
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let owner = this.clone();
            this.tasks
                .pump(move |id, task| {
                    let this = owner.clone();
                    async move { this.run_task(id, task).await }
                })
                .await;
        });
    }

    /// Runs task `id` (counted by the manager, so preloads wait), then settles its result.
    async fn run_task(&self, id: u64, task: Rc<Task>) {
        self.manager.task_started();
        let outcome = self.run(id, &task).await;
        self.manager.task_finished();
        match outcome.and_then(|result| to_js(&result)) {
            Ok(result) => task.outlet.resolve(&result),
            Err(error) => {
                self.report_failure(id, &task.model_key, &error);
                task.outlet.fail(&error.into());
            }
        }
        // The runner drops the task (its sender) as this returns, which ends the iterator.
    }

    async fn run(&self, id: u64, task: &Task) -> Result<TaskResult<GenerationOut>, JsError> {
        let (signal, key) = (task.controller.signal(), task.model_key.as_str());
        if signal.aborted() {
            return Err(task_error(TaskError::CancelledWaiting, id, key));
        }
        if let Err(e) = self.manager.switch(key, Some(signal.clone())).await {
            return Err(if signal.aborted() { task_error(TaskError::CancelledLoading, id, key) } else { e.into() });
        }
        let unloaded = || JsError::of(ErrorCode::ModelUnloaded, TaskError::Unloaded.message(id, key));
        let model = self.manager.model(key).ok_or_else(unloaded)?;
        let request = GenerateRequest::read(&task.input, &task.params)?;
        // Each token goes to the task's iterator and to the task's own `onToken`.
        let mut on_token = |t: &crate::infer::TokenEvent<'_>| {
            let token = token_object(t);
            task.outlet.token(&token);
            request.on_token(&token)
        };
        let result =
            model.0.generate_with(request.prompt.clone(), &request.options, &mut on_token, Some(&signal)).await;
        if result.is_err() && self.manager.is_lost() {
            return Err(task_error(TaskError::DeviceLost, id, key));
        }
        Ok(TaskResult { generation: result?, task_id: id, model_key: key.to_owned() })
    }

    /// An `error` event for a failed task (not for a cancelled one: its `done` event, or the
    /// manager's cancelled load, already told it).
    fn report_failure(&self, id: u64, key: &str, error: &JsError) {
        if error.class() == ErrorClass::Cancelled {
            return;
        }
        let info = ErrorInfo::of(error.code(), failure_message(id, key, error.message()));
        self.manager.status().error(info, Some(key));
    }

    /// Cancels task `id`: a waiting one leaves the queue (its result rejects now), a running one
    /// stops at the next token. `false` if there is no such task.
    fn cancel(&self, id: u64) -> bool {
        match self.tasks.cancel(id) {
            Cancelled::Waiting(task) => {
                task.controller.abort();
                task.outlet.fail(&task_error(TaskError::CancelledWaiting, id, &task.model_key).into());
                let info = cancelled_waiting_info(id, &task.model_key);
                self.manager.status().info(info, Some(&task.model_key));
                true
            }
            Cancelled::Running(task) => {
                task.controller.abort();
                true
            }
            Cancelled::Unknown => false,
        }
    }
}

#[wasm_bindgen]
impl TaskExecutor {
    /// An executor over `manager`'s models (several executors share the manager's load chain,
    /// but each runs its own queue).
    #[wasm_bindgen(constructor)]
    pub fn new(manager: &ModelManager) -> TaskExecutor {
        TaskExecutor { inner: Rc::new(ExecInner { manager: manager.shared(), tasks: TaskRunner::new() }) }
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
        let opts: TaskOptions = super::streamer::read_options(Some(task.clone()), "task")?;
        let model_key = opts
            .model_key
            .or_else(|| self.inner.manager.current_key())
            .ok_or_else(|| JsError::of(ErrorCode::NoModel, "enqueue: give `modelKey` (no model is current)."))?;
        self.inner.manager.lookup(&model_key)?;
        let TaskInput { input, params, controller } = handle::read_task(&task)?;
        let (outlet, channel, result) = handle::open();
        let item = Task { model_key: model_key.clone(), input, params, controller, outlet };
        let id = self.inner.tasks.push(opts.priority.unwrap_or(0), item);
        self.inner.start();
        Ok(TaskHandle { id, model_key, result, channel, executor: self.inner.clone() })
    }

    /// Cancels task `id` (waiting or running); `false` if there is no such task.
    pub fn cancel(&self, id: f64) -> bool {
        self.inner.cancel(id as u64)
    }

    /// The waiting tasks in the order they will run: `{ id, modelKey, priority }`.
    #[wasm_bindgen(unchecked_return_type = "PendingTask[]")]
    pub fn pending(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.tasks.pending(|q| PendingTask {
            id: q.id,
            model_key: q.item.model_key.clone(),
            priority: q.priority,
        }))
    }

    /// The running task's id, or `undefined`.
    #[wasm_bindgen(getter)]
    pub fn running(&self) -> Option<f64> {
        self.inner.tasks.running().map(|id| id as f64)
    }
}
