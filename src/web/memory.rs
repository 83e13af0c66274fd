//! `MemoryManager` for JS: the core [`crate::memory::MemoryManager`] bound to the page's device.
//!
//! `create` acquires the page's one device (the same one `initDevice` and `LanguageModel.load`
//! use; never a second), turns what the browser says about the adapter (`GPUAdapter.info`, its
//! buffer limits, `navigator.deviceMemory`) into [`AdapterFacts`], and builds the core manager.
//! Resident bytes are **measured**: on WebGPU from cubecl's allocator report for the whole device
//! (`bytes_in_use` and `bytes_reserved`), on the CPU backend from the registered sum.
//!
//! Every method takes `&self` (state lives in `Cell`/`RefCell` inside the core manager), so
//! overlapping JS calls never meet wasm-bindgen's "recursive use of an object" error, and every
//! failure is a typed `JsError`.

use std::cell::RefCell;
use std::rc::Rc;

use burn::backend::{CubeDevice, DispatchDevice};
use burn::cubecl::MemoryScope;
use js_sys::{Promise, Reflect};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::backend::{Backend, BackendKind};
use crate::infer::gpu::Gpu;
use crate::infer::{Compute, Shape};
use crate::memory::{
    self, AdapterFacts, Budget, DeviceLimits, EstimatedFrom, LimitKind, LimitProblem, Requirement, RequirementOptions,
    format_bytes,
};
use crate::status::{Metrics, StatusStream};

use super::device::{Preference, acquire};
use super::error::{ErrorClass, JsError};
use super::gguf::GgufFile;
use super::streamer::{SseStreamer, field};
use super::types::{BackendArg, MemoryManagerOptionsArg, RequirementForOptionsArg};

/// The largest integer a JS number holds exactly.
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

struct Inner {
    core: memory::MemoryManager,
    /// Replaced when the device is lost and re-created (`rebind`).
    backend: RefCell<Rc<Backend>>,
    facts: AdapterFacts,
    status: Rc<StatusStream>,
    /// A GPU backend kept for flushing the queue (one tiny buffer plus its scratch), so that
    /// buffers dropped by a disposed model are handed back before a measurement. `None` on the
    /// CPU backend.
    flusher: RefCell<Option<Rc<Gpu>>>,
}

/// What fits on this device, and why not; what is resident, measured. Create with
/// `await MemoryManager.create(streamer, options)`.
#[wasm_bindgen]
pub struct MemoryManager {
    inner: Rc<Inner>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct CreateOptions {
    device_memory_gb: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RequirementForOptions {
    context_length: Option<u32>,
}

/// A `Requirement` coming back from JS (what `requirementFor` returned, or a catalog's own).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequirementIn {
    total_bytes: f64,
    #[serde(default)]
    exact: bool,
    #[serde(default)]
    context: Option<u32>,
    #[serde(default)]
    batch: Option<u32>,
    #[serde(default)]
    weight_bytes: Option<f64>,
    #[serde(default)]
    kv_cache_bytes: Option<f64>,
    #[serde(default)]
    activation_bytes: Option<f64>,
    #[serde(default)]
    problems: Vec<ProblemIn>,
}

#[derive(Deserialize)]
struct ProblemIn {
    limit: LimitIn,
    message: String,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
enum LimitIn {
    TotalBudget,
    TensorOverBindingLimit { name: String, needed_bytes: f64, limit_bytes: f64 },
    BufferSize { name: String, needed_bytes: f64, limit_bytes: f64 },
    MissingFeature { feature: String, tensor: Option<String> },
}

impl From<LimitIn> for LimitKind {
    fn from(l: LimitIn) -> LimitKind {
        let b = |v: f64| if v.is_finite() && v > 0.0 { v as u64 } else { 0 };
        match l {
            LimitIn::TotalBudget => LimitKind::TotalBudget,
            LimitIn::TensorOverBindingLimit { name, needed_bytes, limit_bytes } => {
                LimitKind::TensorOverBindingLimit { name, needed_bytes: b(needed_bytes), limit_bytes: b(limit_bytes) }
            }
            LimitIn::BufferSize { name, needed_bytes, limit_bytes } => {
                LimitKind::BufferSize { name, needed_bytes: b(needed_bytes), limit_bytes: b(limit_bytes) }
            }
            LimitIn::MissingFeature { feature, tensor } => LimitKind::MissingFeature { feature, tensor },
        }
    }
}

/// A byte count from JS: a finite, non-negative integer within the safe range.
pub(super) fn bytes_arg(value: f64, what: &str) -> Result<u64, JsError> {
    if !(value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= MAX_SAFE) {
        return Err(JsError::invalid_input(
            "INVALID_ARGUMENT",
            format!("{what} must be a non-negative integer number of bytes, got {value}."),
        ));
    }
    Ok(value as u64)
}

/// A model key from JS: a non-empty string.
pub(super) fn key_arg(value: &JsValue, what: &str) -> Result<String, JsError> {
    match value.as_string() {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(JsError::invalid_input(
            "INVALID_ARGUMENT",
            format!("{what}: the model key must be a non-empty string."),
        )),
    }
}

pub(super) fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| {
        JsError::new(ErrorClass::InvalidInput, "SERIALIZE", format!("Could not convert a result for JS: {e}."))
    })
}

