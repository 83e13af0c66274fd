//! The page's one compute device.
//!
//! WebGPU can be registered with burn once per page (per device kind), so the first
//! successful `initDevice` is kept and every later call (and every concurrent one) gets
//! the same device. A failed WebGPU attempt is not kept: the next call tries again.
//!
//! When the browser reports the device lost (a driver reset, the GPU process crashing,
//! `destroyDevice()`), the kept device is forgotten, the listeners registered with
//! [`on_device_lost`] are told (the `ModelManager` unloads its models), and the next call
//! creates a new device as the next *generation* (a new burn runtime).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use futures::FutureExt;
use futures::future::{LocalBoxFuture, Shared};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::error::JsError;
use super::streamer::SseStreamer;
use super::types::BackendArg;
use crate::backend::{AdapterInfo, Backend, BackendError, BackendKind, MatmulCheck, matmul_check};
use crate::status::StatusStream;

type PendingWebGpu = Shared<LocalBoxFuture<'static, Result<Rc<Backend>, BackendError>>>;

type LostListener = Rc<dyn Fn(u32, &str)>;

thread_local! {
    static WEBGPU: RefCell<Option<PendingWebGpu>> = const { RefCell::new(None) };
    /// The generation the next WebGPU initialisation gets (the current one's, until a loss).
    static GENERATION: Cell<u32> = const { Cell::new(0) };
    static LOST_LISTENERS: RefCell<Vec<LostListener>> = const { RefCell::new(Vec::new()) };
}

/// The generation of the page's WebGPU device now (0, then one more after each loss).
pub fn generation() -> u32 {
    GENERATION.with(Cell::get)
}

/// Calls `listener(generation, message)` whenever a WebGPU device of the page is lost.
pub fn on_device_lost(listener: LostListener) {
    LOST_LISTENERS.with(|l| l.borrow_mut().push(listener));
}

/// The browser said device `lost` is gone: forget it (once) and tell the listeners.
fn device_lost(lost: u32, message: String) {
    if GENERATION.with(Cell::get) == lost {
        GENERATION.with(|g| g.set(lost + 1));
        WEBGPU.with(|cell| cell.borrow_mut().take());
    }
    let listeners: Vec<LostListener> = LOST_LISTENERS.with(|l| l.borrow().clone());
    for listener in listeners {
        listener(lost, &message);
    }
}

/// Destroys the page's WebGPU device (`GPUDevice.destroy()`), as a driver reset or a crashed
/// GPU process would: every model on it is lost, a `ModelManager` says so on its status
/// stream and re-creates the device on its next load. For testing an app's recovery.
/// Returns `false` when no WebGPU device exists.
#[wasm_bindgen(js_name = destroyDevice)]
pub fn destroy_device() -> bool {
    let current = WEBGPU.with(|cell| cell.borrow().as_ref().and_then(|p| p.peek().cloned()));
    match current {
        Some(Ok(backend)) => match &backend.wgpu {
            Some(device) => {
                device.destroy();
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// The shared WebGPU initialisation, started on first use.
fn webgpu() -> PendingWebGpu {
    WEBGPU.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| {
                let generation = GENERATION.with(Cell::get);
                async move {
                    let on_lost = move |message: String| device_lost(generation, message);
                    let result = match Backend::webgpu(generation, on_lost).await {
                        Ok(mut backend) => {
                            if let Some(adapter) = &mut backend.adapter {
                                describe_adapter_from_js(adapter).await;
                            }
                            Ok(Rc::new(backend))
                        }
                        Err(e) => Err(e),
                    };
                    if result.is_err() {
                        WEBGPU.with(|cell| cell.borrow_mut().take());
                    }
                    result
                }
                .boxed_local()
                .shared()
            })
            .clone()
    })
}

/// wgpu's WebGPU backend reports no adapter identity, so ask the browser's own
/// `GPUAdapter.info` (vendor, architecture, device, description). Best effort: a
/// browser without it leaves the fields as they were.
async fn describe_adapter_from_js(adapter: &mut AdapterInfo) {
    use js_sys::{Promise, Reflect};
    let get = |v: &JsValue, k: &str| Reflect::get(v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED);
    let gpu = get(&get(&js_sys::global(), "navigator"), "gpu");
    let Ok(request) = Reflect::get(&gpu, &JsValue::from_str("requestAdapter")) else { return };
    let Some(request) = request.dyn_ref::<js_sys::Function>() else { return };
    let Ok(promise) = request.call0(&gpu) else { return };
    let Ok(js_adapter) = wasm_bindgen_futures::JsFuture::from(Promise::resolve(&promise)).await else { return };
    let info = get(&js_adapter, "info");
    let text = |k: &str| get(&info, k).as_string().filter(|s| !s.is_empty());
    if let Some(vendor) = text("vendor") {
        adapter.vendor = vendor;
    }
    if let Some(architecture) = text("architecture") {
        adapter.architecture = architecture;
    }
    if let Some(description) = text("description") {
        adapter.description = description;
    }
    // Browsers often hide `device` and `description` for privacy; vendor and
    // architecture (e.g. "google swiftshader") still tell a person what this is.
    let fallback = [text("vendor"), text("architecture")].into_iter().flatten().collect::<Vec<_>>().join(" ");
    if let Some(name) = text("device").or_else(|| text("description")).or(Some(fallback).filter(|f| !f.is_empty())) {
        adapter.name = name;
    }
}

/// Which backend `initDevice` may pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preference {
    /// WebGPU, else the CPU (and the status stream says so).
    Auto,
    /// WebGPU or an error.
    Webgpu,
    Cpu,
}

