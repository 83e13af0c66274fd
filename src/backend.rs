//! Where the model runs: burn-wgpu's runtime (cubecl on wgpu) on the browser's WebGPU, or
//! natively on wgpu's own adapters; or Hearth's CPU engine, which keeps its own memory and
//! needs no device.
//!
//! Hearth launches its own WGSL kernels and runs no burn tensor operations, so it holds the
//! wgpu runtime's device ([`WgpuDevice`]) directly rather than burn's multi-backend `Device`
//! (whose dispatch would link every operation of every backend into the wasm).
//!
//! A page may create the WebGPU device only once per device kind (a second
//! registration fails with "A server is still registered for device"), so the web
//! layer keeps the [`Backend`] this returns until the device is lost; after a loss,
//! the next one is registered under a new kind ([`Backend::generation`]).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

pub use burn::cubecl::wgpu::WgpuDeviceKind;
pub use burn_wgpu::graphics::AutoGraphicsApi;
pub use burn_wgpu::{RuntimeOptions, WgpuBackend, WgpuDevice, WgpuInitError, WgpuSetup, wgpu};
use serde::Serialize;

use crate::gguf::GgmlType;
use crate::infer::{Compute, Cpu, InferError, gpu::Gpu};
use crate::rng::Rng;

/// Which compute path a [`Backend`] drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// burn-wgpu's runtime on the browser's WebGPU (or native wgpu).
    Webgpu,
    /// Hearth's CPU engine.
    Cpu,
}

/// What the adapter says about itself, and the limits that decide what fits.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdapterInfo {
    pub name: String,
    pub vendor: String,
    pub architecture: String,
    pub description: String,
    pub backend: String,
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
    pub shader_f16: bool,
    /// The device has `subgroups`, of these sizes (`null` without). Natively wgpu reports it;
    /// in the browser the web layer asks for it and fills this in.
    pub subgroups: Option<crate::infer::gpu::SubgroupSizes>,
    /// The adapter in use says it is a fallback (WebGPU's `isFallbackAdapter`; natively, a
    /// device of type CPU): a software implementation, whatever its name.
    pub is_fallback_adapter: bool,
}

impl AdapterInfo {
    /// The optional features the GPU kernels may use on this device.
    pub fn gpu_features(&self) -> crate::infer::gpu::GpuFeatures {
        crate::infer::gpu::GpuFeatures { subgroups: self.subgroups, shader_f16: self.shader_f16 }
    }

    /// Whether this adapter runs shaders on the CPU (see [`is_software_adapter`]).
    pub fn is_software(&self) -> bool {
        is_software_adapter(
            self.is_fallback_adapter,
            &self.vendor,
            &[&self.name, &self.description, &self.architecture],
        )
    }
}

/// Names (lowercase) by which WebGPU and Vulkan implementations on the CPU identify themselves:
/// SwiftShader (Chrome's fallback), llvmpipe/lavapipe and softpipe (Mesa), WARP ("Microsoft
/// Basic Render Driver"), and drivers that call themselves "software".
pub const SOFTWARE_ADAPTER_NAMES: &[&str] =
    &["swiftshader", "llvmpipe", "lavapipe", "softpipe", "basic render", "software"];

/// Vendors (lowercase, as browsers name them, or PCI-style ids as native drivers give them)
/// whose adapters are all software: Mesa's Vulkan vendor id (lavapipe, llvmpipe) and Google's
/// (SwiftShader).
pub const SOFTWARE_ADAPTER_VENDORS: &[&str] = &["mesa", "0x10005", "google", "0x1ae0"];

/// The one rule for "this adapter is the CPU running a GPU emulator": the adapter says it is a
/// fallback (or natively, reports no card: `wgpu::DeviceType::Cpu`), its `vendor` is one of
/// [`SOFTWARE_ADAPTER_VENDORS`], or `vendor` or any of `texts` (name, description,
/// architecture; in any case) contains one of [`SOFTWARE_ADAPTER_NAMES`]. Hearth prefers its
/// CPU backend on such adapters, picks barrier-free kernels there, and plans their memory as a
/// share of system memory.
pub fn is_software_adapter(fallback: bool, vendor: &str, texts: &[&str]) -> bool {
    let named = |t: &str| {
        let t = t.to_lowercase();
        SOFTWARE_ADAPTER_NAMES.iter().any(|n| t.contains(n))
    };
    fallback
        || SOFTWARE_ADAPTER_VENDORS.contains(&vendor.trim().to_lowercase().as_str())
        || named(vendor)
        || texts.iter().any(|t| named(t))
}

