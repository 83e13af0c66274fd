//! `ModelManager`: the JS face of the core [`ModelLifecycle`] (switch, eviction, suggestions,
//! autoFallback, preload, one load per key in call order, cancellation, device loss; see
//! `manager::lifecycle` for the flow and its status events), over the browser's engine
//! ([`engine::WebEngine`]: URL, `File` and OPFS-cache sources, `model::load_with`).
//!
//! This file only converts: JS values into core types, the lifecycle's answers into JS values,
//! [`crate::manager::ManagerError`] into the JS error classes (in `error.rs`).

mod engine;

use std::rc::Rc;

use js_sys::{Promise, Reflect};
use wasm_bindgen::prelude::*;
use web_sys::{AbortSignal, Blob};

use crate::manager::{Catalog, CatalogEntry, DEFAULT_MODEL_KEY, ManagerOptions, ModelLifecycle};

use super::convert::{key_arg, shared, to_js};
use super::device::Preference;
use super::error::{ErrorCode, JsError};
use super::memory::MemoryManager;
use super::model::LanguageModel;
use super::streamer::{SseStreamer, field};
use super::types::{ModelManagerOptionsArg, SwitchOptionsArg};

pub(super) use engine::WebEngine;

/// The lifecycle a `ModelManager` and its `TaskExecutor`s share.
pub(super) type Lifecycle = ModelLifecycle<WebEngine>;

/// Loads, switches, preloads and unloads catalog models, narrating each step on the status
/// stream. Create with `await ModelManager.create(options)`.
#[wasm_bindgen]
pub struct ModelManager {
    pub(super) lifecycle: Rc<Lifecycle>,
    streamer: SseStreamer,
}

/// The promise of an operation on model `key`: a bad key rejects at once; else `start` queues
/// the operation now (operations run in call order) and the promise settles with its outcome.
fn on_key<F>(key: &JsValue, what: &str, start: impl FnOnce(String) -> F) -> Promise
where
    F: std::future::Future<Output = Result<JsValue, JsError>> + 'static,
{
    let operation = match key_arg(key, what) {
        Ok(key) => start(key),
        Err(e) => return Promise::reject(&e.into()),
    };
    wasm_bindgen_futures::future_to_promise(async move { Ok(operation.await?) })
}

