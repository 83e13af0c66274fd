//! A generation task's bookkeeping around [`super::TaskRunner`]: the token channel and the outcome
//! between the running task and its handle ([`outlet`]), what a finished task resolves with
//! ([`TaskResult`]), the waiting tasks as listed ([`PendingTask`]), and why a task failed without
//! a generation error of its own ([`TaskError`]).

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use futures::StreamExt;
use futures::channel::{mpsc, oneshot};
use futures::lock::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::{Coded, Detail, ErrorCode};

/// The running task's end of the channel: tokens in, then its result or its failure. Dropping
/// it ends the stream.
pub struct Outlet<T, R, E> {
    tokens: mpsc::UnboundedSender<T>,
    stream: Rc<TokenStream<T, E>>,
    result: RefCell<Option<oneshot::Sender<Result<R, E>>>>,
}

/// The handle's end: the tokens in order, then the failure (once), then the end.
pub struct TokenStream<T, E> {
    tokens: Mutex<mpsc::UnboundedReceiver<T>>,
    failure: RefCell<Option<E>>,
}

/// A task's outcome as its handle awaits it (once the outlet settles it).
pub type Settled<R, E> = oneshot::Receiver<Result<R, E>>;

/// A new task's channel: its outlet, its token stream and its outcome.
pub type Channel<T, R, E> = (Outlet<T, R, E>, Rc<TokenStream<T, E>>, Settled<R, E>);

/// A new task's [`Channel`].
pub fn outlet<T, R, E>() -> Channel<T, R, E> {
    let (tx, rx) = mpsc::unbounded();
    let (result, settled) = oneshot::channel();
    let stream = Rc::new(TokenStream { tokens: Mutex::new(rx), failure: RefCell::new(None) });
    (Outlet { tokens: tx, stream: stream.clone(), result: RefCell::new(Some(result)) }, stream, settled)
}

impl<T, R, E: Clone> Outlet<T, R, E> {
    /// Hands `token` to the stream (dropped if nobody reads it any more).
    pub fn token(&self, token: T) {
        let _ = self.tokens.unbounded_send(token);
    }

    /// The task succeeded: its outcome is `result` (the first settlement counts).
    pub fn resolve(&self, result: R) {
        if let Some(tx) = self.result.borrow_mut().take() {
            let _ = tx.send(Ok(result));
        }
    }

    /// The task failed with `error`: the stream yields it after the tokens before it, and it is
    /// the outcome (the first settlement counts).
    pub fn fail(&self, error: E) {
        *self.stream.failure.borrow_mut() = Some(error.clone());
        if let Some(tx) = self.result.borrow_mut().take() {
            let _ = tx.send(Err(error));
        }
    }
}

impl<T, E> TokenStream<T, E> {
    /// The next token; the failure once every token before it is read; `None` at the end (the
    /// outlet dropped). Reads wait for each other, in call order.
    pub async fn next(&self) -> Option<Result<T, E>> {
        match self.tokens.lock().await.next().await {
            Some(token) => Some(Ok(token)),
            None => self.failure.borrow_mut().take().map(Err),
        }
    }
}

/// A task's model and priority, as `enqueue` reads them (`{ modelKey, priority }`; the model
/// defaults to the current one, the priority to 0).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskOptions {
    pub model_key: Option<String>,
    pub priority: Option<i32>,
}

/// A task's input from its `prompt` and `messages` fields, each given with whether it has the
/// right type (a string, an array of messages): exactly one must be given, and right. The error
/// says what to give.
pub fn pick_input<V>(prompt: Option<(V, bool)>, messages: Option<(V, bool)>) -> Result<V, &'static str> {
    match (prompt, messages) {
        (Some((p, true)), None) => Ok(p),
        (None, Some((m, true))) => Ok(m),
        (Some(_), Some(_)) => Err("enqueue: give `prompt` or `messages`, not both."),
        _ => Err("enqueue: give `prompt` (a string) or `messages` ([{ role, content }])."),
    }
}

/// What a task's `result` resolves with: the generation, and which task and model it was.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult<G> {
    #[serde(flatten)]
    pub generation: G,
    pub task_id: u64,
    pub model_key: String,
}