impl Preference {
    pub fn parse(value: Option<BackendArg>) -> Result<Preference, JsError> {
        let value = value.map(JsValue::from).filter(|v| !v.is_undefined() && !v.is_null());
        if value.as_ref().is_some_and(|v| v.as_string().is_none()) {
            return Err(JsError::invalid_input("INVALID_ARGUMENT", "The backend must be 'auto', 'webgpu' or 'cpu'."));
        }
        match value.and_then(|v| v.as_string()).as_deref() {
            None | Some("auto") => Ok(Preference::Auto),
            Some("webgpu") => Ok(Preference::Webgpu),
            Some("cpu") => Ok(Preference::Cpu),
            Some(other) => Err(JsError::invalid_input(
                "INVALID_ARGUMENT",
                format!("Unknown backend {other:?}; expected 'auto', 'webgpu' or 'cpu'."),
            )),
        }
    }
}

/// Resolves the device for `preference`, narrating on `status` when given.
pub async fn acquire(preference: Preference, status: Option<Rc<StatusStream>>) -> Result<Rc<Backend>, JsError> {
    // A test harness may not run the module's start function; burn needs them.
    super::ensure_static_constructors();
    let say = |message: String| {
        if let Some(s) = &status {
            s.info(message, None);
        }
    };
    if preference == Preference::Cpu {
        say("Using the CPU backend.".to_owned());
        return Ok(Rc::new(Backend::cpu()));
    }
    say("Requesting a WebGPU adapter...".to_owned());
    match webgpu().await {
        Ok(backend) => {
            if let Some(a) = &backend.adapter {
                say(format!(
                    "WebGPU ready: {} ({}), max storage binding {} MiB.",
                    if a.name.is_empty() { "unnamed adapter" } else { &a.name },
                    a.backend,
                    a.max_storage_buffer_binding_size >> 20
                ));
            }
            Ok(backend)
        }
        Err(e @ BackendError::NoAdapter { .. }) if preference == Preference::Auto => {
            say(format!("WebGPU is unavailable ({e}); falling back to the CPU backend, which is much slower."));
            Ok(Rc::new(Backend::cpu()))
        }
        Err(e) => {
            let error = JsError::from(e);
            if let Some(s) = &status {
                s.error(error.info(), None);
            }
            Err(error)
        }
    }
}

fn describe(backend: &Backend) -> JsValue {
    #[derive(serde::Serialize)]
    struct DeviceInfo<'a> {
        kind: BackendKind,
        adapter: &'a Option<crate::backend::AdapterInfo>,
    }
    let info = DeviceInfo { kind: backend.kind, adapter: &backend.adapter };
    info.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap_or(JsValue::NULL)
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
        Ok(describe(&backend))
    })
}

/// Multiplies two deterministic `m×k` and `k×n` matrices on the page's device
/// through burn and compares the result with an f64 CPU reference.
#[wasm_bindgen(js_name = checkDevice, unchecked_return_type = "Promise<MatmulCheck>")]
pub fn check_device(backend: Option<BackendArg>, m: Option<u32>, k: Option<u32>, n: Option<u32>) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        let preference = Preference::parse(backend)?;
        let (m, k, n) = (m.unwrap_or(64) as usize, k.unwrap_or(256) as usize, n.unwrap_or(48) as usize);
        if m == 0 || k == 0 || n == 0 || m * k > 1 << 24 || k * n > 1 << 24 {
            return Err(JsError::invalid_input(
                "INVALID_ARGUMENT",
                "checkDevice: m, k and n must be positive and each matrix at most 16M elements.",
            )
            .into());
        }
        let backend = acquire(preference, None).await?;
        let check: MatmulCheck = matmul_check(&backend.device, m, k, n, 42).await.map_err(JsError::from)?;
        Ok(check.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap_or(JsValue::NULL))
    })
}
