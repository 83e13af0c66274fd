//! `ModelManager`: the seed's load/switch flow over the catalog, the memory manager and
//! `LanguageModel`.
//!
//! Every load, switch, preload and unload is an *operation* in one first-in-first-out chain:
//! each waits for the one before it, so calls for different keys run in call order and the
//! state (`current`, the resident models, the memory account) is only ever changed by one of
//! them at a time. A call for a key that already has an operation waiting or running joins it
//! (the same promise), so nothing is loaded twice. An operation that fails leaves the state as
//! it found it: a failed load drops what it uploaded and the previous model stays current.
//!
//! The seed's sequence for `switchModel(key)` (status events in this order):
//! - already resident: `touch`, "Model <key> is already loaded.", done;
//! - "Checking memory for <key>..." (the header is read with Range requests, the exact
//!   requirement computed and checked against the budget and every limit);
//! - if it does not fit: unload least-recently-used unpinned models when that makes room
//!   ("Unloading <k> to make room for <key>."), otherwise an `error` event
//!   "Cannot load <key>: Not enough VRAM (available: …, required: …)" and a `ModelLoadError`
//!   with `reason`, `requiredBytes`, `availableBytes`, `suggestions` (with `autoFallback`, the
//!   best suggestion is loaded instead, and an `info` says so);
//! - "Loading model <key>...", `progress` (upload, at least every 1%), `metrics` (at least
//!   every 5%), `progress` (ready); register + touch (`metrics`); "Model <key> loaded
//!   successfully.".

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::{LocalBoxFuture, Shared};
use js_sys::{Promise, Reflect};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use web_sys::{AbortSignal, Blob};

use crate::infer::Shape;
use crate::manager::{Catalog, CatalogEntry, CatalogError, DEFAULT_MODEL_KEY, Suggestion};
use crate::memory::{CanLoad, Requirement, RequirementOptions, format_bytes};
use crate::model::ModelConfig;
use crate::status::{ErrorInfo, Phase, Progress, StatusStream};

use super::cache::{ModelCache, key_of};
use super::device::{Preference, acquire};
use super::error::{ErrorClass, JsError};
use super::gguf::GgufFile;
use super::memory::{MemoryManager, key_arg, to_js};
use super::model::{LanguageModel, LoadRequest, cancelled, runs_on_cpu_instead};
use super::source::ProgressReporter;
use super::streamer::SseStreamer;
use super::streamer::field;
use super::types::{BackendArg, ModelManagerOptionsArg, SwitchOptionsArg};

type Op = Shared<LocalBoxFuture<'static, Result<JsValue, JsValue>>>;

/// The state shared by the `ModelManager` and its `TaskExecutor`s.
pub(super) struct Inner {
    status: Rc<StatusStream>,
    streamer: SseStreamer,
    memory: MemoryManager,
    /// Resolved once at `create`: `Webgpu` or `Cpu`, never `Auto`.
    preference: Preference,
    context_length: Option<u32>,
    auto_fallback: bool,
    evict: bool,
    /// Whether model files go through the browser's model cache (OPFS).
    use_cache: bool,
    /// The cache, once opened (`Some(None)`: the browser has none).
    cache: RefCell<Option<Option<Rc<ModelCache>>>>,
    /// Keys whose file in `files` is the cached copy.
    cached: RefCell<std::collections::HashSet<String>>,
    catalog: RefCell<Catalog>,
    /// Files the app supplied for catalog keys (`registerModel({ ..., file })`).
    blobs: RefCell<HashMap<String, Blob>>,
    /// Opened files (their headers read), by key: the exact requirement replaces the catalog's.
    files: RefCell<HashMap<String, GgufFile>>,
    models: RefCell<BTreeMap<String, LanguageModel>>,
    current: RefCell<Option<String>>,
    /// The key being loaded now, if any.
    loading: RefCell<Option<String>>,
    /// The waiting or running operation of each key.
    in_flight: RefCell<HashMap<String, Op>>,
    /// The last operation of the chain.
    tail: RefCell<Option<Op>>,
    /// Tasks running now (`TaskExecutor`: from their switch to their last token); preloads wait
    /// for none.
    generating: Cell<u32>,
    idle_waiters: RefCell<Vec<oneshot::Sender<()>>>,
    /// The WebGPU device generation the models live on (see `device::generation`).
    generation: Cell<u32>,
    /// The device was lost; the next operation re-creates it.
    lost: Cell<bool>,
}

/// Loads, switches, preloads and unloads catalog models, narrating each step on the status
/// stream. Create with `await ModelManager.create(options)`.
#[wasm_bindgen]
pub struct ModelManager {
    inner: Rc<Inner>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct CreateOptions {
    context_length: Option<u32>,
    auto_fallback: bool,
    evict: Option<bool>,
    cache: Option<bool>,
    device_memory_gb: Option<f64>,
}

/// What `loadedModels()` lists.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LoadedInfo {
    key: String,
    bytes: u64,
    current: bool,
    pinned: bool,
    last_used: Option<f64>,
    backend: String,
}

/// A catalog entry with what `canLoadModel` says about it now.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CatalogRow<'a> {
    #[serde(flatten)]
    entry: &'a CatalogEntry,
    loaded: bool,
    /// Whether the figure below comes from the file's header (else the catalog).
    exact: bool,
    fit: CanLoad,
}