/// The `signal` of a switch's options.
fn signal_of(options: Option<SwitchOptionsArg>) -> Option<AbortSignal> {
    options.and_then(|o| field(&o.into(), "signal")).map(|v| v.unchecked_into())
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
            let opts: ManagerOptions = super::streamer::read_options(Some(opts_js.clone()), "ModelManager options")?;
            let settings = opts.settings().map_err(JsError::from)?;
            let streamer = match field(&opts_js, "streamer") {
                Some(v) => shared::<SseStreamer>(&v).ok_or_else(|| {
                    JsError::of(ErrorCode::InvalidOptions, "options.streamer must be an SseStreamer.")
                })?,
                None => SseStreamer::new(None)?,
            };
            let status = streamer.stream();
            let json = |v: JsValue| js_sys::JSON::stringify(&v).ok().and_then(|s| s.as_string()).unwrap_or_default();
            let catalog =
                Catalog::builtin_with(field(&opts_js, "catalog").map(json).as_deref()).map_err(JsError::from)?;
            let (memory, preference) = engine::account(&opts_js, &status, opts.device_memory_gb).await?;
            let engine = WebEngine::new(status.clone(), memory, preference, opts.use_cache());
            let lifecycle = ModelLifecycle::new(engine, status, catalog, settings, crate::device::page_generation());
            if preference == Preference::Webgpu {
                lifecycle.follow_page_device();
            }
            Ok(ModelManager { lifecycle, streamer }.into())
        })
    }

    /// The status stream every step is told on.
    #[wasm_bindgen(getter, js_name = sseStreamer)]
    pub fn sse_streamer(&self) -> SseStreamer {
        self.streamer.share()
    }

    /// The memory account models are checked against and registered with.
    #[wasm_bindgen(getter, js_name = memoryManager)]
    pub fn memory_manager(&self) -> MemoryManager {
        MemoryManager { inner: self.lifecycle.engine().memory.clone() }
    }

    /// 'webgpu' or 'cpu': where models run.
    #[wasm_bindgen(getter, unchecked_return_type = "'webgpu' | 'cpu'")]
    pub fn backend(&self) -> String {
        if self.lifecycle.engine().preference == Preference::Cpu { "cpu" } else { "webgpu" }.to_owned()
    }

    /// Loads `defaultKey` (default 'gemma-3-270m') as `switchModel` does, then says
    /// "Model <key> initialized and ready.". Rejects as `switchModel` does.
    #[wasm_bindgen(unchecked_return_type = "Promise<ModelInfo>")]
    pub fn init(&self, default_key: Option<String>, options: Option<SwitchOptionsArg>) -> Promise {
        let key = default_key.unwrap_or_else(|| DEFAULT_MODEL_KEY.to_owned());
        let done = self.lifecycle.init(&key, signal_of(options));
        wasm_bindgen_futures::future_to_promise(
            async move { Ok(to_js(done.await.map_err(JsError::from)?.model.info())?) },
        )
    }

    /// Makes `key` the current model, loading it first when it is not resident (the
    /// ModelManager v3.1 design's flow; see the module docs). `signal` aborts the load: the download stops, what was
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
        on_key(&key, "switchModel", |key| {
            let switched = self.lifecycle.switch(&key, signal_of(options));
            async move { to_js(switched.await?.model.info()) }
        })
    }

    /// Loads `key` without making it current, after the running task finishes (it yields to
    /// generation). Resolves with the model's info; rejects as `switchModel`.
    #[wasm_bindgen(unchecked_return_type = "Promise<ModelInfo>")]
    pub fn preload(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        options: Option<SwitchOptionsArg>,
    ) -> Promise {
        on_key(&key, "preload", |key| {
            let preloaded = self.lifecycle.preload(&key, signal_of(options));
            async move { to_js(preloaded.await?.model.info()) }
        })
    }

    /// Unloads `key` in its turn (after the operations queued before it): its memory is
    /// returned and a `metrics` event reports it. Resolves `false` if it was not resident.
    /// Rejects with `InvalidInputError` while the model is generating (cancel the task first).
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn unload(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Promise {
        on_key(&key, "unload", |key| {
            let unloaded = self.lifecycle.unload(&key);
            async move { Ok(JsValue::from_bool(unloaded.await?)) }
        })
    }

    /// Whether `key` is resident.
    #[wasm_bindgen(js_name = isModelLoaded)]
    pub fn is_model_loaded(&self, key: &str) -> bool {
        self.lifecycle.is_loaded(key)
    }

    /// Whether a current model is resident and no load is running.
    #[wasm_bindgen(getter, js_name = isReady)]
    pub fn is_ready(&self) -> bool {
        self.lifecycle.is_ready()
    }

    /// The current model's key, or `null`.
    #[wasm_bindgen(getter, js_name = currentModel)]
    pub fn current_model(&self) -> Option<String> {
        self.lifecycle.current()
    }

    /// The key being loaded now, or `null`.
    #[wasm_bindgen(getter, js_name = loadingModel)]
    pub fn loading_model(&self) -> Option<String> {
        self.lifecycle.loading()
    }

    /// The resident models, least recently used first: `{ key, bytes, current, pinned,
    /// lastUsed, backend }`.
    #[wasm_bindgen(js_name = loadedModels, unchecked_return_type = "LoadedModelInfo[]")]
    pub fn loaded_models(&self) -> Result<JsValue, JsError> {
        to_js(&self.lifecycle.loaded_rows())
    }

    /// The resident model `key` (a `LanguageModel` to call `generate` on), or `undefined`.
    #[wasm_bindgen(js_name = getModel)]
    pub fn get_model(&self, key: &str) -> Option<LanguageModel> {
        self.lifecycle.model(key).map(|inner| LanguageModel { inner })
    }

    /// The catalog, each entry with `loaded`, `exact` and `fit` (what `canLoadModel` answers
    /// now).
    #[wasm_bindgen(unchecked_return_type = "CatalogRow[]")]
    pub fn catalog(&self) -> Result<JsValue, JsError> {
        to_js(&self.lifecycle.catalog_rows())
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
            JsError::of(ErrorCode::InvalidCatalogEntry, "registerModel: `file` must be a File or Blob.")
        })?;
        let mut plain = entry.clone();
        if let Some(b) = &blob
            && field(&entry, "fileBytes").is_none()
        {
            // `fileBytes` defaults to the file's size (serde reads only the entry's own fields).
            plain = js_sys::Object::assign(&js_sys::Object::new(), entry.unchecked_ref()).into();
            let _ = Reflect::set(&plain, &"fileBytes".into(), &b.size().into());
        }
        let parsed: CatalogEntry = serde_wasm_bindgen::from_value(plain).map_err(|e| {
            JsError::of(
                ErrorCode::InvalidCatalogEntry,
                format!(
                    "registerModel: expected {{ key, url | file, arch, quant, fileBytes, contextLength, ... }}: {e}"
                ),
            )
        })?;
        let key = parsed.key.clone();
        self.lifecycle.register(parsed, blob.is_none())?;
        self.lifecycle.engine().set_source(&key, blob);
        Ok(())
    }

    /// What the memory manager answers for catalog model `key` now: `{ can, reason,
    /// requiredBytes, availableBytes, evictable, ... }` plus `suggestions` when it cannot.
    /// The requirement is exact once the model's header was read (a load, or `checkModel`).
    #[wasm_bindgen(js_name = canLoadModel, unchecked_return_type = "CanLoadResult & { suggestions: Suggestion[] }")]
    pub fn can_load_model(&self, key: &str) -> Result<JsValue, JsError> {
        to_js(&self.lifecycle.fit(key)?)
    }

    /// The models in the browser's model cache: `{ key, file, bytes }` (empty when the cache
    /// is off or the browser has none).
    #[wasm_bindgen(js_name = cachedModels, unchecked_return_type = "Promise<CachedModel[]>")]
    pub fn cached_models(&self) -> Promise {
        let lifecycle = self.lifecycle.clone();
        wasm_bindgen_futures::future_to_promise(async move { Ok(to_js(&lifecycle.engine().cached_models().await)?) })
    }

    /// Deletes `key`'s files from the browser's model cache (every model's when omitted);
    /// resolves with how many files went. Loaded models stay loaded.
    #[wasm_bindgen(js_name = clearCache, unchecked_return_type = "Promise<number>")]
    pub fn clear_cache(&self, key: Option<String>) -> Promise {
        let lifecycle = self.lifecycle.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            Ok(JsValue::from(lifecycle.engine().clear_cache(key.as_deref()).await))
        })
    }

    /// Reads `key`'s header (Range requests; no weights) so that `canLoadModel` and the
    /// catalog give the exact requirement. Resolves with `canLoadModel(key)`.
    #[wasm_bindgen(js_name = checkModel, unchecked_return_type = "Promise<CanLoadResult & { suggestions: Suggestion[] }>")]
    pub fn check_model(&self, key: String, options: Option<SwitchOptionsArg>) -> Promise {
        let lifecycle = self.lifecycle.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let signal = signal_of(options);
            let fit = lifecycle.check(&key, signal.as_ref()).await.map_err(JsError::from)?;
            Ok(to_js(&fit)?)
        })
    }
}
