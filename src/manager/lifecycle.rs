//! [`ModelLifecycle`]: the ModelManager's flow over the catalog, the memory account and an
//! [`Engine`] that opens and loads models.
//!
//! Every switch, preload and unload is an *operation* in one first-in-first-out chain: each
//! waits for the one before it, so calls for different keys run in call order and the state
//! (the current model, the resident models, the memory account) is only ever changed by one of
//! them at a time. A call for a key that already has an operation waiting or running joins it
//! (the same shared future), so nothing is loaded twice. An operation that fails leaves the
//! state as it found it: a failed load drops what it uploaded and the previous model stays
//! current.
//!
//! The sequence of a switch to `key` (status events in this order):
//! - already resident: `touch`, "Model <key> is already loaded.", done;
//! - "Checking memory for <key>..." (the engine reads the header, the exact requirement is
//!   computed and checked against the budget and every limit);
//! - if it does not fit: unload least-recently-used unpinned idle models when that makes room
//!   ("Unloading <k> to make room for <key>."), otherwise an `error` event "Cannot load <key>:
//!   Not enough VRAM (available: …, required: …)" and [`ManagerError::DoesNotFit`] with the
//!   figures and suggestions (with `auto_fallback`, the best suggestion is loaded instead, and
//!   an `info` says so);
//! - "Loading model <key>...", the engine's own progress, register + `metrics`, "Model <key>
//!   loaded successfully.".
//!
//! Plain Rust over small traits ([`Engine`], [`Resident`], [`Cancel`]), single-threaded (`Cell` and
//! `RefCell` inside, no borrow held across an `await`), tested natively with a fake engine.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::rc::Rc;

use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::{LocalBoxFuture, Shared};
use serde::Serialize;

use crate::memory::{CanLoad, LoadedModel, MemoryManager, Requirement, format_bytes};
use crate::status::StatusStream;

use super::catalog::{CATALOG_CONTEXT, Catalog, CatalogEntry, Suggestion};
use super::engine::{Cancel, Engine, Resident};
use super::error::{BusyWith, EngineError, FailureKind, LoadFailure, ManagerError};
use super::options::LoadedRow;

/// How a lifecycle behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The context models are loaded with (clamped to each model's own); default 2048.
    pub context_length: Option<u32>,
    /// Load the best suggestion when a model cannot be loaded.
    pub auto_fallback: bool,
    /// Unload least-recently-used unpinned idle models to make room.
    pub evict: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { context_length: None, auto_fallback: false, evict: true }
    }
}

/// What `canLoadModel` answers: the memory account's answer, the suggestions when it cannot
/// load, and whether the requirement is exact (from the header) or the catalog's estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fit {
    #[serde(flatten)]
    pub can_load: CanLoad,
    pub suggestions: Vec<Suggestion>,
    pub exact: bool,
}

/// A catalog entry with what [`ModelLifecycle::fit`] says about it now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogRow {
    #[serde(flatten)]
    pub entry: CatalogEntry,
    pub loaded: bool,
    /// Whether the figure below comes from the file's header (else the catalog).
    pub exact: bool,
    pub fit: CanLoad,
}

/// A resident model with its account entry.
#[derive(Debug, Clone)]
pub struct ResidentModel<M> {
    pub account: LoadedModel,
    pub current: bool,
    pub model: M,
}

/// What a switch or preload ends with: the model made current (or loaded), which is the asked
/// one or, with `auto_fallback`, its fallback.
#[derive(Debug, Clone)]
pub struct Switched<M> {
    pub key: String,
    /// A handle on the model as it was when the operation ended.
    pub model: M,
}

type Outcome<E> = Result<Switched<<E as Engine>::Model>, ManagerError<<E as Engine>::Error>>;
type Unloaded<E> = Result<bool, ManagerError<<E as Engine>::Error>>;
/// An operation of the chain, shared by every caller that joins it.
type Op<T> = Shared<LocalBoxFuture<'static, T>>;
/// The waiting or running operations of one kind, by key.
type Ops<T> = RefCell<HashMap<String, Op<T>>>;