/// A device as an app reads it: `{ kind, adapter }` (`adapter` null on the CPU).
#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo<'a> {
    pub kind: BackendKind,
    pub adapter: &'a Option<AdapterInfo>,
}

/// Why a WebGPU [`Backend`] without a wgpu device cannot be used.
pub const NO_WGPU_DEVICE: &str = "the GPU backend needs a wgpu device, and this backend has none";

/// An initialised compute device and what is known about it.
#[derive(Debug, Clone)]
pub struct Backend {
    /// The wgpu runtime's device (WebGPU only; `None` on the CPU, whose engine needs none).
    pub device: Option<WgpuDevice>,
    pub kind: BackendKind,
    /// `None` on the CPU backend.
    pub adapter: Option<AdapterInfo>,
    /// The wgpu device behind `device` (WebGPU only): for its lost callback and `destroy()`.
    pub wgpu: Option<wgpu::Device>,
    /// Which WebGPU device of the page this is: 0 for the first, one more after each loss
    /// (each is a separate burn runtime).
    pub generation: u32,
    /// The WebGPU errors no error scope caught on this device (this generation's): recorded by
    /// the device's uncaptured-error handler instead of panicking. Empty forever on the CPU.
    pub faults: DeviceFaults,
}

/// What kind of WebGPU error reached the device's uncaptured-error handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GpuFaultKind {
    /// A validation error: a bug in a kernel, a binding or a size Hearth computed.
    Validation,
    /// An allocation the device refused.
    OutOfMemory,
    /// Any other failure of the implementation.
    Internal,
}

impl GpuFaultKind {
    /// The kind as JS reads it (`error.gpuErrorKind`): `validation`, `outOfMemory`, `internal`.
    pub fn as_str(self) -> &'static str {
        match self {
            GpuFaultKind::Validation => "validation",
            GpuFaultKind::OutOfMemory => "outOfMemory",
            GpuFaultKind::Internal => "internal",
        }
    }
}

/// One WebGPU error outside every error scope: its kind and the device's message.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuFault {
    pub kind: GpuFaultKind,
    pub message: String,
}

impl GpuFault {
    /// The fault a wgpu error is.
    pub fn from_wgpu(error: &wgpu::Error) -> GpuFault {
        use wgpu::Error;
        let kind = match error {
            Error::OutOfMemory { .. } => GpuFaultKind::OutOfMemory,
            Error::Validation { .. } => GpuFaultKind::Validation,
            Error::Internal { .. } => GpuFaultKind::Internal,
        };
        // wgpu's own text is a heading ("Validation Error"); the causes say what failed.
        let mut message = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        GpuFault { kind, message }
    }
}

impl fmt::Display for GpuFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            GpuFaultKind::Validation => "validation error",
            GpuFaultKind::OutOfMemory => "out of memory",
            GpuFaultKind::Internal => "internal error",
        };
        write!(f, "WebGPU {kind}: {}", self.message)
    }
}

/// The uncaptured WebGPU errors of one device, numbered in the order they came.
///
/// cubecl's handler panics on any uncaptured error (wgpu's default does too), and a panic in
/// wasm poisons the module; [`DeviceFaults::install`] replaces it with one that records the
/// error here. Whoever runs work on the device takes a [`DeviceFaults::mark`] before and asks
/// [`DeviceFaults::since`] after each step: a fault fails that work with a typed error, while
/// the module, and work that started after it, go on. Errors arrive asynchronously, so one
/// raised by one model's step may be seen by another's running at the same time; both fail,
/// neither panics. Cloning shares the log.
///
/// Work that runs on the device holds a [`Work`] guard ([`DeviceFaults::begin`]); a fault that
/// comes while none is held happened outside any work (an app's own use of the device, a late
/// echo) and goes to the [`DeviceFaults::on_idle_fault`] listener, which tells it on a status
/// stream, since no call would fail with it. The device's loss is kept here too
/// ([`DeviceFaults::lost`]), so that work running on it learns why its device stopped answering.
#[derive(Clone, Default)]
pub struct DeviceFaults {
    log: Arc<Mutex<FaultLog>>,
}

