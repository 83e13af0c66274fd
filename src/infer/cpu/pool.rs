//! A persistent pool of worker threads for the native matrix products (std only).
//!
//! Spawning threads per product costs tens of microseconds each, as much as a decode-sized
//! product itself, so the workers live as long as the [`super::Cpu`] and sleep on a condition
//! variable between products. [`Pool::run`] hands every worker the same closure with its part
//! index, runs part 0 on the calling thread and returns when every part is done, so the closure
//! may borrow from the caller's stack.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// The job of one [`Pool::run`], its lifetime erased: `run` does not return before every worker
/// is done with it.
#[derive(Clone, Copy)]
struct Job(*const (dyn Fn(usize) + Sync + 'static));

// SAFETY: the closure is `Sync`, and the pointer is only dereferenced while `Pool::run`, which
// owns the borrow, waits for the workers.
unsafe impl Send for Job {}

struct State {
    job: Option<Job>,
    /// Parts of the current job (workers with an index at or above it sit this one out).
    parts: usize,
    /// Bumped for every job, so a worker runs each job once.
    generation: u64,
    /// Workers still running the current job.
    pending: usize,
    /// A worker's panic, re-raised on the calling thread.
    panic: Option<Box<dyn std::any::Any + Send>>,
    quit: bool,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker's panic is caught before it could poison the lock; recover regardless.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A pointer the parts of a pooled product write through (each its own rows).
#[derive(Clone, Copy)]
pub struct SendPtr(pub *mut f32);

// SAFETY: the parts of a product write disjoint ranges (see `super::Cpu`'s `matmul`).
unsafe impl Sync for SendPtr {}

impl SendPtr {
    pub fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// Worker threads that run the parts of one closure at a time.
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("workers", &self.workers.len()).finish()
    }
}

impl Pool {
    /// A pool running `threads` parts at once: the caller and `threads - 1` workers.
    pub fn new(threads: usize) -> Pool {
        let shared = Arc::new(Shared {
            state: Mutex::new(State { job: None, parts: 0, generation: 0, pending: 0, panic: None, quit: false }),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let workers = (1..threads.max(1))
            .map(|index| {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || worker(&shared, index))
            })
            .collect();
        Pool { shared, workers }
    }

    /// Parts [`Self::run`] splits a job into.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(0)`, ..., `f(parts - 1)` (`parts` at most [`Self::threads`]), part 0 on this
    /// thread, and returns when all are done. A panic in a part is re-raised here.
    pub fn run(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        let parts = parts.clamp(1, self.threads());
        if parts == 1 {
            f(0);
            return;
        }
        // SAFETY: only the lifetime is erased; this function waits below until no worker
        // holds the pointer any more, so `f` outlives every use.
        let job = Job(unsafe {
            std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const (dyn Fn(usize) + Sync + 'static)>(f)
        });
        {
            let mut s = self.shared.lock();
            s.job = Some(job);
            s.parts = parts;
            s.pending = parts - 1;
            s.generation += 1;
        }
        self.shared.work.notify_all();
        let mine = catch_unwind(AssertUnwindSafe(|| f(0)));
        let mut s = self.shared.lock();
        while s.pending > 0 {
            s = self.shared.done.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.job = None;
        let theirs = s.panic.take();
        drop(s);
        if let Err(p) = mine {
            resume_unwind(p);
        }
        if let Some(p) = theirs {
            resume_unwind(p);
        }
    }
}

fn worker(shared: &Shared, index: usize) {
    let mut seen = 0u64;
    loop {
        let job = {
            let mut s = shared.lock();
            while s.generation == seen && !s.quit {
                s = shared.work.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            if s.quit {
                return;
            }
            seen = s.generation;
            match s.job {
                Some(job) if index < s.parts => job,
                _ => continue,
            }
        };
        // SAFETY: `Pool::run` keeps the closure alive until `pending` reaches zero below.
        let result = catch_unwind(AssertUnwindSafe(|| unsafe { (*job.0)(index) }));
        let mut s = shared.lock();
        if let Err(p) = result {
            s.panic.get_or_insert(p);
        }
        s.pending -= 1;
        if s.pending == 0 {
            shared.done.notify_one();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.lock().quit = true;
        self.shared.work.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_part_runs_once_per_job_and_borrows_work() {
        let pool = Pool::new(3);
        assert_eq!(pool.threads(), 3);
        for parts in [1, 2, 3, 7] {
            let mut out = vec![0usize; 3];
            let hits: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
            for round in 0..50 {
                pool.run(parts, &|i| {
                    hits[i].fetch_add(round, Ordering::Relaxed);
                });
            }
            let used = parts.min(3);
            for (i, o) in out.iter_mut().enumerate() {
                *o = hits[i].load(Ordering::Relaxed);
            }
            let want: Vec<usize> = (0..3).map(|i| if i < used { (0..50).sum() } else { 0 }).collect();
            assert_eq!(out, want, "parts {parts}");
        }
    }

    #[test]
    fn a_panicking_part_reaches_the_caller_and_the_pool_still_works() {
        let pool = Pool::new(2);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.run(2, &|i| {
                if i == 1 {
                    panic!("part 1");
                }
            })
        }));
        assert!(r.is_err());
        let n = AtomicUsize::new(0);
        pool.run(2, &|_| {
            n.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(n.load(Ordering::Relaxed), 2);
    }
}