/// The model lifecycle of a ModelManager. See the [module docs](self). Held in an `Rc`: the
/// operations it chains own a handle on it.
pub struct ModelLifecycle<E: Engine> {
    engine: E,
    status: Rc<StatusStream>,
    settings: Settings,
    catalog: RefCell<Catalog>,
    models: RefCell<BTreeMap<String, E::Model>>,
    current: RefCell<Option<String>>,
    /// The key being loaded now, if any.
    loading: RefCell<Option<String>>,
    /// The waiting or running switch or preload of each key (`key`, `preload:key`).
    loads: Ops<Outcome<E>>,
    /// The waiting or running unload of each key.
    unloads: Ops<Unloaded<E>>,
    /// The end of the last operation of the chain.
    tail: RefCell<Option<Op<()>>>,
    /// Tasks running now; preloads wait for none.
    generating: Cell<u32>,
    idle_waiters: RefCell<Vec<oneshot::Sender<()>>>,
    /// The device generation the models live on.
    generation: Cell<u32>,
    /// The device was lost; the next operation re-creates it.
    lost: Cell<bool>,
}

impl<E: Engine> ModelLifecycle<E> {
    /// A lifecycle over `engine`, telling every step on `status`; the models live on device
    /// `generation`.
    pub fn new(engine: E, status: Rc<StatusStream>, catalog: Catalog, settings: Settings, generation: u32) -> Rc<Self> {
        Rc::new(ModelLifecycle {
            engine,
            status,
            settings,
            catalog: RefCell::new(catalog),
            models: RefCell::default(),
            current: RefCell::default(),
            loading: RefCell::default(),
            loads: RefCell::default(),
            unloads: RefCell::default(),
            tail: RefCell::default(),
            generating: Cell::new(0),
            idle_waiters: RefCell::default(),
            generation: Cell::new(generation),
            lost: Cell::new(false),
        })
    }

    pub fn engine(&self) -> &E {
        &self.engine
    }

    pub fn status(&self) -> &Rc<StatusStream> {
        &self.status
    }

    fn memory(&self) -> &MemoryManager {
        self.engine.memory()
    }

    fn info(&self, message: String, key: &str) {
        self.status.info(message, Some(key));
    }

    fn context(&self) -> u32 {
        self.settings.context_length.unwrap_or(CATALOG_CONTEXT)
    }

    // ---------------------------------------------------------------------------------------
    // Reading the state

    /// The catalog as it is now.
    pub fn catalog(&self) -> Catalog {
        self.catalog.borrow().clone()
    }

    /// `key`'s catalog entry.
    pub fn lookup(&self, key: &str) -> Result<CatalogEntry, ManagerError<E::Error>> {
        self.catalog.borrow().lookup(key).cloned().map_err(ManagerError::Catalog)
    }

    /// The requirement of `entry` at this lifecycle's context: exact once its header was read,
    /// else the catalog's figure.
    pub fn requirement(&self, entry: &CatalogEntry) -> (Requirement, bool) {
        let context = self.context().min(entry.context_length).max(1);
        match self.engine.exact_requirement(entry, context) {
            Some(r) => (r, true),
            None => (entry.requirement(context), false),
        }
    }

    /// Whether `key` is resident.
    pub fn is_loaded(&self, key: &str) -> bool {
        self.models.borrow().get(key).is_some_and(|m| !m.is_disposed())
    }

    /// The resident model `key`.
    pub fn model(&self, key: &str) -> Option<E::Model> {
        self.models.borrow().get(key).filter(|m| !m.is_disposed()).cloned()
    }

    /// The current model's key, if it is resident.
    pub fn current(&self) -> Option<String> {
        self.current.borrow().clone().filter(|k| self.is_loaded(k))
    }

    /// The current model's key as last set (a task's default model).
    pub fn current_key(&self) -> Option<String> {
        self.current.borrow().clone()
    }