/// Told every fault that comes while no work runs on the device.
pub type IdleFaultListener = Arc<dyn Fn(&GpuFault) + Send + Sync>;

#[derive(Default)]
struct FaultLog {
    /// Faults recorded so far.
    count: u64,
    /// The most recent faults, with their numbers (1-based), oldest first; at most
    /// [`DeviceFaults::KEPT`].
    recent: Vec<(u64, GpuFault)>,
    /// [`Work`] guards alive now.
    working: u32,
    /// The browser's message once the device is lost.
    lost: Option<String>,
    idle_listener: Option<IdleFaultListener>,
}

impl fmt::Debug for DeviceFaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let log = self.log();
        f.debug_struct("DeviceFaults")
            .field("count", &log.count)
            .field("working", &log.working)
            .field("lost", &log.lost)
            .finish_non_exhaustive()
    }
}

/// Work running on a device ([`DeviceFaults::begin`]): while any is alive, faults are the
/// work's to report; dropping it ends the work.
#[must_use = "the work ends when the guard is dropped"]
pub struct Work {
    faults: DeviceFaults,
    mark: u64,
}

impl Work {
    /// The count when the work began: [`DeviceFaults::since`] of it is the work's first fault.
    pub fn mark(&self) -> u64 {
        self.mark
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        let mut log = self.faults.log();
        log.working = log.working.saturating_sub(1);
    }
}

impl DeviceFaults {
    /// Faults kept for [`DeviceFaults::since`]; older ones are counted, not kept (a broken kernel
    /// can raise one per dispatch).
    pub const KEPT: usize = 8;

    fn log(&self) -> MutexGuard<'_, FaultLog> {
        // A panic while holding the lock cannot leave the log inconsistent (every update is one
        // push), so a poisoned lock is used as it is.
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records `fault`; when no work runs on the device, tells the idle-fault listener too
    /// (outside the lock: the listener may read the log).
    pub fn record(&self, fault: GpuFault) {
        let mut log = self.log();
        log.count += 1;
        let n = log.count;
        if log.recent.len() == Self::KEPT {
            log.recent.remove(0);
        }
        let idle = if log.working == 0 { log.idle_listener.clone() } else { None };
        log.recent.push((n, fault.clone()));
        drop(log);
        if let Some(listener) = idle {
            listener(&fault);
        }
    }

    /// Work starts on the device: the faults from now until the guard drops are the work's
    /// to report (see [`Work::mark`]), not the idle-fault listener's.
    pub fn begin(&self) -> Work {
        let mut log = self.log();
        log.working += 1;
        Work { faults: self.clone(), mark: log.count }
    }

    /// Whether work holds a [`Work`] guard now.
    pub fn is_working(&self) -> bool {
        self.log().working > 0
    }

    /// Tells `listener` every fault that comes while no work runs (replacing the previous one).
    pub fn on_idle_fault(&self, listener: IdleFaultListener) {
        self.log().idle_listener = Some(listener);
    }

    /// The device was lost with the browser's `message`.
    pub fn set_lost(&self, message: &str) {
        self.log().lost.get_or_insert_with(|| message.to_owned());
    }

    /// The browser's message if the device was lost.
    pub fn lost(&self) -> Option<String> {
        self.log().lost.clone()
    }

    /// How many faults were recorded so far: pass it to [`DeviceFaults::since`] later.
    pub fn mark(&self) -> u64 {
        self.log().count
    }

    /// The first fault recorded after `mark` that is still kept (the first of a burst is the
    /// cause, the rest its echoes), or `None` when there was none.
    pub fn since(&self, mark: u64) -> Option<GpuFault> {
        let log = self.log();
        if log.count <= mark {
            return None;
        }
        log.recent.iter().find(|(n, _)| *n > mark).map(|(_, f)| f.clone())
    }