/// `Date.now()`, reported back as `lastUsed`.
pub(super) fn now_ms() -> Option<f64> {
    Some(js_sys::Date::now())
}

/// `navigator.deviceMemory` in a window or a worker, where the browser has it.
fn navigator_device_memory() -> Option<f64> {
    let navigator = Reflect::get(&js_sys::global(), &JsValue::from_str("navigator")).ok()?;
    if !navigator.is_object() {
        return None;
    }
    Reflect::get(&navigator, &JsValue::from_str("deviceMemory")).ok()?.as_f64().filter(|gb| gb.is_finite() && *gb > 0.0)
}

/// cubecl's allocator report for the whole device: (bytes in use, bytes reserved). `None` on
/// the CPU backend.
fn allocator_usage(backend: &Backend) -> Option<(u64, u64)> {
    if backend.kind == BackendKind::Cpu {
        return None;
    }
    match backend.device.as_dispatch() {
        DispatchDevice::Cube(cube @ CubeDevice::Wgpu(_)) => {
            let usage = cube.client().memory_report(MemoryScope::Device).usage();
            Some((usage.bytes_in_use, usage.bytes_reserved))
        }
        _ => None,
    }
}

/// Asks cubecl to give back what its pools hold and nothing uses (its uniform pools, the
/// kernel-parameter cache, emptied pages). Best effort: refused while a graph records.
fn allocator_cleanup(backend: &Backend) {
    if backend.kind == BackendKind::Cpu {
        return;
    }
    if let DispatchDevice::Cube(cube @ CubeDevice::Wgpu(_)) = backend.device.as_dispatch() {
        let _ = cube.client().memory_cleanup();
    }
}

/// Where a budget came from, in words.
fn source_text(from: &EstimatedFrom) -> String {
    match from {
        EstimatedFrom::Override => "set by the application".to_owned(),
        EstimatedFrom::Probe => "estimated from an allocation probe".to_owned(),
        EstimatedFrom::TierTable { tier } => format!("estimated from the adapter tier table, tier {tier}"),
        EstimatedFrom::DeviceMemory => "estimated from navigator.deviceMemory".to_owned(),
        EstimatedFrom::Default => "the default, as nothing is known about the adapter".to_owned(),
    }
}

impl Inner {
    fn stats(&self) -> memory::Stats {
        let measured = allocator_usage(&self.backend.borrow());
        self.core.stats(measured.map(|m| m.0), measured.map(|m| m.1))
    }

    fn emit_metrics(&self, key: Option<&str>) -> memory::Stats {
        let stats = self.stats();
        self.status.metrics(
            Metrics {
                used_bytes: stats.used_bytes,
                reserved_bytes: Some(stats.reserved_bytes),
                budget_bytes: Some(stats.budget_bytes),
                available_bytes: Some(stats.available_bytes),
                usage_percent: Some(stats.usage_percent),
                loaded_models: Some(stats.loaded.len() as u32),
            },
            key,
        );
        stats
    }