fn catalog_error(e: CatalogError) -> JsError {
    JsError::invalid_input(e.code(), e.to_string())
}

impl Inner {
    fn info(&self, message: String, key: &str) {
        self.status.info(message, Some(key));
    }

    fn error_event(&self, error: &JsError, key: Option<&str>) {
        let mut info = ErrorInfo::new(error.class_name(), error.message());
        info.code = Some(error.code().to_owned());
        self.status.error(info, key);
    }

    fn context(&self) -> u32 {
        self.context_length.unwrap_or(2048)
    }

    /// The requirement of `key` at this manager's context: exact once its header was read,
    /// else the catalog's figure.
    fn requirement(&self, entry: &CatalogEntry) -> (Requirement, bool) {
        let context = self.context().min(entry.context_length).max(1);
        if let Some(file) = self.files.borrow().get(&entry.key)
            && let Ok(cfg) = ModelConfig::from_gguf(file.header())
        {
            // The loader clamps the context to the model's own; so does the requirement.
            let context = context.min(cfg.context_length).max(1);
            let options = RequirementOptions { context, batch: Shape::for_context(context as usize).batch as u32 };
            if cfg.validate_tensors(file.header()).is_ok() {
                return (Requirement::for_config(&cfg, file.header(), options, &self.memory.core().limits()), true);
            }
        }
        (entry.requirement(context), false)
    }

    /// Catalog models that fit now (or after eviction, when it is allowed), best first.
    fn suggestions(&self, failed: &str) -> Vec<Suggestion> {
        let catalog = self.catalog.borrow().clone();
        catalog.suggestions(failed, |e| {
            if self.models.borrow().contains_key(&e.key) {
                return None;
            }
            let (r, _) = self.requirement(e);
            let fit = self.memory.core().can_load(&e.key, &r);
            (fit.can || (self.evict && fit.fits_after_eviction)).then_some(r.total_bytes)
        })
    }

    fn is_loaded(&self, key: &str) -> bool {
        self.models.borrow().get(key).is_some_and(|m| !m.is_disposed())
    }

    /// The browser lost the device the models live on: every model is gone with it. Says so
    /// (a `DeviceLostError` event), forgets them all and returns their accounting; the next
    /// operation re-creates the device.
    fn device_lost(&self, generation: u32, message: &str) {
        if generation != self.generation.get() || self.lost.replace(true) {
            return;
        }
        self.memory.device_lost();
        let models: Vec<(String, LanguageModel)> = std::mem::take(&mut *self.models.borrow_mut()).into_iter().collect();
        for (key, model) in &models {
            model.dispose();
            self.memory.core().register_unloaded(key);
        }
        *self.current.borrow_mut() = None;
        let names: Vec<&str> = models.iter().map(|(k, _)| k.as_str()).collect();
        let error = JsError::new(
            ErrorClass::DeviceLost,
            "DEVICE_LOST",
            format!(
                "The GPU device was lost ({message}). {} The next load re-creates the device.",
                if names.is_empty() {
                    "No model was loaded.".to_owned()
                } else {
                    format!("Every model on it was unloaded: {}.", names.join(", "))
                }
            ),
        );
        self.error_event(&error, None);
        self.memory.metrics(None);
    }

    /// After a loss: a new device (the next generation), and the memory account moved to it.
    async fn recover(&self) -> Result<(), JsError> {
        let backend = acquire(Preference::Webgpu, Some(self.status.clone())).await?;
        self.memory.rebind(backend.clone())?;
        self.generation.set(backend.generation);
        self.lost.set(false);
        self.status
            .info(format!("Re-created the WebGPU device after the loss (generation {}).", backend.generation), None);
        Ok(())
    }

    /// Forgets a model disposed from JS behind the manager's back.
    fn prune_disposed(&self) {
        let gone: Vec<String> =
            self.models.borrow().iter().filter(|(_, m)| m.is_disposed()).map(|(k, _)| k.clone()).collect();
        for key in gone {
            self.forget(&key);
        }
    }

    /// Takes `key` out of the resident models and the memory account (no longer current).
    fn forget(&self, key: &str) -> Option<LanguageModel> {
        let model = self.models.borrow_mut().remove(key)?;
        self.memory.unloaded(key);
        if self.current.borrow().as_deref() == Some(key) {
            *self.current.borrow_mut() = None;
        }
        Some(model)
    }

    /// Runs `work` after every operation queued before it; a second call for `key` while one
    /// waits or runs gets the same result.
    fn enqueue(
        self: &Rc<Self>,
        key: &str,
        work: impl FnOnce(Rc<Inner>) -> LocalBoxFuture<'static, Result<JsValue, JsError>> + 'static,
    ) -> Promise {
        if let Some(op) = self.in_flight.borrow().get(key).cloned() {
            return wasm_bindgen_futures::future_to_promise(op);
        }
        let before = self.tail.borrow().clone();
        let inner = self.clone();
        let owned_key = key.to_owned();
        let op: Op = async move {
            if let Some(before) = before {
                let _ = before.await;
            }
            let result = work(inner.clone()).await.map_err(JsValue::from);
            inner.in_flight.borrow_mut().remove(&owned_key);
            result
        }
        .boxed_local()
        .shared();
        self.in_flight.borrow_mut().insert(key.to_owned(), op.clone());
        *self.tail.borrow_mut() = Some(op.clone());
        wasm_bindgen_futures::future_to_promise(op)
    }