    /// Makes `device` record its uncaptured errors here instead of panicking. Call it after
    /// the runtime is set up on `device`: wgpu keeps the last handler installed, and cubecl
    /// installs its own (which panics) when it registers the device.
    pub fn install(&self, device: &wgpu::Device) {
        let faults = self.clone();
        device.on_uncaptured_error(Arc::new(move |error| faults.record(GpuFault::from_wgpu(&error))));
    }
}

/// Why a backend could not be used.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendError {
    /// The browser or driver offers no WebGPU adapter.
    NoAdapter { detail: String },
    /// An adapter exists but refused to give a device, or the runtime rejected it.
    Init { detail: String },
    /// Reading a result back from the device failed.
    Readback { detail: String },
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::NoAdapter { detail } => write!(
                f,
                "No WebGPU adapter is available ({detail}). Use a browser with WebGPU enabled \
                 (Chrome/Edge 113+, or start Chromium with --enable-unsafe-webgpu), or use the CPU backend."
            ),
            BackendError::Init { detail } => {
                write!(f, "The WebGPU device could not be initialised: {detail}")
            }
            BackendError::Readback { detail } => {
                write!(f, "Reading a result back from the device failed: {detail}")
            }
        }
    }
}

impl std::error::Error for BackendError {}

impl crate::error::Coded for BackendError {
    fn code(&self) -> crate::error::ErrorCode {
        use crate::error::ErrorCode;
        match self {
            BackendError::NoAdapter { .. } => ErrorCode::NoAdapter,
            BackendError::Init { .. } => ErrorCode::DeviceInitFailed,
            BackendError::Readback { .. } => ErrorCode::ReadbackFailed,
        }
    }
}

impl Backend {
    /// Hearth's CPU engine. Always available.
    pub fn cpu() -> Backend {
        Backend {
            device: None,
            kind: BackendKind::Cpu,
            adapter: None,
            wgpu: None,
            generation: 0,
            faults: DeviceFaults::default(),
        }
    }

    /// What `initDevice` resolves with: the kind and the adapter.
    pub fn info(&self) -> DeviceInfo<'_> {
        DeviceInfo { kind: self.kind, adapter: &self.adapter }
    }

    /// Acquires the WebGPU adapter and device through burn-wgpu's runtime, asynchronously
    /// (the only way on wasm). `generation` 0 is the page's first device; after a loss, the
    /// next generation registers a new runtime (one is kept per device kind, so the lost one
    /// cannot be initialised again). `on_lost(message)` runs when the browser reports the
    /// device lost. The device's uncaptured WebGPU errors are recorded in [`Backend::faults`]
    /// instead of panicking. Natively (wgpu's own adapters) the same path serves the GPU tests;
    /// there `generation` picks the adapter of that index.
    pub async fn webgpu(generation: u32, on_lost: impl Fn(String) + Send + 'static) -> Result<Backend, BackendError> {
        // Browsers ignore the index (there is no adapter enumeration on the web): it only
        // names a fresh runtime.
        let kind = if generation > 0 {
            WgpuDeviceKind::DiscreteGpu(generation as usize)
        } else {
            WgpuDeviceKind::DefaultDevice
        };
        let device = WgpuDevice::new(kind);
        // Enough launches per command encoder for a whole decode step: one submission per token.
        let setup = init_wgpu(&device, Some(crate::infer::gpu::TASKS_PER_SUBMISSION)).await.map_err(|e| match e {
            WgpuInitError::AdapterUnavailable { message, .. } => BackendError::NoAdapter { detail: message },
            other => BackendError::Init { detail: other.to_string() },
        })?;
        let info = setup.adapter.get_info();
        // The kernels read f16 pairs with `unpack2x16float` (core WGSL, so every browser has it);
        // wgpu's own compiler wants the adapter to say so, which every Vulkan, Metal and D3D12
        // driver does except llvmpipe without shader-f16.
        #[cfg(not(target_arch = "wasm32"))]
        if !setup.adapter.get_downlevel_capabilities().flags.contains(wgpu::DownlevelFlags::SHADER_F16_IN_F32) {
            return Err(BackendError::Init {
                detail: format!("{} cannot run unpack2x16float (no SHADER_F16_IN_F32); use the CPU backend", info.name),
            });
        }
        let limits = setup.device.limits();
        let gpu_features = crate::infer::gpu::GpuFeatures::of_wgpu(
            setup.device.features(),
            (info.subgroup_min_size, info.subgroup_max_size),
        );
        let adapter = AdapterInfo {
            name: info.name,
            // A PCI vendor id natively; 0 (unknown) on the web, where the web layer fills it in.
            vendor: if info.vendor == 0 { String::new() } else { format!("0x{:04x}", info.vendor) },
            architecture: String::new(),
            description: info.driver_info,
            backend: format!("{:?}", setup.backend),
            max_buffer_size: limits.max_buffer_size,
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            shader_f16: gpu_features.shader_f16,
            subgroups: gpu_features.subgroups,
            // wgpu reports the browser's `GPUAdapterInfo.isFallbackAdapter` of the adapter it
            // holds as a CPU device.
            is_fallback_adapter: info.device_type == wgpu::DeviceType::Cpu,
        };
        // After the runtime's setup, so that this handler replaces cubecl's (which panics).
        let faults = DeviceFaults::default();
        faults.install(&setup.device);
        let lost = faults.clone();
        setup.device.set_device_lost_callback(move |reason, message| {
            let message = format!("{reason:?}: {message}");
            // First, so that work the loss stops reads why when its device calls fail.
            lost.set_lost(&message);
            on_lost(message);
        });
        Ok(Backend {
            device: Some(device),
            kind: BackendKind::Webgpu,
            adapter: Some(adapter),
            wgpu: Some(setup.device.clone()),
            generation,
            faults,
        })
    }
}