    /// Waits for the device's queued work (a one-value readback), so that buffers whose last
    /// handle was dropped are handed back to the driver, then cleans the allocator's pools,
    /// before the next measurement.
    async fn flush(&self) -> Result<(), JsError> {
        // An `Rc`, not a `RefCell` borrow: overlapping flushes each wait on the queue.
        let Some(gpu) = self.flusher.borrow().clone() else { return Ok(()) };
        let result = async {
            let probe = gpu.alloc(1)?;
            gpu.read(&probe, 0, 1).await.map(|_| ())
        }
        .await;
        allocator_cleanup(&self.backend.borrow());
        result.map_err(|e| JsError::new(ErrorClass::ModelLoad, "DEVICE_READ_FAILED", e.to_string()))
    }
}

#[wasm_bindgen]
impl MemoryManager {
    /// Acquires the page's device (shared with `initDevice` and `LanguageModel.load`), estimates
    /// the memory budget from the adapter and says how on `streamer` (an `info` event), then emits
    /// a first `metrics` event. Options: `backend` ('auto' | 'webgpu' | 'cpu'), `deviceMemoryGb`
    /// (instead of `navigator.deviceMemory`), `probe` (`true` or `{ capBytes }`: allocate buffers
    /// inside an out-of-memory error scope up to the cap (default 2 GiB), release them at once,
    /// and let what was allocated inform the budget; off by default).
    #[wasm_bindgen(unchecked_return_type = "Promise<MemoryManager>")]
    pub fn create(streamer: &SseStreamer, options: Option<MemoryManagerOptionsArg>) -> Promise {
        let status = streamer.stream();
        wasm_bindgen_futures::future_to_promise(async move {
            let opts_js: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
            let opts: CreateOptions = super::streamer::read_options(Some(opts_js.clone()), "MemoryManager options")?;
            let probe_cap = match field(&opts_js, "probe") {
                None => None,
                Some(v) if v == JsValue::FALSE => None,
                Some(v) if v == JsValue::TRUE => Some(DEFAULT_PROBE_CAP),
                Some(v) => {
                    let cap = field(&v, "capBytes").and_then(|c| c.as_f64()).ok_or_else(|| {
                        JsError::invalid_input("INVALID_OPTIONS", "probe must be true, false or { capBytes }.")
                    })?;
                    Some(bytes_arg(cap, "probe.capBytes")?.clamp(1, MAX_PROBE_CAP))
                }
            };
            if let Some(gb) = opts.device_memory_gb
                && !(gb.is_finite() && gb > 0.0)
            {
                return Err(
                    JsError::invalid_input("INVALID_OPTIONS", "deviceMemoryGb must be a positive number.").into()
                );
            }
            let preference = Preference::parse(field(&opts_js, "backend").map(|v| v.unchecked_into::<BackendArg>()))?;
            Ok(MemoryManager::create_with(status, preference, opts.device_memory_gb, probe_cap).await?.into())
        })
    }
}

/// The GPU backend `Inner::flush` waits on (`None` on the CPU backend).
fn flusher_for(backend: &Backend) -> Result<Option<Rc<Gpu>>, JsError> {
    match backend.kind {
        BackendKind::Cpu => Ok(None),
        _ => Gpu::new(backend.device.clone())
            .map(|gpu| Some(Rc::new(gpu)))
            .map_err(|e| JsError::new(ErrorClass::GpuUnavailable, "DEVICE_INIT_FAILED", e.to_string())),
    }
}

/// The allocation probe's cap when `probe: true`: enough to tell a small integrated GPU from a
/// discrete one, small enough that a healthy device never nears exhaustion because of it.
const DEFAULT_PROBE_CAP: u64 = 2 << 30;
/// The largest cap accepted.
const MAX_PROBE_CAP: u64 = 16 << 30;

