//! The page's one compute device, for JS: `initDevice`, `checkDevice`, `destroyDevice`.
//!
//! The bookkeeping (one shared initialisation, generations after a loss, loss listeners) is the
//! core's page device ([`page_webgpu`]); this file starts the WebGPU initialisation, asks the
//! browser's own `GPUAdapter.info` who the adapter is, and converts.

use std::rc::Rc;

use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::error::JsError;
use super::streamer::SseStreamer;
use super::types::BackendArg;
use crate::backend::{AdapterInfo, Backend, MatmulCheck, matmul_check};
pub use crate::device::Preference;
use crate::device::{BrowserAdapterInfo, PendingBackend, check_dims, page_webgpu};
use crate::status::StatusStream;

/// Destroys the page's WebGPU device (`GPUDevice.destroy()`), as a driver reset or a crashed
/// GPU process would: every model on it is lost, a `ModelManager` says so on its status
/// stream and re-creates the device on its next load. For testing an app's recovery.
/// Returns `false` when no WebGPU device exists.
#[wasm_bindgen(js_name = destroyDevice)]
pub fn destroy_device() -> bool {
    crate::device::destroy_page_webgpu()
}

/// The page's WebGPU initialisation (the core's [`page_webgpu`]), the adapter named by the
/// browser.
fn webgpu() -> PendingBackend {
    page_webgpu(|generation, on_lost| async move {
        // wgpu never asks for `subgroups`: ask for it around wgpu's request (see features.js).
        let restore = ask_for_subgroups();
        let backend = Backend::webgpu(generation, on_lost).await;
        let _ = restore.call0(&JsValue::NULL);
        let mut backend = backend?;
        if let Some(adapter) = &mut backend.adapter {
            adapter.subgroups = granted_subgroups();
            describe_adapter_from_js(adapter).await;
        }
        Ok(backend)
    })
}

#[wasm_bindgen(module = "/src/web/features.js")]
extern "C" {
    /// Makes the next `requestDevice` ask for `subgroups` where the adapter has it; returns the
    /// function that undoes this.
    #[wasm_bindgen(js_name = askForSubgroups)]
    fn ask_for_subgroups() -> js_sys::Function;
    /// `{ minSize, maxSize }` when the device [`ask_for_subgroups`] saw created has subgroups.
    #[wasm_bindgen(js_name = grantedSubgroups)]
    fn granted_subgroups_js() -> JsValue;
}

/// The subgroup sizes of the device just created, `None` without subgroups.
fn granted_subgroups() -> Option<crate::infer::gpu::SubgroupSizes> {
    let v = granted_subgroups_js();
    let size = |k: &str| js_sys::Reflect::get(&v, &JsValue::from_str(k)).ok()?.as_f64().map(|f| f as u32);
    if v.is_null() || v.is_undefined() {
        return None;
    }
    let (min_size, max_size) = (size("minSize")?, size("maxSize")?);
    let sizes = crate::infer::gpu::GpuFeatures::of_wgpu(crate::backend::wgpu::Features::SUBGROUP, (min_size, max_size));
    sizes.subgroups
}

/// wgpu's WebGPU backend reports only the description and the fallback flag of the adapter it
/// holds, so ask the browser's own `GPUAdapter.info` (vendor, architecture, device) with the
/// options burn's runtime asked with (`high-performance`), and take the answer only when it
/// describes the adapter in use ([`AdapterInfo::is_described_by`]). Best effort: a browser
/// without it, or an answer about another GPU, leaves the fields as they were.
async fn describe_adapter_from_js(adapter: &mut AdapterInfo) {
    use js_sys::{Object, Promise, Reflect};
    let get = |v: &JsValue, k: &str| Reflect::get(v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED);
    let gpu = get(&get(&js_sys::global(), "navigator"), "gpu");
    let Ok(request) = Reflect::get(&gpu, &JsValue::from_str("requestAdapter")) else { return };
    let Some(request) = request.dyn_ref::<js_sys::Function>() else { return };
    let options = Object::new();
    let _ = Reflect::set(&options, &"powerPreference".into(), &"high-performance".into());
    let Ok(promise) = request.call1(&gpu, &options) else { return };
    let Ok(js_adapter) = wasm_bindgen_futures::JsFuture::from(Promise::resolve(&promise)).await else { return };
    let info = get(&js_adapter, "info");
    let text = |k: &str| get(&info, k).as_string().filter(|s| !s.is_empty());
    let is_fallback_adapter =
        get(&info, "isFallbackAdapter").as_bool().or_else(|| get(&js_adapter, "isFallbackAdapter").as_bool());
    adapter.describe_from(BrowserAdapterInfo {
        vendor: text("vendor"),
        architecture: text("architecture"),
        device: text("device"),
        description: text("description"),
        is_fallback_adapter,
    });
}

impl Preference {
    /// The `backend` option: absent, or one of the names [`Preference::from_name`] takes.
    pub fn parse(value: Option<BackendArg>) -> Result<Preference, JsError> {
        let value = value.map(JsValue::from).filter(|v| !v.is_undefined() && !v.is_null());
        let name = value.map(|v| v.as_string().ok_or_else(Preference::not_a_name)).transpose()?;
        Ok(Preference::from_name(name.as_deref())?)
    }
}

/// The device for `preference` (the core's [`crate::device::acquire`] over the page's WebGPU
/// initialisation), narrating on `status` when given.
pub async fn acquire(preference: Preference, status: Option<Rc<StatusStream>>) -> Result<Rc<Backend>, JsError> {
    // A test harness may not run the module's start function; burn needs them.
    super::ensure_static_constructors();
    Ok(crate::device::acquire(preference, status.as_deref(), webgpu).await?)
}

/// Initialises the page's compute device: `'auto'` (default) takes WebGPU and
/// falls back to the CPU, `'webgpu'` rejects with `GpuUnavailableError` when there
/// is no adapter, `'cpu'` skips WebGPU. Each step and any failure is told on `streamer`.
#[wasm_bindgen(js_name = initDevice, unchecked_return_type = "Promise<DeviceInfo>")]
pub fn init_device(streamer: &SseStreamer, backend: Option<BackendArg>) -> js_sys::Promise {
    let status = Some(streamer.stream());
    wasm_bindgen_futures::future_to_promise(async move {
        let preference = Preference::parse(backend)?;
        let backend = acquire(preference, status).await?;
        Ok(backend.info().serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap_or(JsValue::NULL))
    })
}

/// Multiplies two deterministic `m×k` and `k×n` matrices on the page's device with
/// Hearth's own matrix product and compares the result with an f64 CPU reference.
#[wasm_bindgen(js_name = checkDevice, unchecked_return_type = "Promise<MatmulCheck>")]
pub fn check_device(backend: Option<BackendArg>, m: Option<u32>, k: Option<u32>, n: Option<u32>) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        let preference = Preference::parse(backend)?;
        let (m, k, n) = check_dims(m, k, n).map_err(JsError::from)?;
        let backend = acquire(preference, None).await?;
        let check: MatmulCheck = matmul_check(&backend, m, k, n, 42).await.map_err(JsError::from)?;
        Ok(check.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap_or(JsValue::NULL))
    })
}