/// The outcome of [`matmul_check`]: how far the device's product is from an f64
/// reference computed on the CPU in plain Rust.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MatmulCheck {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub max_abs_error: f64,
    /// ‖device − reference‖₂ / ‖reference‖₂.
    pub rel_l2_error: f64,
}

impl MatmulCheck {
    /// f32 accumulation over `k` terms of magnitude ≤ 1 stays far below this.
    pub const TOLERANCE: f64 = 1e-4;

    pub fn passed(&self) -> bool {
        self.rel_l2_error.is_finite() && self.rel_l2_error < Self::TOLERANCE
    }
}

/// Deterministic inputs in [-1, 1) from [`Rng`], so the same check can be replayed anywhere.
pub fn check_values(seed: u64, len: usize) -> Vec<f32> {
    Rng::new(seed).signed_f32s(len)
}

/// `a (m×k) · b (k×n)` in f64, row-major.
pub fn reference_matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0f64; m * n];
    for i in 0..m {
        for p in 0..k {
            let aip = f64::from(a[i * k + p]);
            for j in 0..n {
                out[i * n + j] += aip * f64::from(b[p * n + j]);
            }
        }
    }
    out
}

/// Runs `a · b` on `backend` with Hearth's own matrix product (the one every projection of a
/// model runs: the WGSL kernels on WebGPU, the CPU engine's f32 path on the CPU), reads it back
/// asynchronously and compares it with [`reference_matmul`].
pub async fn matmul_check(
    backend: &Backend,
    m: usize,
    k: usize,
    n: usize,
    seed: u64,
) -> Result<MatmulCheck, BackendError> {
    let a = check_values(seed, m * k);
    let b = check_values(seed ^ 0x9E37_79B9_7F4A_7C15, k * n);
    let expected = reference_matmul(&a, &b, m, k, n);
    let got = match &backend.device {
        Some(device) => match Gpu::new(device.clone()) {
            Ok(gpu) => product(&gpu, &a, &b, m, k, n).await,
            Err(e) => Err(e),
        },
        None => product(&Cpu::exact(), &a, &b, m, k, n).await,
    }
    .map_err(|e| BackendError::Readback { detail: e.to_string() })?;
    if got.len() != expected.len() {
        return Err(BackendError::Readback {
            detail: format!("expected {} values, got {}", expected.len(), got.len()),
        });
    }
    let (mut max_abs, mut diff2, mut ref2) = (0.0f64, 0.0f64, 0.0f64);
    for (g, e) in got.iter().zip(&expected) {
        let d = f64::from(*g) - e;
        // `f64::max` ignores NaN; a NaN anywhere must fail the check instead.
        max_abs = if d.is_nan() || max_abs.is_nan() { f64::NAN } else { max_abs.max(d.abs()) };
        diff2 += d * d;
        ref2 += e * e;
    }
    let rel_l2_error = if ref2 > 0.0 { (diff2 / ref2).sqrt() } else { diff2.sqrt() };
    Ok(MatmulCheck { m, k, n, max_abs_error: max_abs, rel_l2_error })
}