    /// The key being loaded now.
    pub fn loading(&self) -> Option<String> {
        self.loading.borrow().clone()
    }

    /// Whether a current model is resident and no load is running.
    pub fn is_ready(&self) -> bool {
        self.loading.borrow().is_none() && self.current().is_some()
    }

    /// Whether the device was lost (and not re-created yet).
    pub fn is_lost(&self) -> bool {
        self.lost.get()
    }

    /// Whether an operation for `key` is waiting or running.
    pub fn is_busy(&self, key: &str) -> bool {
        self.loads.borrow().contains_key(key)
    }

    /// The resident models, least recently used first.
    pub fn resident(&self) -> Vec<ResidentModel<E::Model>> {
        self.prune_disposed();
        let stats = self.memory().stats(None, None);
        let current = self.current.borrow().clone();
        let models = self.models.borrow();
        stats
            .loaded
            .into_iter()
            .filter_map(|account| {
                let model = models.get(&account.key)?.clone();
                let current = current.as_deref() == Some(account.key.as_str());
                Some(ResidentModel { account, current, model })
            })
            .collect()
    }

    /// The resident models as `loadedModels()` lists them, least recently used first.
    pub fn loaded_rows(&self) -> Vec<LoadedRow> {
        let rows = self.resident().into_iter().map(|r| {
            let backend = r.model.backend();
            r.row(backend)
        });
        rows.collect()
    }

    /// Catalog models that fit now (or after eviction, when it is allowed), best first.
    pub fn suggestions(&self, failed: &str) -> Vec<Suggestion> {
        let catalog = self.catalog();
        catalog.suggestions(failed, |e| {
            if self.models.borrow().contains_key(&e.key) {
                return None;
            }
            let (r, _) = self.requirement(e);
            let fit = self.memory().can_load(&e.key, &r);
            (fit.can || (self.settings.evict && fit.fits_after_eviction)).then_some(r.total_bytes)
        })
    }

    /// What the memory account answers for catalog model `key` now, with suggestions when it
    /// cannot load.
    pub fn fit(&self, key: &str) -> Result<Fit, ManagerError<E::Error>> {
        let entry = self.lookup(key)?;
        let (r, exact) = self.requirement(&entry);
        let can_load = self.memory().can_load(key, &r);
        let suggestions = if can_load.can { Vec::new() } else { self.suggestions(key) };
        Ok(Fit { can_load, suggestions, exact })
    }

    /// The catalog, each entry with what [`Self::fit`] says about it now.
    pub fn catalog_rows(&self) -> Vec<CatalogRow> {
        let catalog = self.catalog();
        catalog
            .entries()
            .iter()
            .map(|entry| {
                let (r, exact) = self.requirement(entry);
                CatalogRow {
                    entry: entry.clone(),
                    loaded: self.is_loaded(&entry.key),
                    exact,
                    fit: self.memory().can_load(&entry.key, &r),
                }
            })
            .collect()
    }

    // ---------------------------------------------------------------------------------------
    // Changing the catalog and the task count

    /// Adds `entry` to the catalog or replaces the entry with its key (`needs_url`: false for
    /// an entry whose file the app supplies). Refused while its model is being loaded.
    pub fn register(&self, entry: CatalogEntry, needs_url: bool) -> Result<(), ManagerError<E::Error>> {
        if self.is_busy(&entry.key) {
            return Err(ManagerError::Busy { key: entry.key, with: BusyWith::Loading });
        }
        self.catalog.borrow_mut().register(entry, needs_url).map(|_| ()).map_err(ManagerError::Catalog)
    }

    /// A task started generating (preloads wait until none runs).
    pub fn task_started(&self) {
        self.generating.set(self.generating.get() + 1);
    }

    /// A task finished; when none runs any more, the waiting preloads go on.
    pub fn task_finished(&self) {
        self.generating.set(self.generating.get().saturating_sub(1));
        if self.generating.get() == 0 {
            let waiters = std::mem::take(&mut *self.idle_waiters.borrow_mut());
            for tx in waiters {
                let _ = tx.send(());
            }
        }
    }