    /// Resolves when no task is running (a preload yields to the tasks).
    async fn idle(&self) {
        while self.generating.get() > 0 {
            let (tx, rx) = oneshot::channel();
            self.idle_waiters.borrow_mut().push(tx);
            let _ = rx.await;
        }
    }

    pub(super) fn task_started(&self) {
        self.generating.set(self.generating.get() + 1);
    }

    pub(super) fn task_finished(&self) {
        self.generating.set(self.generating.get().saturating_sub(1));
        if self.generating.get() == 0 {
            for tx in self.idle_waiters.borrow_mut().drain(..) {
                let _ = tx.send(());
            }
        }
    }

    /// The current model's key.
    pub(super) fn current_key(&self) -> Option<String> {
        self.current.borrow().clone()
    }

    /// An error unless `key` is in the catalog.
    pub(super) fn check_key(&self, key: &str) -> Result<(), JsError> {
        self.catalog.borrow().lookup(key).map(|_| ()).map_err(catalog_error)
    }

    /// Whether the device was lost (and not re-created yet).
    pub(super) fn is_lost(&self) -> bool {
        self.lost.get()
    }

    pub(super) fn status(&self) -> &Rc<StatusStream> {
        &self.status
    }

    /// The resident model `key`.
    pub(super) fn model(&self, key: &str) -> Option<LanguageModel> {
        self.models.borrow().get(key).filter(|m| !m.is_disposed()).map(LanguageModel::handle)
    }

    /// `switchModel` for the `TaskExecutor`: through the same chain, so a task's switch waits
    /// its turn behind (or joins) the app's own calls.
    pub(super) async fn switch_for_task(
        self: &Rc<Self>,
        key: &str,
        signal: Option<AbortSignal>,
    ) -> Result<(), JsValue> {
        let key_owned = key.to_owned();
        let promise = self.enqueue(key, move |inner| inner.switch_now(key_owned, signal, true, true));
        wasm_bindgen_futures::JsFuture::from(promise).await.map(|_| ())
    }

