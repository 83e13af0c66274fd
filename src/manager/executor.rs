//! [`Executor`]: generation tasks across a [`ModelLifecycle`]'s models, one at a time (the
//! `TaskExecutor`'s flow).
//!
//! Tasks wait in a [`TaskRunner`] (higher priority first, first in first out within a
//! priority). Its pump takes the next one, switches the lifecycle to the task's model when
//! needed (through the operation chain, so the status stream says "Loading model ..." before
//! the tokens) and has the task generate on it ([`Job::generate`]). A task's failure settles
//! only that task (an `error` event, unless it was cancelled); the pump goes on with the next.
//!
//! Cancelling ([`Executor::cancel`]) removes a waiting task (its result fails at once and an
//! `info` says so) or aborts a running task's signal, which stops its generation between
//! tokens, or its model's load.
//!
//! Plain Rust over the lifecycle's [`Engine`] and a [`Job`] (the browser's task with its JS
//! handle; a fake in tests), tested natively.

use std::rc::Rc;

use super::engine::{Cancel, Engine};
use super::error::{EngineError, ManagerError};
use super::lifecycle::ModelLifecycle;
use super::queue::{Cancelled, TaskRunner};
use super::task::{PendingTask, TaskError, TaskFailure, TaskResult, cancelled_waiting_info, failure_message};
use crate::error::ErrorClass;
use crate::status::ErrorInfo;

/// One generation task as the executor runs it: its cancellation, its generation on a resident
/// model, and where its outcome goes (the task's handle).
#[allow(async_fn_in_trait)] // awaited where it is made; the executor is single-threaded
pub trait Job<E: Engine>: 'static {
    /// What a generation ends with.
    type Output;
    /// How a task fails: the lifecycle's errors, the task's own ([`TaskFailure`]) and the
    /// generation's.
    type Error: EngineError + From<ManagerError<E::Error>> + From<TaskFailure>;

    /// The task's cancellation signal (its switch and its generation watch it).
    fn signal(&self) -> E::Signal;

    /// Cancels the task: fires [`Self::signal`].
    fn abort(&self);

    /// Generates on `model` (the task's model, made current for it), each token to the task's
    /// handle; stops between tokens once [`Self::signal`] fires.
    async fn generate(&self, model: &E::Model) -> Result<Self::Output, Self::Error>;

    /// The task succeeded: hands `result` to its handle. An error here fails the task instead.
    fn resolve(&self, result: TaskResult<Self::Output>) -> Result<(), Self::Error>;

    /// The task failed with `error`: hands it to its handle.
    fn fail(&self, error: Self::Error);
}

/// A queued task: its model and its job.
struct Task<J> {
    model_key: String,
    job: J,
}

/// Runs generation tasks across a lifecycle's models; see the [module docs](self). Held in an
/// `Rc`: its pump owns a handle on it.
pub struct Executor<E: Engine, J: Job<E>> {
    lifecycle: Rc<ModelLifecycle<E>>,
    tasks: TaskRunner<Task<J>>,
}

impl<E: Engine, J: Job<E>> Executor<E, J> {
    /// An executor over `lifecycle`'s models (several executors share its operation chain, each
    /// runs its own queue).
    pub fn new(lifecycle: Rc<ModelLifecycle<E>>) -> Rc<Self> {
        Rc::new(Executor { lifecycle, tasks: TaskRunner::new() })
    }

    pub fn lifecycle(&self) -> &Rc<ModelLifecycle<E>> {
        &self.lifecycle
    }

    /// The model a task runs on: `model_key`, else the current model; it must be in the catalog.
    pub fn model_for(&self, model_key: Option<String>) -> Result<String, ManagerError<E::Error>> {
        let key = model_key.or_else(|| self.lifecycle.current_key()).ok_or(ManagerError::NoModel)?;
        self.lifecycle.lookup(&key)?;
        Ok(key)
    }

