//! The TaskExecutor scenarios of the page tests, natively: tasks over the fake engine
//! ([`crate::manager::testing`]) whose jobs emit `token` and `done` events like a model does,
//! and can be held after their first token.

use std::cell::RefCell;
use std::rc::Rc;

use futures::channel::oneshot;

use super::*;
use crate::error::{Detail, ErrorCode};
use crate::manager::Resident;
use crate::manager::testing::{FakeError, FakeModel, Flag, Harness, Slot, roomy};
use crate::status::{DoneStats, Payload, StatusStream, StopReason, TokenEvent};

/// A task's failure as the fake job reports it.
#[derive(Debug, Clone, PartialEq)]
struct JobError {
    code: ErrorCode,
    message: String,
    details: Vec<(&'static str, Detail)>,
    /// Told on the status stream by the generation itself (a session's device fault).
    told: bool,
}

impl EngineError for JobError {
    fn code(&self) -> ErrorCode {
        self.code
    }

    fn message(&self) -> String {
        self.message.clone()
    }

    fn told(&self) -> bool {
        self.told
    }
}

impl From<ManagerError<FakeError>> for JobError {
    fn from(e: ManagerError<FakeError>) -> JobError {
        JobError { code: e.code(), message: e.message(), details: Vec::new(), told: e.told() }
    }
}

impl From<TaskFailure> for JobError {
    fn from(e: TaskFailure) -> JobError {
        use crate::error::Coded;
        JobError { code: e.code(), message: e.message(), details: e.details(), told: false }
    }
}

type Outcome = Slot<Result<TaskResult<String>, JobError>>;

/// A generation of `tokens` tokens ("t0 ", "t1 ", ...), told on the status stream.
struct FakeJob {
    tokens: u32,
    /// Fails before generating, as a task whose `params` are bad does.
    bad: bool,
    /// Fails after its tokens with a device fault, told on the status stream first, as the
    /// session tells a generation's uncaptured WebGPU error.
    fault: bool,
    flag: Flag,
    /// Held after the first token until the test fires the sender.
    gate: RefCell<Option<oneshot::Receiver<()>>>,
    status: Rc<StatusStream>,
    outcome: Outcome,
}

impl Job<crate::manager::testing::FakeEngine> for FakeJob {
    type Output = String;
    type Error = JobError;

    fn signal(&self) -> Flag {
        self.flag.clone()
    }

    fn abort(&self) {
        self.flag.cancel();
    }

    async fn generate(&self, model: &FakeModel) -> Result<String, JobError> {
        if self.bad {
            let message = "temperature must be at least 0 (got -1).".to_owned();
            return Err(JobError { code: ErrorCode::InvalidParams, message, details: Vec::new(), told: false });
        }
        let key = model.0.key.as_str();
        model.0.generating.set(true);
        let mut text = String::new();
        let mut n = 0;
        while n < self.tokens && !self.flag.is_cancelled() && !model.is_disposed() {
            let piece = format!("t{n} ");
            self.status.token(TokenEvent { text: piece.clone(), token_id: n, index: n }, Some(key));
            text.push_str(&piece);
            n += 1;
            let gate = self.gate.borrow_mut().take();
            if let Some(gate) = gate {
                let _ = gate.await;
            }
        }
        model.0.generating.set(false);
        if self.fault {
            let message = "The GPU reported an error while running a.".to_owned();
            self.status.error(crate::status::ErrorInfo::of(ErrorCode::GpuError, message.clone()), Some(key));
            return Err(JobError { code: ErrorCode::GpuError, message, details: vec![], told: true });
        }
        if model.is_disposed() {
            let message = "device gone".into();
            return Err(JobError { code: ErrorCode::ReadbackFailed, message, details: vec![], told: false });
        }
        let cancelled = self.flag.is_cancelled();
        let stop_reason = if cancelled { StopReason::Cancelled } else { StopReason::MaxTokens };
        let done = DoneStats {
            text: text.clone(),
            prompt_tokens: 2,
            cached_tokens: 0,
            generated_tokens: n,
            ttft_ms: 1.0,
            prefill_tokens_per_second: 1.0,
            decode_tokens_per_second: 1.0,
            stop_reason,
        };
        self.status.done(done, Some(key));
        if cancelled {
            let details = vec![("text", Detail::Text(text))];
            let message = "Generation was cancelled.".into();
            return Err(JobError { code: ErrorCode::Aborted, message, details, told: false });
        }
        Ok(text)
    }