/// Allocates buffers of `chunk` bytes inside `pushErrorScope('out-of-memory')` until one fails
/// or `cap` is reached, then destroys them all at once. Out-of-memory on `createBuffer` is a
/// recoverable WebGPU error (the allocation fails, the device lives), which is why the probe
/// only allocates and never writes or binds.
async fn probe_allocation(device: &burn::tensor::wgpu::wgpu::Device, cap: u64, chunk: u64) -> memory::Probe {
    use burn::tensor::wgpu::wgpu;
    let mut buffers = Vec::new();
    let mut allocated = 0u64;
    let mut hit_out_of_memory = false;
    while allocated < cap {
        let size = chunk.min(cap - allocated).max(4) & !3;
        let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("hearth allocation probe"),
            size,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let failed = scope.pop().await.is_some();
        if failed {
            buffer.destroy();
            hit_out_of_memory = true;
            break;
        }
        buffers.push(buffer);
        allocated += size;
    }
    for buffer in buffers {
        buffer.destroy();
    }
    memory::Probe { allocated_bytes: allocated, hit_out_of_memory }
}

impl MemoryManager {
    /// `MemoryManager.create` for Rust callers (the `ModelManager`): the allocation probe runs
    /// up to `probe_cap` bytes first when given.
    pub(super) async fn create_with(
        status: Rc<StatusStream>,
        preference: Preference,
        device_memory_gb: Option<f64>,
        probe_cap: Option<u64>,
    ) -> Result<MemoryManager, JsError> {
        let backend = acquire(preference, Some(status.clone())).await?;
        let device_memory_gb = device_memory_gb.or_else(navigator_device_memory);
        let (facts, limits) = match &backend.adapter {
            Some(a) => {
                let facts = AdapterFacts {
                    vendor: a.vendor.clone(),
                    architecture: a.architecture.clone(),
                    device: a.name.clone(),
                    description: a.description.clone(),
                    is_fallback_adapter: false,
                    max_buffer_size: a.max_buffer_size,
                    max_storage_buffer_binding_size: a.max_storage_buffer_binding_size,
                    device_memory_gb,
                    probe: match (probe_cap, &backend.wgpu) {
                        (Some(cap), Some(device)) => {
                            let chunk = a.max_buffer_size.clamp(1 << 20, 256 << 20);
                            let probe = probe_allocation(device, cap, chunk).await;
                            status.info(
                                format!(
                                    "Allocation probe: {} allocated and released{}.",
                                    format_bytes(probe.allocated_bytes),
                                    if probe.hit_out_of_memory { ", then out of memory" } else { " (its cap)" }
                                ),
                                None,
                            );
                            Some(probe)
                        }
                        _ => None,
                    },
                };
                let limits = DeviceLimits {
                    max_buffer_size: a.max_buffer_size,
                    max_storage_buffer_binding_size: a.max_storage_buffer_binding_size,
                };
                (facts, limits)
            }
            // The CPU backend: system memory, no buffer limits.
            None => (
                AdapterFacts { vendor: "cpu".to_owned(), device_memory_gb, ..AdapterFacts::default() },
                DeviceLimits::UNLIMITED,
            ),
        };
        let core = memory::MemoryManager::with_budget(Budget::estimate(&facts), limits);
        let flusher = flusher_for(&backend)?;
        let inner = Inner { core, backend: RefCell::new(backend), facts, status, flusher: RefCell::new(flusher) };
        let budget = inner.core.budget();
        inner.status.info(
            format!(
                "GPU memory budget: {} ({}: {})",
                format_bytes(budget.bytes),
                source_text(&budget.estimated_from),
                budget.explanation
            ),
            None,
        );
        inner.emit_metrics(None);
        Ok(MemoryManager { inner: Rc::new(inner) })
    }

    /// Another handle on the same account.
    pub(super) fn share(&self) -> MemoryManager {
        MemoryManager { inner: self.inner.clone() }
    }

    /// The Rust side of a JS `MemoryManager` object, without taking it from JS (wasm-bindgen's
    /// conversion consumes the object it converts, so it converts a fresh handle instead).
    pub(super) fn from_js(value: &JsValue) -> Option<MemoryManager> {
        use wasm_bindgen::convert::TryFromJsValue;
        let share = Reflect::get(value, &"__share".into()).ok()?.dyn_into::<js_sys::Function>().ok()?;
        MemoryManager::try_from_js_value(share.call0(value).ok()?).ok()
    }

