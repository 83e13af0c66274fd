//! [`WebEngine`]: the lifecycle's [`Engine`] in the browser: GGUF files read from a URL
//! (Range requests), a `File` the app supplied or the browser's model cache (OPFS), loaded with
//! `model::load_with` (the core `LoadedModel`, which the lifecycle holds), accounted by the
//! page's memory [`Account`] ([`account`]: the app's `MemoryManager`'s, or a new one on the
//! backend 'auto' resolves to).

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use web_sys::{AbortSignal, Blob};

use crate::backend::BackendKind;
use crate::cache::CachedModel;
use crate::infer::KvCache;
use crate::infer::gpu::Kernels;
use crate::infer::session::LoadedModel;
use crate::manager::{Cancel, CatalogEntry, Engine, EngineError, FileBook};
use crate::memory::{self, Account, Requirement};
use crate::status::{Phase, Progress, StatusStream};

use super::super::cache::ModelCache;
use super::super::convert::{now_ms, shared};
use super::super::device::{Preference, acquire};
use super::super::error::{ErrorCode, JsError};
use super::super::gguf::GgufFile;
use super::super::memory::{MemoryManager, open_account, settle_later};
use super::super::model::{LoadRequest, load_with};
use super::super::source::ProgressReporter;
use super::super::streamer::field;
use super::super::types::BackendArg;
use crate::infer::session::models_run_on;

impl Cancel for AbortSignal {
    fn is_cancelled(&self) -> bool {
        self.aborted()
    }
}

impl EngineError for JsError {
    fn code(&self) -> ErrorCode {
        JsError::code(self)
    }

    fn message(&self) -> String {
        JsError::message(self).to_owned()
    }

    fn told(&self) -> bool {
        JsError::told(self)
    }
}

/// The browser's engine: the files, their cache and the device. See the [module docs](self).
pub(in crate::web) struct WebEngine {
    status: Rc<StatusStream>,
    pub memory: Rc<Account>,
    /// Resolved once at `create`: `Webgpu` or `Cpu`, never `Auto`.
    pub preference: Preference,
    /// Whether model files go through the browser's model cache (OPFS).
    use_cache: bool,
    /// The cache, once opened (`Some(None)`: the browser has none).
    cache: RefCell<Option<Option<Rc<ModelCache>>>>,
    /// Supplied and opened files (their headers read: the exact requirement replaces the
    /// catalog's), and which are the cached copy.
    files: FileBook<GgufFile, Blob>,
}

impl WebEngine {
    pub fn new(status: Rc<StatusStream>, memory: Rc<Account>, preference: Preference, use_cache: bool) -> Self {
        WebEngine { status, memory, preference, use_cache, cache: RefCell::new(None), files: FileBook::default() }
    }

    /// `key`'s source from now on: `blob` (a File the app supplied), else its URL. Its header
    /// is read again on the next load.
    pub fn set_source(&self, key: &str, blob: Option<Blob>) {
        self.files.set_source(key, blob);
    }

    /// The models in the browser's model cache (none when the cache is off or missing).
    pub async fn cached_models(&self) -> Vec<CachedModel> {
        match self.model_cache().await {
            Some(cache) => cache.list().await,
            None => Vec::new(),
        }
    }

    /// Deletes `key`'s files from the model cache (every model's when `None`); returns how
    /// many went. Headers read from them are read again (from the network) next time.
    pub async fn clear_cache(&self, key: Option<&str>) -> u32 {
        let removed = match self.model_cache().await {
            Some(cache) => cache.remove(key).await,
            None => 0,
        };
        self.files.forget_cached(key);
        removed
    }
    /// The browser's model cache, opened on first use; `None` when off or unavailable.
    pub async fn model_cache(&self) -> Option<Rc<ModelCache>> {
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
        if self.files.is_cached(&entry.key) {
            let size = file.source_len().unwrap_or_default();
            self.status.progress(Progress::new(Phase::Cache, size, Some(size)), Some(&entry.key));
            return Ok(file);
        }
        if !self.files.uses_url(entry) || !file.supports_range() {
            return Ok(file);
        }
        let Some(cache) = self.model_cache().await else { return Ok(file) };
        let progress = ProgressReporter::to_status(self.status.clone(), &entry.key);
        match cache.store(entry, &entry.url, signal, &progress).await {
            Ok(blob) => {
                let cached = GgufFile::from_blob(blob).await?;
                // Later loads of this key start from the cached copy.
                self.files.open(&entry.key, cached.share(), true);
                Ok(cached)
            }
            Err(e) if e.code() == ErrorCode::CacheWriteFailed => {
                self.status
                    .info(format!("{} Loading {} from the network instead.", e.message(), entry.key), Some(&entry.key));
                Ok(file)
            }
            Err(e) => Err(e),
        }
    }
}

