//! What a web app manages beyond one model: the catalog of models it may load, and the queue
//! of generation tasks across them.
//!
//! Plain Rust, tested natively. The web layer (`web::manager`, `web::executor`) drives them:
//! `ModelManager` looks models up in the [`Catalog`], asks the memory manager whether they fit
//! and which catalog models would fit instead ([`Catalog::suggestions`]); `TaskExecutor` keeps
//! its tasks in a [`TaskQueue`] (higher priority first, first in first out within a priority).

mod catalog;
mod queue;

pub use catalog::{BUILTIN_CATALOG, Catalog, CatalogEntry, CatalogError, DEFAULT_MODEL_KEY, Suggestion};
pub use queue::{Queued, TaskQueue};

#[cfg(test)]
mod tests;