    /// The switch or preload of `key`, run in its turn. `make_current`: a switch (else a
    /// preload); `fallback`: whether `autoFallback` may load a suggestion instead.
    fn switch_now(
        self: Rc<Self>,
        key: String,
        signal: Option<AbortSignal>,
        make_current: bool,
        fallback: bool,
    ) -> LocalBoxFuture<'static, Result<JsValue, JsError>> {
        async move {
            self.prune_disposed();
            if cancelled(signal.as_ref()) {
                return Err(self.cancelled_error(&key, "before it started"));
            }
            if self.lost.get() {
                self.recover().await?;
            }
            if self.is_loaded(&key) {
                self.memory.core().touch(&key, super::memory::now_ms());
                if make_current {
                    *self.current.borrow_mut() = Some(key.clone());
                }
                self.info(format!("Model {key} is already loaded."), &key);
                return Ok(self.model_info(&key));
            }
            let entry = self.catalog.borrow().lookup(&key).map_err(catalog_error)?.clone();
            self.info(format!("Checking memory for {key}..."), &key);
            let file = match self.open(&entry, signal.as_ref()).await {
                Ok(file) => file,
                Err(e) => return self.failed(&key, e, signal.as_ref(), make_current, fallback).await,
            };
            let (requirement, _) = self.requirement(&entry);
            let fit = self.memory.core().can_load(&key, &requirement);
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
            let file = match self.through_cache(&entry, file, signal.as_ref()).await {
                Ok(file) => file,
                Err(e) => {
                    *self.loading.borrow_mut() = None;
                    return self.failed(&key, e, signal.as_ref(), make_current, fallback).await;
                }
            };
            let request = LoadRequest {
                preference: self.preference,
                context_length: Some(requirement.context),
                key: Some(key.clone()),
                signal: signal.clone(),
                on_progress: None,
                announce: false,
            };
            let generation = self.generation.get();
            let loaded = LanguageModel::load_with(&file, Some(self.status.clone()), request).await;
            *self.loading.borrow_mut() = None;
            let model = match loaded {
                Ok(model) => model,
                Err(e) => return self.failed(&key, e, signal.as_ref(), make_current, fallback).await,
            };
            if self.lost.get() || self.generation.get() != generation {
                // The device went away during the upload: what was uploaded went with it.
                model.dispose();
                let e = JsError::new(
                    ErrorClass::DeviceLost,
                    "DEVICE_LOST",
                    format!("The GPU device was lost while {key} was loading; load it again to use a new device."),
                );
                return self.failed(&key, e, signal.as_ref(), make_current, false).await;
            }
            let bytes = model.resident_bytes();
            self.models.borrow_mut().insert(key.clone(), model);
            self.memory.loaded(&key, bytes);
            if make_current {
                *self.current.borrow_mut() = Some(key.clone());
            }
            self.info(format!("Model {key} loaded successfully."), &key);
            Ok(self.model_info(&key))
        }
        .boxed_local()
    }

    /// The file of `entry`: opened before (its header known), an app-supplied `File`, or its URL.
    async fn open(&self, entry: &CatalogEntry, signal: Option<&AbortSignal>) -> Result<GgufFile, JsError> {
        if let Some(file) = self.files.borrow().get(&entry.key) {
            return Ok(file.share());
        }
        let blob = self.blobs.borrow().get(&entry.key).cloned();
        // A cached copy needs no network at all.
        let cache = if self.uses_url(entry) { self.model_cache().await } else { None };
        let cached = match cache {
            Some(cache) => cache.get(entry, None).await,
            None => None,
        };
        let from_cache = cached.is_some();
        let file = match blob.or(cached) {
            Some(blob) => GgufFile::from_blob(blob).await?,
            None if entry.url.is_empty() => {
                return Err(JsError::invalid_input(
                    "NO_MODEL_SOURCE",
                    format!("Catalog entry {} has no url and no file; registerModel() it with one.", entry.key),
                ));
            }
            None => {
                let progress = ProgressReporter::to_status(self.status.clone(), &entry.key);
                GgufFile::open_url(&entry.url, signal, Some(&progress)).await?
            }
        };
        if let Ok(arch) = file.header().architecture()
            && arch != entry.arch
        {
            return Err(JsError::new(
                ErrorClass::ModelFormat,
                "CATALOG_MISMATCH",
                format!("{} is a {arch} model, but the catalog says {}; fix the catalog entry.", entry.key, entry.arch),
            ));
        }
        self.files.borrow_mut().insert(entry.key.clone(), file.share());
        if from_cache {
            self.cached.borrow_mut().insert(entry.key.clone());
        }
        Ok(file)
    }

    /// Whether `entry`'s file comes from its URL (not a File the app supplied).
    fn uses_url(&self, entry: &CatalogEntry) -> bool {
        !entry.url.is_empty() && !self.blobs.borrow().contains_key(&entry.key)
    }

    /// The browser's model cache, opened on first use; `None` when off or unavailable.
    async fn model_cache(&self) -> Option<Rc<ModelCache>> {
        if !self.use_cache {
            return None;
        }
        if let Some(cache) = self.cache.borrow().clone() {
            return cache;
        }
        let cache = ModelCache::open().await.map(Rc::new);
        *self.cache.borrow_mut() = Some(cache.clone());
        cache
    }

    /// The file to load `entry` from: the cached copy (a `cache` progress event), else the
    /// URL downloaded into the cache first (`download` progress), else `file` as it is (a
    /// user's File, a server without Range support, no cache).
    async fn through_cache(
        &self,
        entry: &CatalogEntry,
        file: GgufFile,
        signal: Option<&AbortSignal>,
    ) -> Result<GgufFile, JsError> {
        if self.cached.borrow().contains(&entry.key) {
            let size = file.source_len().unwrap_or_default();
            self.status.progress(Progress::new(Phase::Cache, size, Some(size)), Some(&entry.key));
            return Ok(file);
        }
        if !self.uses_url(entry) || !file.supports_range() {
            return Ok(file);
        }
        let Some(cache) = self.model_cache().await else { return Ok(file) };
        let progress = ProgressReporter::to_status(self.status.clone(), &entry.key);
        match cache.store(entry, &entry.url, signal, &progress).await {
            Ok(blob) => {
                let cached = GgufFile::from_blob(blob).await?;
                // Later loads of this key start from the cached copy.
                self.files.borrow_mut().insert(entry.key.clone(), cached.share());
                self.cached.borrow_mut().insert(entry.key.clone());
                Ok(cached)
            }
            Err(e) if e.code() == "CACHE_WRITE_FAILED" => {
                self.info(format!("{} Loading {} from the network instead.", e.message(), entry.key), &entry.key);
                Ok(file)
            }
            Err(e) => Err(e),
        }
    }

    /// Unpinned, idle models to unload, least recently used first, until `fit` is met; `None`
    /// when eviction is off, cannot help, or would have to touch a model that is generating.
    fn eviction_plan(&self, fit: &CanLoad) -> Option<Vec<String>> {
        if !self.evict || !fit.fits_after_eviction {
            return None;
        }
        let models = self.models.borrow();
        self.memory
            .core()
            .plan_eviction_sparing(fit.required_bytes, |key| models.get(key).is_some_and(LanguageModel::is_busy))
    }

    /// The seed's refusal: an `error` event and a `ModelLoadError` with the figures and
    /// suggestions, or, with `autoFallback`, the best suggestion loaded instead.
    async fn refuse(
        self: Rc<Self>,
        key: &str,
        fit: &CanLoad,
        make_current: bool,
        fallback: bool,
        signal: Option<AbortSignal>,
    ) -> Result<JsValue, JsError> {
        let suggestions = self.suggestions(key);
        let mut message = format!("Cannot load {key}: {}", fit.reason);
        if let Some(best) = suggestions.first() {
            let names: Vec<&str> = suggestions.iter().map(|s| s.key.as_str()).collect();
            message.push_str(&format!(
                ". Models that fit: {}.{}",
                names.join(", "),
                if self.auto_fallback && fallback { format!(" Loading {} instead.", best.key) } else { String::new() }
            ));
        }
        let error = JsError::new(ErrorClass::ModelLoad, "NOT_ENOUGH_MEMORY", message)
            .with("modelKey", key)
            .with("reason", fit.reason.as_str())
            .with("requiredBytes", fit.required_bytes as f64)
            .with("availableBytes", fit.available_bytes as f64)
            .with("suggestions", to_js(&suggestions).unwrap_or(JsValue::NULL));
        self.error_event(&error, Some(key));
        if self.auto_fallback
            && fallback
            && let Some(best) = suggestions.first()
        {
            self.info(
                format!("Falling back to {} (fits: {}).", best.key, format_bytes(best.required_bytes)),
                &best.key,
            );
            return self.clone().switch_now(best.key.clone(), signal, make_current, false).await;
        }
        Err(error)
    }

    /// A load that failed after it started: the error event (with suggestions for failures a
    /// smaller model could avoid), maybe the fallback, and the error with the state untouched.
    async fn failed(
        self: &Rc<Self>,
        key: &str,
        error: JsError,
        signal: Option<&AbortSignal>,
        make_current: bool,
        fallback: bool,
    ) -> Result<JsValue, JsError> {
        if error.class() == ErrorClass::Cancelled || cancelled(signal) {
            return Err(self.cancelled_error(key, "while loading"));
        }
        let suggestions = self.suggestions(key);
        let error = error.with("modelKey", key).with("suggestions", to_js(&suggestions).unwrap_or(JsValue::NULL));
        let shown =
            JsError::new(error.class(), error.code().to_owned(), format!("Failed to load {key}: {}", error.message()));
        self.error_event(&shown, Some(key));
        if self.auto_fallback
            && fallback
            && error.class() != ErrorClass::InvalidInput
            && let Some(best) = suggestions.first()
        {
            self.info(format!("Falling back to {}.", best.key), &best.key);
            return self.clone().switch_now(best.key.clone(), signal.cloned(), make_current, false).await;
        }
        Err(error)
    }

    fn cancelled_error(&self, key: &str, when: &str) -> JsError {
        let still = self.current.borrow().clone();
        let message = match &still {
            Some(c) => format!("Loading {key} was cancelled {when}; {c} is still the current model."),
            None => format!("Loading {key} was cancelled {when}."),
        };
        let error = JsError::new(ErrorClass::Cancelled, "ABORTED", message).with("modelKey", key);
        self.error_event(&error, Some(key));
        error
    }

    /// Unloads `key` now: disposes it, returns its memory, forgets it. `false` if not resident.
    fn unload_now(&self, key: &str) -> bool {
        let Some(model) = self.forget(key) else { return false };
        model.dispose();
        self.info(format!("Model {key} unloaded."), key);
        true
    }

    fn model_info(&self, key: &str) -> JsValue {
        self.models.borrow().get(key).map_or(JsValue::NULL, LanguageModel::info)
    }
}