/// `a (m×k) · b (k×n)` on `compute`: `b` goes up as an F32 weight, which the engines store as
/// GGUF does, one row per output (`bᵀ`, `n` rows of `k`).
async fn product<C: Compute>(
    compute: &C,
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
) -> Result<Vec<f32>, InferError> {
    let mut bt = Vec::with_capacity(k * n * 4);
    for j in 0..n {
        for p in 0..k {
            bt.extend_from_slice(&b[p * n + j].to_le_bytes());
        }
    }
    let x = compute.upload_f32(a)?;
    let w = compute.upload_weight("checkDevice", GgmlType::F32, n, k, &bt)?;
    let out = compute.alloc(m * n)?;
    compute.matmul(&x, &w, m, &out);
    compute.read(&out, 0, m * n).await
}

/// Registers burn-wgpu's runtime for `device`, with `tasks_max` launches per submission (the
/// runtime's default when `None`), and returns the wgpu handles it runs on. Once per device
/// kind and process: a second registration fails.
pub async fn init_wgpu(device: &WgpuDevice, tasks_max: Option<usize>) -> Result<WgpuSetup, WgpuInitError> {
    let options = RuntimeOptions::with_tasks_max(tasks_max)?;
    burn_wgpu::try_init_setup_async::<AutoGraphicsApi>(device, options).await
}