    fn resolve(&self, result: TaskResult<String>) -> Result<(), JobError> {
        *self.outcome.borrow_mut() = Some(Ok(result));
        Ok(())
    }

    fn fail(&self, error: JobError) {
        *self.outcome.borrow_mut() = Some(Err(error));
    }
}

type FakeExecutor = Executor<crate::manager::testing::FakeEngine, FakeJob>;

struct Tasks {
    h: Harness,
    executor: Rc<FakeExecutor>,
}

impl Tasks {
    fn new(h: Harness) -> Tasks {
        let executor = Executor::new(h.lifecycle.clone());
        Tasks { h, executor }
    }

    /// Queues a job of `tokens` tokens on `key` and starts the pump (it runs once the pool does).
    fn enqueue(&self, key: &str, priority: i32, tokens: u32) -> (u64, Outcome) {
        self.enqueue_job(key, priority, self.job(tokens))
    }

    fn job(&self, tokens: u32) -> FakeJob {
        FakeJob {
            tokens,
            bad: false,
            fault: false,
            flag: Flag::default(),
            gate: RefCell::default(),
            status: self.h.lifecycle.status().clone(),
            outcome: Rc::default(),
        }
    }

    fn enqueue_job(&self, key: &str, priority: i32, job: FakeJob) -> (u64, Outcome) {
        let outcome = job.outcome.clone();
        let key = self.executor.model_for(Some(key.to_owned())).unwrap();
        let id = self.executor.push(key, priority, job);
        self.h.spawn(self.executor.clone().pump());
        (id, outcome)
    }

    /// The events since `mark` as the page test writes them: `info:<key>:<text>` for the loading
    /// steps, `token:<key>` (once per run of tokens), `done:<key>`, `error:<key>`.
    fn timeline_since(&self, mark: usize) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.h.recorder.events()[mark..] {
            let key = e.model_key.clone().unwrap_or_default();
            let item = match &e.payload {
                Payload::Info(m) if m.starts_with("Loading model") || m.ends_with("is already loaded.") => {
                    format!("info:{key}:{m}")
                }
                Payload::Token(_) => format!("token:{key}"),
                Payload::Done(_) => format!("done:{key}"),
                Payload::Error(_) => format!("error:{key}"),
                _ => continue,
            };
            if !(item.starts_with("token:") && out.last() == Some(&item)) {
                out.push(item);
            }
        }
        out
    }
}

fn settled(outcome: &Outcome) -> Result<TaskResult<String>, JobError> {
    outcome.borrow().clone().expect("the task settled")
}

#[test]
fn tasks_run_by_priority_loading_before_their_tokens_and_a_failing_task_does_not_stall_the_queue() {
    let mut t = Tasks::new(roomy());
    let (i1, r1) = t.enqueue("a", 0, 4);
    let (i2, r2) = t.enqueue("b", 0, 4);
    let (i3, r3) = t.enqueue("a", 5, 4);
    let bad = FakeJob { bad: true, ..t.job(4) };
    let (ib, rb) = t.enqueue_job("b", 1, bad);
    let pending = t.executor.pending();
    assert_eq!(pending.iter().map(|p| p.id).collect::<Vec<_>>(), [i3, ib, i1, i2], "priority, then first in first out");
    assert_eq!(pending.iter().map(|p| p.priority).collect::<Vec<_>>(), [5, 1, 0, 0]);
    assert_eq!(pending[0].model_key, "a");
    t.h.pool.run_until_stalled();
    assert_eq!(
        t.timeline_since(0),
        [
            "info:a:Loading model a...",
            "token:a",
            "done:a", // t3 (priority 5)
            "info:b:Loading model b...",
            "error:b", // the bad one (priority 1) fails
            "info:a:Model a is already loaded.",
            "token:a",
            "done:a", // t1
            "info:b:Model b is already loaded.",
            "token:b",
            "done:b", // t2
        ]
    );
    for (id, outcome, key) in [(i1, &r1, "a"), (i2, &r2, "b"), (i3, &r3, "a")] {
        let r = settled(outcome).unwrap();
        assert_eq!((r.task_id, r.model_key.as_str(), r.generation.as_str()), (id, key, "t0 t1 t2 t3 "));
    }
    let e = settled(&rb).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidParams);
    assert_eq!(
        t.h.errors_since(0),
        [(
            "InvalidInputError".to_owned(),
            format!("Task {ib} (b) failed: temperature must be at least 0 (got -1)."),
            Some("b".to_owned())
        )]
    );
    assert!(t.executor.pending().is_empty());
    assert_eq!(t.executor.running(), None);
    assert_eq!(t.h.lifecycle.tasks_running(), 0);
}

