//! What a web app manages beyond one model: the catalog of models it may load, the lifecycle
//! of those models, and the queue of generation tasks across them.
//!
//! Plain Rust, tested natively. [`ModelLifecycle`] owns the ModelManager's flow (switch, LRU
//! eviction, suggestions, autoFallback, preload, one load per key in call order, cancellation
//! that keeps the previous model, device loss) over an [`Engine`] trait; the web layer
//! (`web::manager`) implements the engine with the browser's loader and converts JS values and
//! errors. The `TaskExecutor`'s flow is the [`Executor`] (tasks in a [`TaskQueue`]: higher
//! priority first, first in first out within a priority; each switches to its model through
//! the lifecycle, then generates) over a [`Job`] the web layer implements; [`task`] keeps the
//! bookkeeping (the token channel, results, task errors).

mod catalog;
mod engine;
mod error;
mod executor;
mod files;
mod lifecycle;
mod options;
mod queue;
pub mod task;

pub use catalog::{BUILTIN_CATALOG, Catalog, CatalogEntry, CatalogError, DEFAULT_MODEL_KEY, Suggestion};
pub use engine::{Cancel, Engine, Resident};
pub use error::{BusyWith, EngineError, FailureKind, LoadFailure, ManagerError};
pub use executor::{Executor, Job};
pub use files::FileBook;
pub use lifecycle::{CatalogRow, Fit, ModelLifecycle, ResidentModel, Settings, Switched};
pub use options::{LoadedRow, ManagerOptions};
pub use queue::{Cancelled, Queued, TaskQueue, TaskRunner};

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