impl Engine for WebEngine {
    type Model = Rc<LoadedModel>;
    type Error = JsError;
    type Signal = AbortSignal;

    fn memory(&self) -> &memory::MemoryManager {
        self.memory.core()
    }

    fn now_ms(&self) -> Option<f64> {
        now_ms()
    }

    fn report_memory(&self, key: Option<&str>) {
        self.memory.emit_metrics(key);
    }

    fn released(&self, key: &str) {
        self.memory.emit_metrics(Some(key));
        settle_later(&self.memory, key);
    }

    fn device_lost(&self) {
        self.memory.device_lost();
    }

    fn exact_requirement(&self, entry: &CatalogEntry, context: u32) -> Option<Requirement> {
        let file = self.files.opened(&entry.key)?;
        Requirement::for_load(file.header(), context, &self.memory.core().limits()).ok()
    }

    /// The file of `entry`: opened before (its header known), an app-supplied `File`, the
    /// cached copy, or its URL.
    async fn open(&self, entry: &CatalogEntry, signal: Option<&AbortSignal>) -> Result<(), JsError> {
        if self.files.opened(&entry.key).is_some() {
            return Ok(());
        }
        let blob = self.files.supplied(&entry.key);
        // A cached copy needs no network at all.
        let cache = if self.files.uses_url(entry) { self.model_cache().await } else { None };
        let cached = match cache {
            Some(cache) => cache.reuse(entry, signal).await?,
            None => None,
        };
        let from_cache = cached.is_some();
        let file = match blob.or(cached) {
            Some(blob) => GgufFile::from_blob(blob).await?,
            None if entry.url.is_empty() => return Err(entry.no_source().into()),
            None => {
                let progress = ProgressReporter::to_status(self.status.clone(), &entry.key);
                GgufFile::open_url(&entry.url, signal, Some(&progress)).await?
            }
        };
        if let Ok(arch) = file.header().architecture() {
            entry.check_arch(arch)?;
        }
        self.files.open(&entry.key, file, from_cache);
        Ok(())
    }

    async fn load(
        &self,
        entry: &CatalogEntry,
        context: u32,
        signal: Option<&AbortSignal>,
    ) -> Result<Rc<LoadedModel>, JsError> {
        let file = match self.files.opened(&entry.key) {
            Some(file) => file,
            None => {
                self.open(entry, signal).await?;
                self.files.opened(&entry.key).ok_or_else(|| {
                    JsError::of(ErrorCode::NoModelSource, format!("{} could not be opened.", entry.key))
                })?
            }
        };
        let file = self.through_cache(entry, file, signal).await?;
        let request = LoadRequest {
            preference: self.preference,
            context_length: Some(context),
            key: Some(entry.key.clone()),
            kernels: Kernels::Auto,
            decode_graphs: None,
            kv_cache: KvCache::F32,
            threads: None,
            signal: signal.cloned(),
            on_progress: None,
            announce: false,
        };
        load_with(&file, Some(self.status.clone()), request).await
    }

    async fn recover(&self) -> Result<u32, JsError> {
        let backend = acquire(Preference::Webgpu, Some(self.status.clone())).await?;
        self.memory.rebind(backend.clone())?;
        Ok(backend.generation)
    }
}

/// The memory account a manager registers with, and where its models run: the app's
/// `memoryManager` (and its backend), else a new account on the backend `options.backend`
/// resolves to.
pub(in crate::web) async fn account(
    options: &JsValue,
    status: &Rc<StatusStream>,
    device_memory_gb: Option<f64>,
) -> Result<(Rc<Account>, Preference), JsError> {
    match field(options, "memoryManager") {
        Some(v) => {
            let memory = shared::<MemoryManager>(&v).ok_or_else(|| {
                JsError::of(ErrorCode::InvalidOptions, "options.memoryManager must be a MemoryManager.")
            })?;
            let preference = if memory.inner.kind() == BackendKind::Cpu { Preference::Cpu } else { Preference::Webgpu };
            Ok((memory.inner, preference))
        }
        None => {
            let asked = Preference::parse(field(options, "backend").map(|v| v.unchecked_into::<BackendArg>()))?;
            let preference = resolve(asked, status).await?;
            Ok((open_account(status.clone(), preference, device_memory_gb, None).await?, preference))
        }
    }
}

/// 'auto' made concrete once for a manager ([`models_run_on`]).
async fn resolve(asked: Preference, status: &Rc<StatusStream>) -> Result<Preference, JsError> {
    if asked != Preference::Auto {
        return Ok(asked);
    }
    Ok(models_run_on(&*acquire(Preference::Auto, Some(status.clone())).await?, status))
}