/// [`init_wgpu`] on the calling thread, natively (tests and tools).
#[cfg(not(target_family = "wasm"))]
pub fn init_wgpu_blocking(device: &WgpuDevice, tasks_max: Option<usize>) -> Result<WgpuSetup, WgpuInitError> {
    let options = RuntimeOptions::with_tasks_max(tasks_max)?;
    burn_wgpu::try_init_setup::<AutoGraphicsApi>(device, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_info_is_the_kind_and_the_adapter() {
        let cpu = Backend::cpu();
        let json = serde_json::to_value(cpu.info()).unwrap();
        assert_eq!(json["kind"], serde_json::to_value(BackendKind::Cpu).unwrap());
        assert!(json["adapter"].is_null());
        assert_eq!(json.as_object().unwrap().len(), 2);
    }

    #[test]
    fn check_values_are_deterministic_and_in_range() {
        let a = check_values(7, 1000);
        assert_eq!(a, check_values(7, 1000));
        assert_ne!(a, check_values(8, 1000));
        assert!(a.iter().all(|v| (-1.0..1.0).contains(v)));
    }

    #[test]
    fn software_adapters_by_name_or_fallback_flag() {
        let adapter = |name: &str, vendor: &str, architecture: &str| AdapterInfo {
            name: name.into(),
            vendor: vendor.into(),
            architecture: architecture.into(),
            description: String::new(),
            backend: "Vulkan".into(),
            max_buffer_size: 1 << 30,
            max_storage_buffer_binding_size: 1 << 27,
            shader_f16: false,
            subgroups: None,
            is_fallback_adapter: false,
        };
        assert!(adapter("llvmpipe (LLVM 15.0.7, 256 bits)", "0x10005", "").is_software());
        assert!(adapter("google swiftshader", "google", "swiftshader").is_software());
        assert!(adapter("", "google", "SwiftShader").is_software());
        assert!(adapter("Some Device", "Google", "").is_software(), "by vendor alone");
        assert!(adapter("Microsoft Basic Render Driver", "0x1414", "").is_software());
        assert!(adapter("softpipe", "", "").is_software());
        assert!(!adapter("NVIDIA GeForce RTX 4070", "nvidia", "ada").is_software());
        assert!(!adapter("Apple M2", "apple", "metal-3").is_software());
        assert!(is_software_adapter(true, "nvidia", &["NVIDIA GeForce RTX 4070"]));
        // The adapter's own fallback flag counts, whatever it is called.
        let flagged = AdapterInfo { is_fallback_adapter: true, ..adapter("NVIDIA GeForce RTX 4070", "nvidia", "ada") };
        assert!(flagged.is_software());
        assert!(!is_software_adapter(false, "", &[]));
    }

    #[test]
    fn device_faults_are_seen_by_work_that_started_before_them() {
        let faults = DeviceFaults::default();
        let fault = |n: usize| GpuFault { kind: GpuFaultKind::Validation, message: format!("fault {n}") };
        let before = faults.mark();
        assert_eq!(faults.since(before), None);
        faults.record(fault(1));
        faults.record(GpuFault { kind: GpuFaultKind::OutOfMemory, message: "oom".into() });
        // The first fault after the mark is the one reported; a clone shares the log.
        assert_eq!(faults.clone().since(before), Some(fault(1)));
        let after = faults.mark();
        assert_eq!(after, 2);
        assert_eq!(faults.since(after), None, "work that starts after a fault is not failed by it");
        assert_eq!(faults.since(1).map(|f| f.kind), Some(GpuFaultKind::OutOfMemory));
        // A burst keeps only the most recent faults, and still counts every one.
        for n in 0..20 {
            faults.record(fault(n));
        }
        assert_eq!(faults.mark(), 22);
        assert_eq!(faults.since(after), Some(fault(20 - DeviceFaults::KEPT)), "the oldest still kept");
        assert_eq!(faults.since(21), Some(fault(19)));
        assert_eq!(
            fault(3).to_string(),
            "WebGPU validation error: fault 3",
            "the message names the kind and keeps the device's words"
        );
    }

    #[test]
    fn a_fault_outside_any_work_goes_to_the_idle_listener_and_only_then() {
        let faults = DeviceFaults::default();
        let told = Arc::new(Mutex::new(Vec::new()));
        let sink = told.clone();
        faults.on_idle_fault(Arc::new(move |f: &GpuFault| sink.lock().unwrap().push(f.message.clone())));
        let fault = |m: &str| GpuFault { kind: GpuFaultKind::Validation, message: m.into() };
        faults.record(fault("idle 1"));
        let work = faults.begin();
        assert!(faults.is_working());
        faults.record(fault("during work"));
        assert_eq!(faults.since(work.mark()), Some(fault("during work")), "the work's to report");
        let nested = faults.begin();
        drop(work);
        faults.record(fault("during the second work"));
        drop(nested);
        assert!(!faults.is_working());
        faults.record(fault("idle 2"));
        assert_eq!(*told.lock().unwrap(), ["idle 1", "idle 2"]);
        assert_eq!(faults.mark(), 4, "every fault is recorded either way");
    }

    #[test]
    fn the_first_loss_message_is_kept() {
        let faults = DeviceFaults::default();
        assert_eq!(faults.lost(), None);
        faults.clone().set_lost("Destroyed: device destroyed");
        faults.set_lost("Unknown: again");
        assert_eq!(faults.lost().as_deref(), Some("Destroyed: device destroyed"));
    }

    #[test]
    fn reference_matmul_is_right_on_a_known_product() {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
        let got = reference_matmul(&[1., 2., 3., 4.], &[5., 6., 7., 8.], 2, 2, 2);
        assert_eq!(got, vec![19., 22., 43., 50.]);
    }

    #[test]
    fn the_cpu_engine_matmul_matches_the_reference() {
        let cpu = Backend::cpu();
        let check = futures::executor::block_on(matmul_check(&cpu, 33, 70, 17, 1)).unwrap();
        assert!(check.passed(), "{check:?}");
    }

    #[test]
    fn a_wrong_product_fails_the_check() {
        let check = MatmulCheck { m: 1, k: 1, n: 1, max_abs_error: 1.0, rel_l2_error: 0.5 };
        assert!(!check.passed());
        let nan = MatmulCheck { rel_l2_error: f64::NAN, ..check };
        assert!(!nan.passed());
    }
}