#[wasm_bindgen]
impl ModelManager {
    /// Sets up a manager. Options (all optional): `streamer` (an `SseStreamer`; a new one by
    /// default), `memoryManager` (a `MemoryManager`; created on the same device by default),
    /// `backend` ('auto' | 'webgpu' | 'cpu'; 'auto' takes WebGPU unless the adapter is a
    /// software emulation, where the CPU backend is faster), `catalog` (entries, replacing the
    /// built-in ones with the same keys), `contextLength` (default 2048), `autoFallback`
    /// (load the best suggestion when a model cannot be loaded; default false), `evict`
    /// (unload least-recently-used unpinned models to make room; default true),
    /// `deviceMemoryGb`. Rejects with `InvalidInputError` or `GpuUnavailableError`.
    #[wasm_bindgen(unchecked_return_type = "Promise<ModelManager>")]
    pub fn create(options: Option<ModelManagerOptionsArg>) -> Promise {
        wasm_bindgen_futures::future_to_promise(async move {
            let opts_js: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
            let opts: CreateOptions = super::streamer::read_options(Some(opts_js.clone()), "ModelManager options")?;
            if opts.context_length == Some(0) {
                return Err(JsError::invalid_input("INVALID_OPTIONS", "contextLength must be at least 1.").into());
            }
            let streamer = match field(&opts_js, "streamer") {
                Some(v) => SseStreamer::from_js(&v).ok_or_else(|| {
                    JsError::invalid_input("INVALID_OPTIONS", "options.streamer must be an SseStreamer.")
                })?,
                None => SseStreamer::new(None)?,
            };
            let status = streamer.stream();
            let mut catalog = Catalog::builtin();
            if let Some(v) = field(&opts_js, "catalog") {
                let json = js_sys::JSON::stringify(&v).ok().and_then(|s| s.as_string()).unwrap_or_default();
                catalog.merge(Catalog::from_json(&json).map_err(catalog_error)?);
            }
            let (memory, preference) = match field(&opts_js, "memoryManager") {
                Some(v) => {
                    let memory = MemoryManager::from_js(&v).ok_or_else(|| {
                        JsError::invalid_input("INVALID_OPTIONS", "options.memoryManager must be a MemoryManager.")
                    })?;
                    let preference = if memory.is_cpu() { Preference::Cpu } else { Preference::Webgpu };
                    (memory, preference)
                }
                None => {
                    let asked =
                        Preference::parse(field(&opts_js, "backend").map(|v| v.unchecked_into::<BackendArg>()))?;
                    let preference = resolve(asked, &status).await?;
                    (
                        MemoryManager::create_with(status.clone(), preference, opts.device_memory_gb, None).await?,
                        preference,
                    )
                }
            };
            let inner = Inner {
                status,
                streamer,
                memory,
                preference,
                context_length: opts.context_length,
                auto_fallback: opts.auto_fallback,
                evict: opts.evict.unwrap_or(true),
                use_cache: opts.cache.unwrap_or(true),
                cache: RefCell::new(None),
                cached: RefCell::default(),
                catalog: RefCell::new(catalog),
                blobs: RefCell::default(),
                files: RefCell::default(),
                models: RefCell::default(),
                current: RefCell::default(),
                loading: RefCell::default(),
                in_flight: RefCell::default(),
                tail: RefCell::default(),
                generating: Cell::new(0),
                idle_waiters: RefCell::default(),
                generation: Cell::new(super::device::generation()),
                lost: Cell::new(false),
            };
            let inner = Rc::new(inner);
            if preference == Preference::Webgpu {
                let weak = Rc::downgrade(&inner);
                super::device::on_device_lost(Rc::new(move |generation, message| {
                    if let Some(inner) = weak.upgrade() {
                        inner.device_lost(generation, message);
                    }
                }));
            }
            Ok(ModelManager { inner }.into())
        })
    }