/// A waiting task as `pending()` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingTask {
    pub id: u64,
    pub model_key: String,
    pub priority: i32,
}

/// Why task `id` on model `key` ended without a generation of its own failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskError {
    /// Cancelled while it waited in the queue.
    CancelledWaiting,
    /// Cancelled while its model loaded.
    CancelledLoading,
    /// Its model was unloaded between the switch and the generation.
    Unloaded,
    /// The GPU device was lost while it ran.
    DeviceLost,
}

impl TaskError {
    pub fn code(self) -> ErrorCode {
        match self {
            TaskError::CancelledWaiting | TaskError::CancelledLoading => ErrorCode::Aborted,
            TaskError::Unloaded => ErrorCode::ModelUnloaded,
            TaskError::DeviceLost => ErrorCode::DeviceLost,
        }
    }

    /// The message for task `id` on model `key`.
    pub fn message(self, id: u64, key: &str) -> String {
        match self {
            TaskError::CancelledWaiting => format!("Task {id} ({key}) was cancelled before it started."),
            TaskError::CancelledLoading => format!("Task {id} ({key}) was cancelled while its model loaded."),
            TaskError::Unloaded => format!("{key} was unloaded before task {id} could run; enqueue it again."),
            TaskError::DeviceLost => format!(
                "The GPU device was lost while task {id} ran on {key}; enqueue it again (the model is reloaded on a new device)."
            ),
        }
    }
}

/// A task that ended without a generation of its own failing: [`TaskError`] for task `id` on
/// model `key`, as an app sees it (`taskId` beside the message, and the model of a cancelled
/// task).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    pub error: TaskError,
    pub id: u64,
    pub key: String,
}

impl TaskFailure {
    pub fn new(error: TaskError, id: u64, key: &str) -> TaskFailure {
        TaskFailure { error, id, key: key.to_owned() }
    }
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error.message(self.id, &self.key))
    }
}

impl Coded for TaskFailure {
    fn code(&self) -> ErrorCode {
        self.error.code()
    }

    /// `taskId` (not for a model unloaded before the task ran: the task never started), and
    /// `modelKey` for a cancellation.
    fn details(&self) -> Vec<(&'static str, Detail)> {
        let mut details = Vec::new();
        if self.error != TaskError::Unloaded {
            details.push(("taskId", Detail::from(self.id)));
        }
        if self.error.code() == ErrorCode::Aborted {
            details.push(("modelKey", Detail::from(self.key.as_str())));
        }
        details
    }
}

/// The `error` event's message for task `id` on `key` that failed with `message`.
pub fn failure_message(id: u64, key: &str, message: &str) -> String {
    format!("Task {id} ({key}) failed: {message}")
}