#[test]
fn a_task_whose_model_fails_to_load_is_one_error_event_and_the_next_task_runs() {
    let mut t = Tasks::new(roomy());
    t.h.switch("a").unwrap();
    t.h.engine().load_errors.borrow_mut().insert("b".into(), FakeError::download("HTTP 404"));
    let mark = t.h.mark();
    let (_, failed) = t.enqueue("b", 0, 3);
    let (_, next) = t.enqueue("a", 0, 3);
    t.h.pool.run_until_stalled();
    let e = settled(&failed).unwrap_err();
    assert_eq!(e.code, ErrorCode::HttpStatus);
    assert!(e.told, "the lifecycle told the failed load");
    let errors = t.h.errors_since(mark);
    assert_eq!(errors.len(), 1, "one error event, the load's: {errors:?}");
    assert_eq!(errors[0].2.as_deref(), Some("b"));
    assert_eq!(settled(&next).unwrap().generation, "t0 t1 t2 ");
    assert_eq!(t.h.lifecycle.current().as_deref(), Some("a"), "the previous model stays current");
}

#[test]
fn cancelling_a_waiting_task_and_a_running_one_while_a_preload_yields_to_them() {
    let mut t = Tasks::new(roomy());
    t.h.switch("a").unwrap();
    let (gate, held) = oneshot::channel();
    let long = FakeJob { gate: RefCell::new(Some(held)), ..t.job(100) };
    let (long_id, long_out) = t.enqueue_job("a", 0, long);
    let (waiting_id, waiting_out) = t.enqueue("a", 0, 3);
    let (_, next_out) = t.enqueue("a", 0, 3);
    let mark = t.h.mark();
    assert!(t.executor.cancel(waiting_id));
    let e = settled(&waiting_out).unwrap_err();
    assert_eq!(e.code, ErrorCode::Aborted);
    assert_eq!(e.message, format!("Task {waiting_id} (a) was cancelled before it started."));
    assert_eq!(e.details, [("taskId", Detail::from(waiting_id)), ("modelKey", Detail::from("a"))]);
    assert_eq!(t.h.infos_since(mark), [format!("Task {waiting_id} (a) cancelled before it started.")]);
    assert!(!t.executor.cancel(waiting_id), "gone from the queue");

    let preload = t.h.spawn(t.h.lifecycle.preload("b", None));
    t.h.pool.run_until_stalled();
    assert_eq!(t.executor.running(), Some(long_id), "the long task holds after its first token");
    assert!(preload.borrow().is_none(), "the preload waits for the running task");
    assert!(t.executor.cancel(long_id));
    gate.send(()).unwrap();
    t.h.pool.run_until_stalled();

    let e = settled(&long_out).unwrap_err();
    assert_eq!(e.code, ErrorCode::Aborted);
    assert_eq!(e.details, [("text", Detail::Text("t0 ".into()))], "the cancelled task keeps its text");
    assert_eq!(settled(&next_out).unwrap().generation, "t0 t1 t2 ");
    assert!(t.h.errors_since(mark).is_empty(), "a cancelled task is no error event");
    // The preload loaded only after both tasks were done.
    let events = t.h.recorder.events();
    let loading = events.iter().position(|e| matches!(&e.payload, Payload::Info(m) if m == "Loading model b..."));
    let done_before = events[..loading.unwrap()].iter().filter(|e| matches!(e.payload, Payload::Done(_))).count();
    assert_eq!(done_before, 2);
    assert_eq!(preload.borrow_mut().take().unwrap().unwrap().key, "b");
    assert_eq!(t.h.lifecycle.current().as_deref(), Some("a"), "a preload does not change the current model");
}

