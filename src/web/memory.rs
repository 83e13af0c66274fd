//! `MemoryManager` for JS: the core [`memory::Account`] on the page's one device (the one
//! `initDevice` and `LanguageModel.load` use; never a second). The account estimates, measures
//! and checks every argument (`memory::request`, `crate::input`); this file reads JS values and
//! converts results. Every method takes `&self` (state lives in `Cell`/`RefCell`), so
//! overlapping JS calls never meet wasm-bindgen's "recursive use of an object" error.

use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use crate::backend::BackendKind;
use crate::input;
use crate::memory::request::{self, CreateOptions, RequirementArg, RequirementForOptions};
use crate::memory::{Account, DeviceLimits, Requirement};
use crate::status::StatusStream;

use super::convert::{key_arg, now_ms, to_js};
use super::device::{Preference, acquire};
use super::error::JsError;
use super::gguf::GgufFile;
use super::streamer::{SseStreamer, field, read_options};
use super::types::{BackendArg, MemoryManagerOptionsArg, RequirementForOptionsArg};

/// What fits on this device, and why not; what is resident, measured. Create with
/// `await MemoryManager.create(streamer, options)`.
#[wasm_bindgen]
pub struct MemoryManager {
    pub(super) inner: Rc<Account>,
}

/// `navigator.deviceMemory` in a window or a worker, where the browser has it.
fn navigator_device_memory() -> Option<f64> {
    field(&field(&js_sys::global(), "navigator")?, "deviceMemory")?.as_f64().filter(|gb| gb.is_finite() && *gb > 0.0)
}

/// `MemoryManager.create` for Rust callers (the `ModelManager`): the account on the page's
/// device for `preference`, the allocation probe run up to `probe_cap` bytes first when given.
pub(super) async fn open_account(
    status: Rc<StatusStream>,
    preference: Preference,
    device_memory_gb: Option<f64>,
    probe_cap: Option<u64>,
) -> Result<Rc<Account>, JsError> {
    let backend = acquire(preference, Some(status.clone())).await?;
    let device_memory_gb = device_memory_gb.or_else(navigator_device_memory);
    Ok(Rc::new(Account::open(backend, status, device_memory_gb, probe_cap).await?))
}

/// Once the device's queue is flushed (a disposed model's buffers handed back), a `metrics`
/// event tagged with `key` reports the measured bytes.
pub(super) fn settle_later(account: &Rc<Account>, key: &str) {
    let (account, key) = (account.clone(), key.to_owned());
    wasm_bindgen_futures::spawn_local(async move { account.settle(Some(&key)).await });
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
            let opts: CreateOptions = read_options(Some(opts_js.clone()), "MemoryManager options")?;
            let (device_memory_gb, probe_cap) = opts.resolve().map_err(JsError::from)?;
            let preference = Preference::parse(field(&opts_js, "backend").map(|v| v.unchecked_into::<BackendArg>()))?;
            Ok(MemoryManager { inner: open_account(status, preference, device_memory_gb, probe_cap).await? }.into())
        })
    }

    /// Internal: a second JS handle on this account (see `convert::shared`).
    #[wasm_bindgen(js_name = "__share", skip_typescript)]
    pub fn share(&self) -> MemoryManager {
        MemoryManager { inner: self.inner.clone() }
    }

    /// What the browser said about the adapter, as the budget estimate used it.
    #[wasm_bindgen(getter, unchecked_return_type = "AdapterFacts")]
    pub fn adapter(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.facts().reported())
    }

    /// 'webgpu' or 'cpu': the backend whose memory this manager accounts for.
    #[wasm_bindgen(getter, unchecked_return_type = "'webgpu' | 'cpu'")]
    pub fn backend(&self) -> String {
        if self.inner.kind() == BackendKind::Cpu { "cpu" } else { "webgpu" }.to_owned()
    }

    /// The single-buffer limits requirements are checked against (`null` on the CPU backend).
    #[wasm_bindgen(getter, unchecked_return_type = "DeviceLimits | null")]
    pub fn limits(&self) -> Result<JsValue, JsError> {
        let limits = self.inner.core().limits();
        if limits == DeviceLimits::UNLIMITED { Ok(JsValue::NULL) } else { to_js(&limits) }
    }

    /// The real budget (the estimate or the override) with its source and explanation.
    #[wasm_bindgen(getter, unchecked_return_type = "MemoryBudget")]
    pub fn budget(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.core().budget())
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
        let opts: RequirementForOptions = read_options(options, "requirementFor options")?;
        let options = opts.resolve()?;
        let requirement = Requirement::from_header(file.header(), options, &self.inner.core().limits())?;
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
            RequirementArg::Bytes(n)
        } else if requirement.is_object() {
            RequirementArg::Object(serde_wasm_bindgen::from_value(requirement).map_err(|e| e.to_string()))
        } else {
            RequirementArg::Other
        };
        to_js(&self.inner.core().can_load(&key, &requirement.into_requirement("canLoadModel")?))
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
        let bytes = input::bytes(bytes, "registerLoaded: bytes")?;
        self.inner.loaded(&key, bytes, now_ms());
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
        let was = self.inner.unloaded(&key);
        settle_later(&self.inner, &key);
        Ok(was)
    }

    /// Marks `key` as just used (LRU); `false` if it is not registered.
    pub fn touch(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Result<bool, JsError> {
        Ok(self.inner.core().touch(&key_arg(&key, "touch")?, now_ms()))
    }

    /// Keeps `key` out of eviction; `false` if it is not registered.
    pub fn pin(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Result<bool, JsError> {
        Ok(self.inner.core().pin(&key_arg(&key, "pin")?))
    }

    /// Makes `key` evictable again; `false` if it is not registered.
    pub fn unpin(&self, #[wasm_bindgen(unchecked_param_type = "string")] key: JsValue) -> Result<bool, JsError> {
        Ok(self.inner.core().unpin(&key_arg(&key, "unpin")?))
    }

    /// Sets the real budget to exactly `bytes` (no margin); `null` goes back to the estimate.
    #[wasm_bindgen(js_name = setBudgetBytes)]
    pub fn set_budget_bytes(&self, bytes: Option<f64>) -> Result<(), JsError> {
        match bytes {
            Some(b) => self.inner.core().set_budget_bytes(input::bytes(b, "setBudgetBytes")?),
            None => self.inner.core().clear_budget_override(),
        }
        Ok(())
    }

    /// Pretends the device has 256 MB (unless a simulated budget is set): changes what
    /// `canLoadModel` answers, not the real limits.
    #[wasm_bindgen(js_name = setSimulationLowVRAM)]
    pub fn set_simulation_low_vram(&self, on: bool) {
        self.inner.core().set_simulation_low_vram(on);
    }

    /// Pretends the device has `bytes` (`null` ends it); wins over `setSimulationLowVRAM`.
    #[wasm_bindgen(js_name = setSimulatedBudget)]
    pub fn set_simulated_budget(&self, bytes: Option<f64>) -> Result<(), JsError> {
        let bytes = bytes.map(|b| input::bytes(b, "setSimulatedBudget")).transpose()?;
        self.inner.core().set_simulated_budget(bytes);
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
        let limits = if limits.is_null() || limits.is_undefined() {
            None
        } else {
            let number = |name: &str| field(&limits, name).and_then(|v| v.as_f64());
            Some(request::simulated_limits(number("maxStorageBufferBindingSize"), number("maxBufferSize"))?)
        };
        self.inner.core().set_simulated_limits(limits);
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
            inner.flush().await.map_err(JsError::from)?;
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