    /// The number of tasks running now.
    pub fn tasks_running(&self) -> u32 {
        self.generating.get()
    }

    /// Resolves when no task is running.
    async fn idle(&self) {
        while self.generating.get() > 0 {
            let (tx, rx) = oneshot::channel();
            self.idle_waiters.borrow_mut().push(tx);
            let _ = rx.await;
        }
    }

    // ---------------------------------------------------------------------------------------
    // The operations

    /// Makes `key` the current model, loading it first when it is not resident (see the
    /// [module docs](self)). Takes its turn in the chain now; a second call for `key` while one
    /// waits or runs joins it. Resolves with the model made current (a fallback with
    /// `auto_fallback`).
    pub fn switch(self: &Rc<Self>, key: &str, signal: Option<E::Signal>) -> Op<Outcome<E>> {
        let owned = key.to_owned();
        self.enqueue(|l| &l.loads, key, move |this| this.switch_now(owned, signal, true, true))
    }

    /// [`Self::switch`] to `key`, then "Model <key> initialized and ready." (`ModelManager.init`).
    pub fn init(self: &Rc<Self>, key: &str, signal: Option<E::Signal>) -> impl Future<Output = Outcome<E>> + use<E> {
        let switched = self.switch(key, signal);
        let status = self.status.clone();
        async move {
            let done = switched.await?;
            status.info(format!("Model {} initialized and ready.", done.key), Some(&done.key));
            Ok(done)
        }
    }

    /// Loads `key` without making it current, once no task runs (it yields to generation: it
    /// waits outside the chain, so a task's own switch is never stuck behind it), then in its
    /// turn like any load.
    pub fn preload(self: &Rc<Self>, key: &str, signal: Option<E::Signal>) -> impl Future<Output = Outcome<E>> + use<E> {
        let this = self.clone();
        let key = key.to_owned();
        async move {
            this.idle().await;
            let op_key = format!("preload:{key}");
            this.enqueue(|l| &l.loads, &op_key, move |this| this.switch_now(key, signal, false, true)).await
        }
    }

    /// Unloads `key` in its turn: disposes it, returns its memory (a `metrics` event), "Model
    /// <key> unloaded.". `false` if it was not resident; refused while it is generating.
    pub fn unload(self: &Rc<Self>, key: &str) -> Op<Unloaded<E>> {
        let owned = key.to_owned();
        self.enqueue(
            |l| &l.unloads,
            key,
            move |this| {
                async move {
                    if this.models.borrow().get(&owned).is_some_and(Resident::is_generating) {
                        return Err(ManagerError::Busy { key: owned, with: BusyWith::Generating });
                    }
                    Ok(this.unload_now(&owned))
                }
                .boxed_local()
            },
        )
    }

    /// Reads `key`'s header (no weights), so that [`Self::fit`] and [`Self::catalog_rows`]
    /// give the exact requirement. Outside the chain: it changes no state.
    pub async fn check(&self, key: &str, signal: Option<&E::Signal>) -> Result<Fit, ManagerError<E::Error>> {
        let entry = self.lookup(key)?;
        self.engine.open(&entry, signal).await.map_err(ManagerError::Engine)?;
        self.fit(key)
    }