#[test]
fn a_task_cancelled_while_its_model_loads_fails_and_the_previous_model_stays() {
    let mut t = Tasks::new(roomy());
    t.h.switch("a").unwrap();
    let gate = t.h.hold("b");
    let (id, out) = t.enqueue("b", 0, 3);
    t.h.pool.run_until_stalled();
    assert_eq!(t.h.lifecycle.loading().as_deref(), Some("b"));
    let mark = t.h.mark();
    assert!(t.executor.cancel(id));
    gate.send(()).unwrap();
    t.h.pool.run_until_stalled();
    let e = settled(&out).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (ErrorCode::Aborted, &*format!("Task {id} (b) was cancelled while its model loaded."))
    );
    // Only the lifecycle's own cancellation is told.
    let errors = t.h.errors_since(mark);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, "CancelledError");
    assert_eq!(t.h.lifecycle.current().as_deref(), Some("a"));
    assert!(!t.h.lifecycle.is_loaded("b"));
}

#[test]
fn a_task_needs_a_known_model_and_takes_the_current_one_by_default() {
    let mut t = Tasks::new(roomy());
    let e = t.executor.model_for(None).unwrap_err();
    assert_eq!((e.code(), e.message()), (ErrorCode::NoModel, "enqueue: give `modelKey` (no model is current).".into()));
    let e = t.executor.model_for(Some("nope".into())).unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnknownModel);
    t.h.switch("b").unwrap();
    assert_eq!(t.executor.model_for(None).unwrap(), "b");
    assert!(t.executor.pending().is_empty());
    assert!(!t.executor.cancel(42), "no such task");
}

#[test]
fn device_loss_during_a_task_fails_it_and_the_next_task_runs_on_a_new_device() {
    let mut t = Tasks::new(roomy());
    t.h.switch("a").unwrap();
    let (gate, held) = oneshot::channel();
    let (id, out) = t.enqueue_job("a", 0, FakeJob { gate: RefCell::new(Some(held)), ..t.job(5) });
    t.h.pool.run_until_stalled();
    t.h.lifecycle.device_lost(0, "Destroyed");
    gate.send(()).unwrap();
    t.h.pool.run_until_stalled();
    let e = settled(&out).unwrap_err();
    assert_eq!(e.code, ErrorCode::DeviceLost);
    assert_eq!(e.details, [("taskId", Detail::from(id))]);
    // The loss is told once, by the lifecycle; the task's own rejection adds no event.
    let errors = t.h.errors_since(0);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "DeviceLostError");
    assert!(errors[0].1.starts_with("The GPU device was lost (Destroyed)."), "{errors:?}");
    let mark = t.h.mark();
    let (_, next) = t.enqueue("a", 0, 2);
    t.h.pool.run_until_stalled();
    assert_eq!(settled(&next).unwrap().generation, "t0 t1 ");
    assert_eq!(t.h.infos_since(mark)[0], "Re-created the WebGPU device after the loss (generation 1).");
}

#[test]
fn a_generation_fault_the_session_told_is_one_error_event_and_the_queue_goes_on() {
    let mut t = Tasks::new(roomy());
    t.h.switch("a").unwrap();
    let mark = t.h.mark();
    let (_, failing) = t.enqueue_job("a", 0, FakeJob { fault: true, ..t.job(2) });
    let (_, next) = t.enqueue("a", 0, 2);
    t.h.pool.run_until_stalled();
    let e = settled(&failing).unwrap_err();
    assert_eq!(e.code, ErrorCode::GpuError);
    assert_eq!(
        t.h.errors_since(mark),
        [("GpuError".to_owned(), "The GPU reported an error while running a.".to_owned(), Some("a".to_owned()))],
        "the session's event only, not a second one for the task"
    );
    assert_eq!(settled(&next).unwrap().generation, "t0 t1 ");
}