    /// Queues `job` on `model_key` (see [`Self::model_for`]) with `priority`; returns its id.
    /// Run [`Self::pump`] to have it run.
    pub fn push(&self, model_key: String, priority: i32, job: J) -> u64 {
        self.tasks.push(priority, Task { model_key, job })
    }

    /// Runs the queued tasks until the queue is empty (tasks queued meanwhile included).
    /// Returns at once when the pump already runs (it takes new tasks in their turn).
    pub async fn pump(self: Rc<Self>) {
        let this = self.clone();
        self.tasks
            .pump(move |id, task| {
                let this = this.clone();
                async move { this.run_task(id, &task).await }
            })
            .await;
    }

    /// The waiting tasks in the order they will run.
    pub fn pending(&self) -> Vec<PendingTask> {
        self.tasks.pending(|q| PendingTask { id: q.id, model_key: q.item.model_key.clone(), priority: q.priority })
    }

    /// The running task's id.
    pub fn running(&self) -> Option<u64> {
        self.tasks.running()
    }

    /// Cancels task `id`: a waiting one leaves the queue (it fails now, an `info` says so), a
    /// running one stops at its next token (or its model's load stops). `false` if there is no
    /// such task.
    pub fn cancel(&self, id: u64) -> bool {
        match self.tasks.cancel(id) {
            Cancelled::Waiting(task) => {
                task.job.abort();
                task.job.fail(TaskFailure::new(TaskError::CancelledWaiting, id, &task.model_key).into());
                let info = cancelled_waiting_info(id, &task.model_key);
                self.lifecycle.status().info(info, Some(&task.model_key));
                true
            }
            Cancelled::Running(task) => {
                task.job.abort();
                true
            }
            Cancelled::Unknown => false,
        }
    }

    /// Runs task `id` (counted by the lifecycle, so preloads wait), then settles it.
    async fn run_task(&self, id: u64, task: &Task<J>) {
        self.lifecycle.task_started();
        let outcome = self.run(id, task).await;
        self.lifecycle.task_finished();
        if let Err(error) = outcome.and_then(|result| task.job.resolve(result)) {
            self.report_failure(id, &task.model_key, &error);
            task.job.fail(error);
        }
    }

    async fn run(&self, id: u64, task: &Task<J>) -> Result<TaskResult<J::Output>, J::Error> {
        let (signal, key) = (task.job.signal(), task.model_key.as_str());
        let failure = |error| J::Error::from(TaskFailure::new(error, id, key));
        if signal.is_cancelled() {
            return Err(failure(TaskError::CancelledWaiting));
        }
        if let Err(e) = self.lifecycle.switch(key, Some(signal.clone())).await {
            return Err(if signal.is_cancelled() { failure(TaskError::CancelledLoading) } else { e.into() });
        }
        let model = self.lifecycle.model(key).ok_or_else(|| failure(TaskError::Unloaded))?;
        let result = task.job.generate(&model).await;
        if result.is_err() && self.lifecycle.is_lost() {
            return Err(failure(TaskError::DeviceLost));
        }
        Ok(TaskResult { generation: result?, task_id: id, model_key: key.to_owned() })
    }

    /// An `error` event for a failed task, unless it was told already: a cancelled one by its
    /// `done` event or the lifecycle's cancelled load, a lost device by the lifecycle's
    /// `DeviceLostError` event, a model that could not be loaded by the lifecycle's error event
    /// ([`ManagerError::told`]), a generation's device fault by the session ([`EngineError::told`]).
    fn report_failure(&self, id: u64, key: &str, error: &J::Error) {
        if matches!(error.code().class(), ErrorClass::Cancelled | ErrorClass::DeviceLost) || error.told() {
            return;
        }
        let info = ErrorInfo::of(error.code(), failure_message(id, key, &error.message()));
        self.lifecycle.status().error(info, Some(key));
    }
}

#[cfg(test)]
mod tests;