    pub(super) fn core(&self) -> &memory::MemoryManager {
        &self.inner.core
    }

    pub(super) fn is_cpu(&self) -> bool {
        self.inner.backend.borrow().kind == BackendKind::Cpu
    }

    /// Emits a `metrics` event tagged with `key`.
    pub(super) fn metrics(&self, key: Option<&str>) -> memory::Stats {
        self.inner.emit_metrics(key)
    }

    /// The device was lost: no more flushes on it (every read would fail).
    pub(super) fn device_lost(&self) {
        self.inner.flusher.borrow_mut().take();
    }

    /// Accounts for `backend` from now on (the device re-created after a loss).
    pub(super) fn rebind(&self, backend: Rc<Backend>) -> Result<(), JsError> {
        *self.inner.flusher.borrow_mut() = flusher_for(&backend)?;
        *self.inner.backend.borrow_mut() = backend;
        Ok(())
    }

    /// Emits `metrics` after `key` left the account; once the device's queue is flushed (the
    /// model's buffers handed back), a second `metrics` reports the measured bytes.
    pub(super) fn released(&self, key: &str) {
        self.inner.emit_metrics(Some(key));
        let inner = self.inner.clone();
        let key = key.to_owned();
        wasm_bindgen_futures::spawn_local(async move {
            // A failed readback leaves the measurement as it is; the event still goes out.
            let _ = inner.flush().await;
            inner.emit_metrics(Some(&key));
        });
    }
}

#[wasm_bindgen]
impl MemoryManager {
    /// Internal: a second JS handle on this account (see `from_js`).
    #[wasm_bindgen(js_name = "__share", skip_typescript)]
    pub fn share_js(&self) -> MemoryManager {
        self.share()
    }

    /// What the browser said about the adapter, as the budget estimate used it.
    #[wasm_bindgen(getter, unchecked_return_type = "AdapterFacts")]
    pub fn adapter(&self) -> Result<JsValue, JsError> {
        let mut facts = self.inner.facts.clone();
        // u64::MAX (the CPU backend's "no limit") is not a JS number; report 0 = none.
        if facts.max_buffer_size == u64::MAX {
            facts.max_buffer_size = 0;
            facts.max_storage_buffer_binding_size = 0;
        }
        to_js(&facts)
    }

    /// 'webgpu' or 'cpu': the backend whose memory this manager accounts for.
    #[wasm_bindgen(getter, unchecked_return_type = "'webgpu' | 'cpu'")]
    pub fn backend(&self) -> String {
        match self.inner.backend.borrow().kind {
            BackendKind::Cpu => "cpu".to_owned(),
            _ => "webgpu".to_owned(),
        }
    }

    /// The single-buffer limits requirements are checked against (`null` on the CPU backend).
    #[wasm_bindgen(getter, unchecked_return_type = "DeviceLimits | null")]
    pub fn limits(&self) -> Result<JsValue, JsError> {
        let limits = self.inner.core.limits();
        if limits == DeviceLimits::UNLIMITED {
            return Ok(JsValue::NULL);
        }
        to_js(&limits)
    }