    /// The status stream every step is told on.
    #[wasm_bindgen(getter, js_name = sseStreamer)]
    pub fn sse_streamer(&self) -> SseStreamer {
        self.inner.streamer.share()
    }

    /// The memory account models are checked against and registered with.
    #[wasm_bindgen(getter, js_name = memoryManager)]
    pub fn memory_manager(&self) -> MemoryManager {
        self.inner.memory.share()
    }

    /// 'webgpu' or 'cpu': where models run.
    #[wasm_bindgen(getter, unchecked_return_type = "'webgpu' | 'cpu'")]
    pub fn backend(&self) -> String {
        match self.inner.preference {
            Preference::Cpu => "cpu".to_owned(),
            _ => "webgpu".to_owned(),
        }
    }

    /// Loads `defaultKey` (default 'gemma-3-270m') as `switchModel` does, then says
    /// "Model <key> initialized and ready.". Rejects as `switchModel` does.
    #[wasm_bindgen(unchecked_return_type = "Promise<ModelInfo>")]
    pub fn init(&self, default_key: Option<String>, options: Option<SwitchOptionsArg>) -> Promise {
        let key = default_key.unwrap_or_else(|| DEFAULT_MODEL_KEY.to_owned());
        let switched = self.switch_model(JsValue::from_str(&key), options);
        let status = self.inner.status.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let info = wasm_bindgen_futures::JsFuture::from(switched).await?;
            let current = Reflect::get(&info, &"key".into()).ok().and_then(|k| k.as_string()).unwrap_or(key);
            status.info(format!("Model {current} initialized and ready."), Some(&current));
            Ok(info)
        })
    }

    /// Makes `key` the current model, loading it first when it is not resident (the seed's
    /// flow; see the module docs). `signal` aborts the load: the download stops, what was
    /// uploaded is freed, an `error` event (CancelledError) goes out and the previous model
    /// stays current. Resolves with the model's info. Rejects with `ModelLoadError` (does not
    /// fit: `reason`, `requiredBytes`, `availableBytes`, `suggestions`), `DownloadError`,
    /// `ModelFormatError`, `CancelledError`, `InvalidInputError` (unknown key).
    #[wasm_bindgen(js_name = switchModel, unchecked_return_type = "Promise<ModelInfo>")]
    pub fn switch_model(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        options: Option<SwitchOptionsArg>,
    ) -> Promise {
        self.enqueue_load(key, options, true, "switchModel")
    }

    /// Loads `key` without making it current, after the running task finishes (it yields to
    /// generation). Resolves with the model's info; rejects as `switchModel`.
    #[wasm_bindgen(unchecked_return_type = "Promise<ModelInfo>")]
    pub fn preload(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        options: Option<SwitchOptionsArg>,
    ) -> Promise {
        self.enqueue_load(key, options, false, "preload")
    }

    /// Unloads `key` in its turn (after the operations queued before it): its memory is
    /// returned and a `metrics` event reports it. Resolves `false` if it was not resident.
    /// Rejects with `InvalidInputError` while the model is generating (cancel the task first).
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn unload(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Promise {
        let key = match key_arg(&key, "unload") {
            Ok(k) => k,
            Err(e) => return Promise::reject(&e.into()),
        };
        let op_key = format!("unload:{key}");
        self.inner.enqueue(&op_key, move |inner| {
            async move {
                if inner.models.borrow().get(&key).is_some_and(LanguageModel::is_busy) {
                    return Err(JsError::invalid_input(
                        "MODEL_BUSY",
                        format!("{key} is generating; cancel its task before unloading it."),
                    ));
                }
                Ok(JsValue::from_bool(inner.unload_now(&key)))
            }
            .boxed_local()
        })
    }

    /// Whether `key` is resident.
    #[wasm_bindgen(js_name = isModelLoaded)]
    pub fn is_model_loaded(&self, key: &str) -> bool {
        self.inner.is_loaded(key)
    }

    /// Whether a current model is resident and no load is running.
    #[wasm_bindgen(getter, js_name = isReady)]
    pub fn is_ready(&self) -> bool {
        let current = self.inner.current.borrow().clone();
        self.inner.loading.borrow().is_none() && current.is_some_and(|k| self.inner.is_loaded(&k))
    }

    /// The current model's key, or `null`.
    #[wasm_bindgen(getter, js_name = currentModel)]
    pub fn current_model(&self) -> Option<String> {
        let current = self.inner.current.borrow().clone();
        current.filter(|k| self.inner.is_loaded(k))
    }

    /// The key being loaded now, or `null`.
    #[wasm_bindgen(getter, js_name = loadingModel)]
    pub fn loading_model(&self) -> Option<String> {
        self.inner.loading.borrow().clone()
    }

    /// The resident models, least recently used first: `{ key, bytes, current, pinned,
    /// lastUsed, backend }`.
    #[wasm_bindgen(js_name = loadedModels, unchecked_return_type = "LoadedModelInfo[]")]
    pub fn loaded_models(&self) -> Result<JsValue, JsError> {
        self.inner.prune_disposed();
        let stats = self.inner.memory.core().stats(None, None);
        let current = self.inner.current.borrow().clone();
        let models = self.inner.models.borrow();
        let list: Vec<LoadedInfo> = stats
            .loaded
            .iter()
            .filter_map(|l| {
                let m = models.get(&l.key)?;
                let backend = Reflect::get(&m.info(), &"backend".into()).ok().and_then(|b| b.as_string());
                Some(LoadedInfo {
                    key: l.key.clone(),
                    bytes: l.bytes,
                    current: current.as_deref() == Some(l.key.as_str()),
                    pinned: l.pinned,
                    last_used: l.last_used,
                    backend: backend.unwrap_or_default(),
                })
            })
            .collect();
        to_js(&list)
    }

    /// The resident model `key` (a `LanguageModel` to call `generate` on), or `undefined`.
    #[wasm_bindgen(js_name = getModel)]
    pub fn get_model(&self, key: &str) -> Option<LanguageModel> {
        self.inner.model(key)
    }

    /// The catalog, each entry with `loaded`, `exact` and `fit` (what `canLoadModel` answers
    /// now).
    #[wasm_bindgen(unchecked_return_type = "CatalogRow[]")]
    pub fn catalog(&self) -> Result<JsValue, JsError> {
        let catalog = self.inner.catalog.borrow().clone();
        let rows: Vec<CatalogRow<'_>> = catalog
            .entries()
            .iter()
            .map(|entry| {
                let (r, exact) = self.inner.requirement(entry);
                CatalogRow {
                    entry,
                    loaded: self.inner.is_loaded(&entry.key),
                    exact,
                    fit: self.inner.memory.core().can_load(&entry.key, &r),
                }
            })
            .collect();
        to_js(&rows)
    }

    /// Adds a model to the catalog, or replaces the entry with its key. `file` (a `File` or
    /// `Blob` the user picked) stands in for `url`. Throws `InvalidInputError` naming the bad
    /// field.
    #[wasm_bindgen(js_name = registerModel)]
    pub fn register_model(
        &self,
        #[wasm_bindgen(unchecked_param_type = "CatalogEntryInput")] entry: JsValue,
    ) -> Result<(), JsError> {
        let blob: Option<Blob> = field(&entry, "file").map(|v| v.dyn_into::<Blob>()).transpose().map_err(|_| {
            JsError::invalid_input("INVALID_CATALOG_ENTRY", "registerModel: `file` must be a File or Blob.")
        })?;
        let mut plain = entry.clone();
        if blob.is_some() {
            // Everything but `file`; `fileBytes` defaults to the file's size.
            let copy = js_sys::Object::assign(&js_sys::Object::new(), entry.unchecked_ref());
            let _ = Reflect::delete_property(&copy, &"file".into());
            if let Some(b) = &blob
                && field(&copy, "fileBytes").is_none()
            {
                let _ = Reflect::set(&copy, &"fileBytes".into(), &b.size().into());
            }
            plain = copy.into();
        }
        let parsed: CatalogEntry = serde_wasm_bindgen::from_value(plain).map_err(|e| {
            JsError::invalid_input(
                "INVALID_CATALOG_ENTRY",
                format!(
                    "registerModel: expected {{ key, url | file, arch, quant, fileBytes, contextLength, ... }}: {e}"
                ),
            )
        })?;
        let key = parsed.key.clone();
        if self.inner.in_flight.borrow().contains_key(&key) {
            return Err(JsError::invalid_input(
                "MODEL_BUSY",
                format!("registerModel: {key} is being loaded; wait for it before replacing its entry."),
            ));
        }
        self.inner.catalog.borrow_mut().register(parsed, blob.is_none()).map_err(catalog_error)?;
        // A new source: its header is read again on the next load.
        self.inner.files.borrow_mut().remove(&key);
        self.inner.cached.borrow_mut().remove(&key);
        match blob {
            Some(b) => self.inner.blobs.borrow_mut().insert(key, b),
            None => self.inner.blobs.borrow_mut().remove(&key),
        };
        Ok(())
    }

    /// What the memory manager answers for catalog model `key` now: `{ can, reason,
    /// requiredBytes, availableBytes, evictable, ... }` plus `suggestions` when it cannot.
    /// The requirement is exact once the model's header was read (a load, or `checkModel`).
    #[wasm_bindgen(js_name = canLoadModel, unchecked_return_type = "CanLoadResult & { suggestions: Suggestion[] }")]
    pub fn can_load_model(&self, key: &str) -> Result<JsValue, JsError> {
        let entry = self.inner.catalog.borrow().lookup(key).map_err(catalog_error)?.clone();
        let (r, exact) = self.inner.requirement(&entry);
        let fit = self.inner.memory.core().can_load(key, &r);
        let out = to_js(&fit)?;
        let suggestions = if fit.can { Vec::new() } else { self.inner.suggestions(key) };
        let _ = Reflect::set(&out, &"suggestions".into(), &to_js(&suggestions)?);
        let _ = Reflect::set(&out, &"exact".into(), &exact.into());
        Ok(out)
    }

    /// The models in the browser's model cache: `{ key, file, bytes }` (empty when the cache
    /// is off or the browser has none).
    #[wasm_bindgen(js_name = cachedModels, unchecked_return_type = "Promise<CachedModel[]>")]
    pub fn cached_models(&self) -> Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            #[derive(Serialize)]
            struct Cached {
                key: String,
                file: String,
                bytes: u64,
            }
            let list = match inner.model_cache().await {
                Some(cache) => cache.list().await,
                None => Vec::new(),
            };
            let out: Vec<Cached> =
                list.into_iter().map(|(file, bytes)| Cached { key: key_of(&file).to_owned(), file, bytes }).collect();
            Ok(to_js(&out)?)
        })
    }

    /// Deletes `key`'s files from the browser's model cache (every model's when omitted);
    /// resolves with how many files went. Loaded models stay loaded.
    #[wasm_bindgen(js_name = clearCache, unchecked_return_type = "Promise<number>")]
    pub fn clear_cache(&self, key: Option<String>) -> Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let removed = match inner.model_cache().await {
                Some(cache) => cache.remove(key.as_deref()).await,
                None => 0,
            };
            // Headers read from the removed files are read again (from the network) next time.
            let gone: Vec<String> = inner
                .cached
                .borrow()
                .iter()
                .filter(|k| key.as_deref().is_none_or(|want| want == k.as_str()))
                .cloned()
                .collect();
            for k in gone {
                inner.cached.borrow_mut().remove(&k);
                inner.files.borrow_mut().remove(&k);
            }
            Ok(JsValue::from(removed))
        })
    }

    /// Reads `key`'s header (Range requests; no weights) so that `canLoadModel` and the
    /// catalog give the exact requirement. Resolves with `canLoadModel(key)`.
    #[wasm_bindgen(js_name = checkModel, unchecked_return_type = "Promise<CanLoadResult & { suggestions: Suggestion[] }>")]
    pub fn check_model(&self, key: String, options: Option<SwitchOptionsArg>) -> Promise {
        let inner = self.inner.clone();
        let this = ModelManager { inner: self.inner.clone() };
        wasm_bindgen_futures::future_to_promise(async move {
            let signal: Option<AbortSignal> =
                options.and_then(|o| field(&o.into(), "signal")).map(|v| v.unchecked_into());
            let entry = inner.catalog.borrow().lookup(&key).map_err(catalog_error)?.clone();
            inner.open(&entry, signal.as_ref()).await?;
            Ok(this.can_load_model(&key)?)
        })
    }
}