/// The `info` event's message for task `id` on `key` cancelled while it waited.
pub fn cancelled_waiting_info(id: u64, key: &str) -> String {
    format!("Task {id} ({key}) cancelled before it started.")
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;
    use futures::executor::block_on;

    use super::*;

    #[test]
    fn tokens_come_in_order_then_the_failure_once_then_the_end() {
        let (out, stream, settled) = outlet::<u32, (), &str>();
        out.token(1);
        out.token(2);
        out.fail("broken");
        out.resolve(());
        drop(out);
        assert_eq!(block_on(settled), Ok(Err("broken")), "the first settlement counts");
        assert_eq!(block_on(stream.next()), Some(Ok(1)));
        assert_eq!(block_on(stream.next()), Some(Ok(2)));
        assert_eq!(block_on(stream.next()), Some(Err("broken")));
        assert_eq!(block_on(stream.next()), None);
    }

    #[test]
    fn a_read_waits_for_the_next_token_and_a_finished_task_ends_the_stream() {
        let (out, stream, mut settled) = outlet::<u32, &str, ()>();
        assert_eq!(stream.next().now_or_never(), None, "no token yet: the read waits");
        out.token(5);
        assert_eq!(stream.next().now_or_never(), Some(Some(Ok(5))));
        assert_eq!(settled.try_recv(), Ok(None), "not settled yet");
        out.resolve("done");
        drop(out);
        assert_eq!(block_on(stream.next()), None);
        assert_eq!(block_on(settled), Ok(Ok("done")));
    }

    #[test]
    fn a_token_after_the_reader_left_is_dropped_quietly() {
        let (out, stream, settled) = outlet::<u32, (), ()>();
        drop((stream, settled));
        out.token(1);
        out.fail(());
    }

    #[test]
    fn the_result_flattens_the_generation_beside_the_task() {
        #[derive(Serialize)]
        struct G {
            text: &'static str,
        }
        let r = TaskResult { generation: G { text: "hi" }, task_id: 3, model_key: "m".into() };
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"text":"hi","taskId":3,"modelKey":"m"}"#);
        let p = PendingTask { id: 1, model_key: "m".into(), priority: -2 };
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"id":1,"modelKey":"m","priority":-2}"#);
    }

    #[test]
    fn task_options_read_the_model_and_priority_and_ignore_the_rest() {
        let o: TaskOptions = serde_json::from_str(r#"{"modelKey":"m","priority":3,"prompt":"hi"}"#).unwrap();
        assert_eq!(o, TaskOptions { model_key: Some("m".into()), priority: Some(3) });
        assert_eq!(serde_json::from_str::<TaskOptions>("{}").unwrap(), TaskOptions::default());
    }

    #[test]
    fn a_task_gives_exactly_one_input_of_the_right_type() {
        assert_eq!(pick_input(Some(("p", true)), None), Ok("p"));
        assert_eq!(pick_input(None, Some(("m", true))), Ok("m"));
        let both = Err("enqueue: give `prompt` or `messages`, not both.");
        assert_eq!(pick_input(Some(("p", true)), Some(("m", true))), both);
        assert_eq!(pick_input(Some(("p", false)), Some(("m", false))), both);
        let neither = Err("enqueue: give `prompt` (a string) or `messages` ([{ role, content }]).");
        assert_eq!(pick_input::<&str>(None, None), neither);
        assert_eq!(pick_input(Some(("p", false)), None), neither);
        assert_eq!(pick_input(None, Some(("m", false))), neither);
    }

    #[test]
    fn task_errors_have_their_codes_and_messages() {
        assert_eq!(TaskError::CancelledWaiting.code(), ErrorCode::Aborted);
        assert_eq!(TaskError::CancelledLoading.message(4, "m"), "Task 4 (m) was cancelled while its model loaded.");
        assert_eq!(TaskError::Unloaded.code(), ErrorCode::ModelUnloaded);
        assert_eq!(TaskError::Unloaded.message(4, "m"), "m was unloaded before task 4 could run; enqueue it again.");
        assert_eq!(TaskError::DeviceLost.code(), ErrorCode::DeviceLost);
        assert_eq!(failure_message(2, "m", "bad"), "Task 2 (m) failed: bad");
        assert_eq!(cancelled_waiting_info(2, "m"), "Task 2 (m) cancelled before it started.");
    }

    #[test]
    fn a_task_failure_names_the_task_and_a_cancelled_tasks_model() {
        let names = |e: TaskError| {
            let f = TaskFailure::new(e, 7, "m");
            (f.code(), f.to_string(), f.details().into_iter().map(|(k, _)| k).collect::<Vec<_>>())
        };
        let waiting = names(TaskError::CancelledWaiting);
        assert_eq!(
            waiting,
            (ErrorCode::Aborted, "Task 7 (m) was cancelled before it started.".into(), vec!["taskId", "modelKey"])
        );
        assert_eq!(names(TaskError::CancelledLoading).2, ["taskId", "modelKey"]);
        assert_eq!(names(TaskError::DeviceLost).2, ["taskId"]);
        assert_eq!(names(TaskError::Unloaded).2, Vec::<&str>::new());
        let f = TaskFailure::new(TaskError::CancelledWaiting, 7, "m");
        assert_eq!(f.details(), [("taskId", Detail::Number(7.0)), ("modelKey", Detail::Text("m".into()))]);
    }
}
