//! [`TaskQueue`]: the order generation tasks run in; [`TaskRunner`]: runs them one at a time.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

/// A task waiting in a [`TaskQueue`].
#[derive(Debug, Clone, PartialEq)]
pub struct Queued<T> {
    /// Unique in this queue, increasing in enqueue order (starts at 1).
    pub id: u64,
    pub priority: i32,
    pub item: T,
}

/// Tasks in run order: higher `priority` first, first in first out within a priority.
/// A stable priority queue small enough (tens of tasks) that a sorted `Vec` is the simplest
/// right structure: `push` inserts after every task of the same or higher priority.
#[derive(Debug)]
pub struct TaskQueue<T> {
    items: Vec<Queued<T>>,
    next_id: u64,
}

impl<T> Default for TaskQueue<T> {
    fn default() -> Self {
        TaskQueue { items: Vec::new(), next_id: 1 }
    }
}

impl<T> TaskQueue<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Enqueues `item`; returns its id.
    pub fn push(&mut self, priority: i32, item: T) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let at = self.items.iter().position(|q| q.priority < priority).unwrap_or(self.items.len());
        self.items.insert(at, Queued { id, priority, item });
        id
    }

    /// Takes the task that runs next.
    pub fn pop(&mut self) -> Option<Queued<T>> {
        (!self.items.is_empty()).then(|| self.items.remove(0))
    }

    /// Takes task `id` out of the queue (a cancelled task); `None` if it is not waiting.
    pub fn remove(&mut self, id: u64) -> Option<Queued<T>> {
        let at = self.items.iter().position(|q| q.id == id)?;
        Some(self.items.remove(at))
    }

    /// The waiting tasks, in the order they will run.
    pub fn pending(&self) -> impl Iterator<Item = &Queued<T>> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// What [`TaskRunner::cancel`] found.
#[derive(Debug)]
pub enum Cancelled<T> {
    /// The task was waiting: it left the queue, here it is.
    Waiting(T),
    /// The task is running: here it is, for the caller to stop (its signal).
    Running(Rc<T>),
    /// No such task (finished, or never queued).
    Unknown,
}

/// Runs queued tasks one at a time, in [`TaskQueue`] order: the pump of a `TaskExecutor`.
///
/// Single-threaded (`Cell`/`RefCell` inside, no borrow held across an `await`), so tasks can
/// be pushed, listed and cancelled while the pump awaits a running one.
#[derive(Debug)]
pub struct TaskRunner<T> {
    queue: RefCell<TaskQueue<T>>,
    /// The running task, shared with its run until it ends.
    running: RefCell<Option<(u64, Rc<T>)>>,
    pumping: Cell<bool>,
}

impl<T> Default for TaskRunner<T> {
    fn default() -> Self {
        TaskRunner { queue: RefCell::new(TaskQueue::new()), running: RefCell::new(None), pumping: Cell::new(false) }
    }
}

impl<T> TaskRunner<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `item`; returns its id. Start a [`Self::pump`] to run it.
    pub fn push(&self, priority: i32, item: T) -> u64 {
        self.queue.borrow_mut().push(priority, item)
    }

    /// The running task's id.
    pub fn running(&self) -> Option<u64> {
        self.running.borrow().as_ref().map(|(id, _)| *id)
    }

    /// The waiting tasks in run order, as `f` sees them.
    pub fn pending<R>(&self, mut f: impl FnMut(&Queued<T>) -> R) -> Vec<R> {
        self.queue.borrow().pending().map(&mut f).collect()
    }

    /// Takes task `id` out of the queue if it waits; says whether it runs instead.
    pub fn cancel(&self, id: u64) -> Cancelled<T> {
        if let Some(queued) = self.queue.borrow_mut().remove(id) {
            return Cancelled::Waiting(queued.item);
        }
        match &*self.running.borrow() {
            Some((running, task)) if *running == id => Cancelled::Running(task.clone()),
            _ => Cancelled::Unknown,
        }
    }

    /// Runs the queued tasks with `run`, one at a time, until the queue is empty (tasks pushed
    /// meanwhile included). Returns at once when a pump already runs: there is one per runner.
    /// The runner keeps the running task until its run ends (then drops its share).
    pub async fn pump<F: Future<Output = ()>>(&self, mut run: impl FnMut(u64, Rc<T>) -> F) {
        if self.pumping.replace(true) {
            return;
        }
        loop {
            let next = self.queue.borrow_mut().pop();
            let Some(queued) = next else { break };
            let task = Rc::new(queued.item);
            *self.running.borrow_mut() = Some((queued.id, task.clone()));
            run(queued.id, task).await;
            self.running.borrow_mut().take();
        }
        self.pumping.set(false);
    }
}