    /// Runs `work` after every operation queued before it; a call for `key` while one of the
    /// same kind (`ops`) waits or runs gets the same result.
    fn enqueue<T: Clone + 'static>(
        self: &Rc<Self>,
        ops: fn(&Self) -> &Ops<T>,
        key: &str,
        work: impl FnOnce(Rc<Self>) -> LocalBoxFuture<'static, T> + 'static,
    ) -> Op<T> {
        if let Some(op) = ops(self).borrow().get(key).cloned() {
            return op;
        }
        let before = self.tail.borrow().clone();
        let this = self.clone();
        let owned_key = key.to_owned();
        let op: Op<T> = async move {
            if let Some(before) = before {
                before.await;
            }
            let result = work(this.clone()).await;
            ops(&this).borrow_mut().remove(&owned_key);
            result
        }
        .boxed_local()
        .shared();
        ops(self).borrow_mut().insert(key.to_owned(), op.clone());
        *self.tail.borrow_mut() = Some(op.clone().map(|_| ()).boxed_local().shared());
        op
    }

    /// The switch or preload of `key`, run in its turn. `make_current`: a switch (else a
    /// preload); `fallback`: whether `auto_fallback` may load a suggestion instead.
    fn switch_now(
        self: Rc<Self>,
        key: String,
        signal: Option<E::Signal>,
        make_current: bool,
        fallback: bool,
    ) -> LocalBoxFuture<'static, Outcome<E>> {
        async move {
            self.prune_disposed();
            if signal.as_ref().is_some_and(Cancel::is_cancelled) {
                return Err(self.cancelled(&key, "before it started"));
            }
            if self.lost.get() {
                self.recover().await?;
            }
            if let Some(model) = self.model(&key) {
                self.memory().touch(&key, self.engine.now_ms());
                if make_current {
                    *self.current.borrow_mut() = Some(key.clone());
                }
                self.info(format!("Model {key} is already loaded."), &key);
                return Ok(Switched { key, model });
            }
            let entry = self.lookup(&key)?;
            self.info(format!("Checking memory for {key}..."), &key);
            if let Err(e) = self.engine.open(&entry, signal.as_ref()).await {
                return self.failed(&key, LoadFailure::Engine(e), signal, make_current, fallback).await;
            }
            let (requirement, _) = self.requirement(&entry);
            let fit = self.memory().can_load(&key, &requirement);
            if !fit.can {
                match self.eviction_plan(&fit) {
                    Some(plan) => {
                        for victim in plan {
                            self.info(format!("Unloading {victim} to make room for {key}."), &key);
                            self.unload_now(&victim);
                        }
                    }
                    None => return self.refuse(&key, &fit, make_current, fallback, signal).await,
                }
            }
            *self.loading.borrow_mut() = Some(key.clone());
            self.info(format!("Loading model {key}..."), &key);
            let generation = self.generation.get();
            let loaded = self.engine.load(&entry, requirement.context, signal.as_ref()).await;
            *self.loading.borrow_mut() = None;
            let model = match loaded {
                Ok(model) => model,
                Err(e) => return self.failed(&key, LoadFailure::Engine(e), signal, make_current, fallback).await,
            };
            if self.lost.get() || self.generation.get() != generation {
                // The device went away during the upload: what was uploaded went with it.
                model.dispose();
                return self.failed(&key, LoadFailure::DeviceLost, signal, make_current, false).await;
            }
            let bytes = model.resident_bytes();
            self.models.borrow_mut().insert(key.clone(), model.clone());
            self.memory().register_loaded(&key, bytes, self.engine.now_ms());
            self.engine.report_memory(Some(&key));
            if make_current {
                *self.current.borrow_mut() = Some(key.clone());
            }
            self.info(format!("Model {key} loaded successfully."), &key);
            Ok(Switched { key, model })
        }
        .boxed_local()
    }

    /// Unpinned, idle models to unload, least recently used first, until `fit` is met; `None`
    /// when eviction is off, cannot help, or would have to touch a model that is generating.
    fn eviction_plan(&self, fit: &CanLoad) -> Option<Vec<String>> {
        if !self.settings.evict || !fit.fits_after_eviction {
            return None;
        }
        let models = self.models.borrow();
        self.memory()
            .plan_eviction_sparing(fit.required_bytes, |key| models.get(key).is_some_and(E::Model::is_generating))
    }

    /// The refusal: an `error` event and [`ManagerError::DoesNotFit`] with the figures and
    /// suggestions, or, with `auto_fallback`, the best suggestion loaded instead.
    async fn refuse(
        self: Rc<Self>,
        key: &str,
        fit: &CanLoad,
        make_current: bool,
        fallback: bool,
        signal: Option<E::Signal>,
    ) -> Outcome<E> {
        let suggestions = self.suggestions(key);
        let falls_back = self.settings.auto_fallback && fallback;
        let mut message = format!("Cannot load {key}: {}", fit.reason);
        if let Some(best) = suggestions.first() {
            let names: Vec<&str> = suggestions.iter().map(|s| s.key.as_str()).collect();
            message.push_str(&format!(
                ". Models that fit: {}.{}",
                names.join(", "),
                if falls_back { format!(" Loading {} instead.", best.key) } else { String::new() }
            ));
        }
        let best = suggestions.first().cloned();
        let error = ManagerError::DoesNotFit {
            key: key.to_owned(),
            reason: fit.reason.clone(),
            required_bytes: fit.required_bytes,
            available_bytes: fit.available_bytes,
            suggestions,
            message,
        };
        self.status.error(error.error_info(), Some(key));
        if falls_back && let Some(best) = best {
            self.info(
                format!("Falling back to {} (fits: {}).", best.key, format_bytes(best.required_bytes)),
                &best.key,
            );
            return self.clone().switch_now(best.key, signal, make_current, false).await;
        }
        Err(error)
    }

    /// A load that failed after it started: the error event (with suggestions for failures a
    /// smaller model could avoid), maybe the fallback, and the error with the state untouched.
    async fn failed(
        self: &Rc<Self>,
        key: &str,
        failure: LoadFailure<E::Error>,
        signal: Option<E::Signal>,
        make_current: bool,
        fallback: bool,
    ) -> Outcome<E> {
        let kind = match &failure {
            LoadFailure::Engine(e) => e.kind(),
            LoadFailure::DeviceLost => FailureKind::Other,
        };
        if kind == FailureKind::Cancelled || signal.as_ref().is_some_and(Cancel::is_cancelled) {
            return Err(self.cancelled(key, "while loading"));
        }
        let suggestions = self.suggestions(key);
        let best = suggestions.first().cloned();
        let error = ManagerError::LoadFailed { key: key.to_owned(), failure, suggestions };
        self.status.error(error.error_info(), Some(key));
        if self.settings.auto_fallback
            && fallback
            && kind != FailureKind::InvalidInput
            && let Some(best) = best
        {
            self.info(format!("Falling back to {}.", best.key), &best.key);
            return self.clone().switch_now(best.key, signal, make_current, false).await;
        }
        Err(error)
    }

    /// [`ManagerError::Cancelled`] for `key`, told on the status stream.
    fn cancelled(&self, key: &str, when: &str) -> ManagerError<E::Error> {
        let message = match self.current.borrow().as_deref() {
            Some(c) => format!("Loading {key} was cancelled {when}; {c} is still the current model."),
            None => format!("Loading {key} was cancelled {when}."),
        };
        let error = ManagerError::Cancelled { key: key.to_owned(), message };
        self.status.error(error.error_info(), Some(key));
        error
    }

    /// Unloads `key` now: forgets it (the account tells it), disposes it, says so. `false` if
    /// not resident.
    fn unload_now(&self, key: &str) -> bool {
        let Some(model) = self.forget(key) else { return false };
        self.engine.released(key);
        model.dispose();
        self.info(format!("Model {key} unloaded."), key);
        true
    }

    /// Takes `key` out of the resident models and the memory account (no longer current).
    fn forget(&self, key: &str) -> Option<E::Model> {
        let model = self.models.borrow_mut().remove(key)?;
        self.memory().register_unloaded(key);
        let mut current = self.current.borrow_mut();
        if current.as_deref() == Some(key) {
            *current = None;
        }
        Some(model)
    }

    /// Forgets models disposed behind the lifecycle's back.
    pub fn prune_disposed(&self) {
        let gone: Vec<String> =
            self.models.borrow().iter().filter(|(_, m)| m.is_disposed()).map(|(k, _)| k.clone()).collect();
        for key in gone {
            if self.forget(&key).is_some() {
                self.engine.released(&key);
            }
        }
    }
}

mod device;

#[cfg(test)]
mod tests;