impl ModelManager {
    pub(super) fn shared(&self) -> Rc<Inner> {
        self.inner.clone()
    }

    fn enqueue_load(&self, key: JsValue, options: Option<SwitchOptionsArg>, make_current: bool, what: &str) -> Promise {
        let key = match key_arg(&key, what) {
            Ok(k) => k,
            Err(e) => return Promise::reject(&e.into()),
        };
        let signal: Option<AbortSignal> = options.and_then(|o| field(&o.into(), "signal")).map(|v| v.unchecked_into());
        if make_current {
            return self.inner.enqueue(&key.clone(), move |inner| inner.switch_now(key, signal, true, true));
        }
        // A preload yields to the tasks: it waits, outside the chain (so a task's own switch is
        // never stuck behind it), until no task runs, then takes its turn like any load.
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            inner.idle().await;
            let op_key = format!("preload:{key}");
            let promise = inner.enqueue(&op_key, move |inner| inner.switch_now(key, signal, false, true));
            wasm_bindgen_futures::JsFuture::from(promise).await
        })
    }
}

/// 'auto' made concrete once for a manager: WebGPU, unless there is no adapter or it is a
/// software emulation (SwiftShader, llvmpipe), where the wasm CPU backend is faster (measured
/// ~30x on SmolLM2); the status stream says which and why.
async fn resolve(asked: Preference, status: &Rc<StatusStream>) -> Result<Preference, JsError> {
    if asked != Preference::Auto {
        return Ok(asked);
    }
    let device = acquire(Preference::Auto, Some(status.clone())).await?;
    if device.adapter.is_none() || runs_on_cpu_instead(&device, Some(status), "models run", None) {
        return Ok(Preference::Cpu);
    }
    Ok(Preference::Webgpu)
}
