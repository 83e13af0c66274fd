//! [`TaskQueue`]: the order generation tasks run in.

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