    /// The real budget (the estimate or the override) with its source and explanation.
    #[wasm_bindgen(getter, unchecked_return_type = "MemoryBudget")]
    pub fn budget(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.core.budget())
    }

    /// The exact device bytes the model in `file` will occupy (weights as laid out on the GPU,
    /// KV cache for `contextLength` (default 2048, clamped to the model's), activations), from
    /// the header alone, with every buffer checked against this device's limits.
    /// Throws `ModelFormatError` for a file the loader would refuse.
    #[wasm_bindgen(js_name = requirementFor, unchecked_return_type = "Requirement")]
    pub fn requirement_for(
        &self,
        file: &GgufFile,
        options: Option<RequirementForOptionsArg>,
    ) -> Result<JsValue, JsError> {
        let opts: RequirementForOptions = super::streamer::read_options(options, "requirementFor options")?;
        let context = opts.context_length.unwrap_or(2048);
        if context == 0 {
            return Err(JsError::invalid_input("INVALID_OPTIONS", "contextLength must be at least 1."));
        }
        let options = RequirementOptions { context, batch: Shape::for_context(context as usize).batch as u32 };
        let requirement = Requirement::from_header(file.header(), options, &self.inner.core.limits())?;
        to_js(&requirement)
    }

    /// Whether the model `key` needing `requirement` (what `requirementFor` returned, or a byte
    /// count) can be loaded now: `{ can, reason, requiredBytes, availableBytes, evictable, ... }`.
    #[wasm_bindgen(js_name = canLoadModel, unchecked_return_type = "CanLoadResult")]
    pub fn can_load_model(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Requirement | number")] requirement: JsValue,
    ) -> Result<JsValue, JsError> {
        let key = key_arg(&key, "canLoadModel")?;
        let requirement = if let Some(n) = requirement.as_f64() {
            Requirement::precomputed(bytes_arg(n, "canLoadModel: the requirement")?, 2048)
        } else if requirement.is_object() {
            let r: RequirementIn = serde_wasm_bindgen::from_value(requirement).map_err(|e| {
                JsError::invalid_input(
                    "INVALID_ARGUMENT",
                    format!("canLoadModel: the requirement must be a number of bytes or a Requirement ({e})."),
                )
            })?;
            let total = bytes_arg(r.total_bytes, "canLoadModel: requirement.totalBytes")?;
            let opt = |v: Option<f64>| v.filter(|v| v.is_finite() && *v >= 0.0).map_or(0, |v| v as u64);
            Requirement {
                exact: r.exact,
                context: r.context.unwrap_or(2048),
                batch: r.batch.unwrap_or(RequirementOptions::default().batch),
                weight_bytes: r.weight_bytes.map_or(total, |v| opt(Some(v))),
                kv_cache_bytes: opt(r.kv_cache_bytes),
                activation_bytes: opt(r.activation_bytes),
                total_bytes: total,
                largest_tensor: None,
                problems: r
                    .problems
                    .into_iter()
                    .map(|p| LimitProblem { limit: p.limit.into(), message: p.message })
                    .collect(),
            }
        } else {
            return Err(JsError::invalid_input(
                "INVALID_ARGUMENT",
                "canLoadModel: the requirement must be a number of bytes or a Requirement.",
            ));
        };
        to_js(&self.inner.core.can_load(&key, &requirement))
    }

    /// Records `key` as resident with `bytes` (e.g. `model.info.residentBytes`) and as just
    /// used, then emits a `metrics` event.
    #[wasm_bindgen(js_name = registerLoaded)]
    pub fn register_loaded(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
        bytes: f64,
    ) -> Result<(), JsError> {
        let key = key_arg(&key, "registerLoaded")?;
        let bytes = bytes_arg(bytes, "registerLoaded: bytes")?;
        self.inner.core.register_loaded(&key, bytes, now_ms());
        self.inner.emit_metrics(Some(&key));
        Ok(())
    }

    /// Forgets `key` (returns whether it was registered) and emits a `metrics` event; once the
    /// device's queued work is done (the model's buffers handed back), a second one reports the
    /// measured bytes.
    #[wasm_bindgen(js_name = registerUnloaded)]
    pub fn register_unloaded(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue,
    ) -> Result<bool, JsError> {
        let key = key_arg(&key, "registerUnloaded")?;
        let was = self.inner.core.register_unloaded(&key).is_some();
        self.released(&key);
        Ok(was)
    }

    /// Marks `key` as just used (LRU); `false` if it is not registered.
    pub fn touch(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Result<bool, JsError> {
        Ok(self.inner.core.touch(&key_arg(&key, "touch")?, now_ms()))
    }

    /// Keeps `key` out of eviction; `false` if it is not registered.
    pub fn pin(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Result<bool, JsError> {
        Ok(self.inner.core.pin(&key_arg(&key, "pin")?))
    }

    /// Makes `key` evictable again; `false` if it is not registered.
    pub fn unpin(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Result<bool, JsError> {
        Ok(self.inner.core.unpin(&key_arg(&key, "unpin")?))
    }

    /// Sets the real budget to exactly `bytes` (no margin); `null` goes back to the estimate.
    #[wasm_bindgen(js_name = setBudgetBytes)]
    pub fn set_budget_bytes(&self, bytes: Option<f64>) -> Result<(), JsError> {
        match bytes {
            Some(b) => self.inner.core.set_budget_bytes(bytes_arg(b, "setBudgetBytes")?),
            None => self.inner.core.clear_budget_override(),
        }
        Ok(())
    }

    /// Pretends the device has 256 MB (unless a simulated budget is set): changes what
    /// `canLoadModel` answers, not the real limits.
    #[wasm_bindgen(js_name = setSimulationLowVRAM)]
    pub fn set_simulation_low_vram(&self, on: bool) {
        self.inner.core.set_simulation_low_vram(on);
    }

    /// Pretends the device has `bytes` (`null` ends it); wins over `setSimulationLowVRAM`.
    #[wasm_bindgen(js_name = setSimulatedBudget)]
    pub fn set_simulated_budget(&self, bytes: Option<f64>) -> Result<(), JsError> {
        let bytes = bytes.map(|b| bytes_arg(b, "setSimulatedBudget")).transpose()?;
        self.inner.core.set_simulated_budget(bytes);
        Ok(())
    }

    /// Pretends the adapter's single-buffer limits are `{ maxStorageBufferBindingSize,
    /// maxBufferSize? }` (`null` ends it): `requirementFor` and the `ModelManager` check every
    /// tensor against them. Changes no real limit.
    #[wasm_bindgen(js_name = setSimulatedLimits)]
    pub fn set_simulated_limits(
        &self,
        #[wasm_bindgen(
            unchecked_param_type = "{ maxStorageBufferBindingSize: number; maxBufferSize?: number } | null"
        )]
        limits: JsValue,
    ) -> Result<(), JsError> {
        if limits.is_null() || limits.is_undefined() {
            self.inner.core.set_simulated_limits(None);
            return Ok(());
        }
        let binding = field(&limits, "maxStorageBufferBindingSize").and_then(|v| v.as_f64()).ok_or_else(|| {
            JsError::invalid_input(
                "INVALID_ARGUMENT",
                "setSimulatedLimits: give { maxStorageBufferBindingSize, maxBufferSize? } or null.",
            )
        })?;
        let binding = bytes_arg(binding, "setSimulatedLimits: maxStorageBufferBindingSize")?;
        let buffer = match field(&limits, "maxBufferSize").and_then(|v| v.as_f64()) {
            Some(b) => bytes_arg(b, "setSimulatedLimits: maxBufferSize")?,
            None => binding,
        };
        if binding == 0 || buffer == 0 {
            return Err(JsError::invalid_input(
                "INVALID_ARGUMENT",
                "setSimulatedLimits: limits must be at least 1 byte.",
            ));
        }
        self.inner.core.set_simulated_limits(Some(DeviceLimits {
            max_buffer_size: buffer,
            max_storage_buffer_binding_size: binding,
        }));
        Ok(())
    }

    /// The account: budget with its source, used and reserved bytes measured from the allocator
    /// (WebGPU; the registered sum on the CPU), available bytes, usage and the resident models.
    #[wasm_bindgen(js_name = getStats, unchecked_return_type = "MemoryStats")]
    pub fn get_stats(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.stats())
    }

    /// `getStats()` after the device's queued work is done, so that buffers dropped by a
    /// disposed model are no longer counted.
    #[wasm_bindgen(unchecked_return_type = "Promise<MemoryStats>")]
    pub fn refresh(&self) -> Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            inner.flush().await?;
            Ok(to_js(&inner.stats())?)
        })
    }

    /// Emits a `metrics` event (measured bytes, budget, usage, models) on the streamer given to
    /// `create`, tagged with `key` when given; returns the stats it reported.
    #[wasm_bindgen(js_name = emitMetrics, unchecked_return_type = "MemoryStats")]
    pub fn emit_metrics(&self, key: Option<String>) -> Result<JsValue, JsError> {
        to_js(&self.inner.emit_metrics(key.as_deref()))
    }
}
