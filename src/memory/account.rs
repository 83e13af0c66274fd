//! The memory account of one device: the core [`MemoryManager`] bound to a [`Backend`], with
//! its budget estimated from what the adapter says, resident bytes **measured** (on WebGPU from
//! cubecl's allocator report for the whole device, `bytes_in_use` and `bytes_reserved`; on the
//! CPU backend the registered sum), and every change told on the status stream as `metrics`.
//!
//! This is what the web layer's `MemoryManager` and the `ModelManager` hold; they add only the
//! JS conversions and where the browser's facts come from (`navigator.deviceMemory`).

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use burn::cubecl::MemoryScope;

use super::{AdapterFacts, Budget, DeviceLimits, EstimatedFrom, MemoryManager, Probe, Stats, format_bytes};
use crate::backend::{AdapterInfo, Backend, BackendKind, NO_WGPU_DEVICE};
use crate::infer::Compute;
use crate::infer::gpu::Gpu;
use crate::status::{Metrics, StatusStream};

/// Why the account could not use its device; the message is the device's.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountError {
    /// The GPU handle the account flushes the queue with could not be made.
    Init(String),
    /// Waiting for the device's queued work (a one-value readback) failed.
    Read(String),
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountError::Init(m) | AccountError::Read(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for AccountError {}

impl crate::error::Coded for AccountError {
    fn code(&self) -> crate::error::ErrorCode {
        match self {
            AccountError::Init(_) => crate::error::ErrorCode::DeviceInitFailed,
            AccountError::Read(_) => crate::error::ErrorCode::DeviceReadFailed,
        }
    }
}

/// A memory manager bound to a device and a status stream. Interior mutability throughout:
/// every method takes `&self`.
pub struct Account {
    core: MemoryManager,
    /// Replaced when the device is lost and re-created ([`Account::rebind`]).
    backend: RefCell<Rc<Backend>>,
    facts: AdapterFacts,
    status: Rc<StatusStream>,
    /// A GPU backend kept for flushing the queue (one tiny buffer plus its scratch), so that
    /// buffers dropped by a disposed model are handed back before a measurement. `None` on the
    /// CPU backend and after a device loss.
    flusher: RefCell<Option<Rc<Gpu>>>,
}

impl Account {
    /// Estimates the budget for `backend` (with `device_memory_gb` of system memory when
    /// known) and says how on `status` (an `info` event), then emits a first `metrics` event.
    /// With `probe_cap`, a bounded allocation probe runs first on a WebGPU device
    /// ([`probe_allocation`]) and its outcome informs the budget.
    pub async fn open(
        backend: Rc<Backend>,
        status: Rc<StatusStream>,
        device_memory_gb: Option<f64>,
        probe_cap: Option<u64>,
    ) -> Result<Account, AccountError> {
        let probe = match (probe_cap, &backend.adapter, &backend.wgpu) {
            (Some(cap), Some(adapter), Some(device)) => {
                let probe = probe_allocation(device, cap, probe_chunk(adapter.max_buffer_size)).await;
                status.info(probe.summary(), None);
                Some(probe)
            }
            _ => None,
        };
        let (facts, limits) = facts_of(backend.adapter.as_ref(), device_memory_gb, probe);
        let core = MemoryManager::with_budget(Budget::estimate(&facts), limits);
        let flusher = flusher_for(&backend)?;
        let account = Account { core, backend: RefCell::new(backend), facts, status, flusher: RefCell::new(flusher) };
        account.status.info(account.core.budget().summary(), None);
        account.emit_metrics(None);
        Ok(account)
    }

    /// The core manager (LRU, pins, budget, simulation).
    pub fn core(&self) -> &MemoryManager {
        &self.core
    }

    /// What the adapter said, as the budget estimate used it.
    pub fn facts(&self) -> &AdapterFacts {
        &self.facts
    }

    /// Which backend's memory this accounts for.
    pub fn kind(&self) -> BackendKind {
        self.backend.borrow().kind
    }

    /// The account now: the allocator's measurement where there is one.
    pub fn stats(&self) -> Stats {
        let measured = allocator_usage(&self.backend.borrow());
        self.core.stats(measured.map(|m| m.0), measured.map(|m| m.1))
    }

    /// Emits a `metrics` event tagged with `key`; returns the stats it reported.
    pub fn emit_metrics(&self, key: Option<&str>) -> Stats {
        let stats = self.stats();
        self.status.metrics(stats.metrics(), key);
        stats
    }

    /// Records `key` as resident (and used at `now_ms`) and emits `metrics`.
    pub fn loaded(&self, key: &str, bytes: u64, now_ms: Option<f64>) {
        self.core.register_loaded(key, bytes, now_ms);
        self.emit_metrics(Some(key));
    }

    /// Forgets `key` (returns whether it was registered) and emits `metrics`. The measurement
    /// catches up once the device's queue is flushed: see [`Account::settle`].
    pub fn unloaded(&self, key: &str) -> bool {
        let was = self.core.register_unloaded(key).is_some();
        self.emit_metrics(Some(key));
        was
    }

    /// Flushes the device's queue, then emits `metrics` tagged with `key` with what is
    /// measured now. A failed flush leaves the measurement as it is; the event still goes out.
    pub async fn settle(&self, key: Option<&str>) {
        let _ = self.flush().await;
        self.emit_metrics(key);
    }

    /// Waits for the device's queued work (a one-value readback), so that buffers whose last
    /// handle was dropped are handed back to the driver, then cleans the allocator's pools,
    /// before the next measurement.
    pub async fn flush(&self) -> Result<(), AccountError> {
        // An `Rc`, not a `RefCell` borrow: overlapping flushes each wait on the queue.
        let Some(gpu) = self.flusher.borrow().clone() else { return Ok(()) };
        let result = async {
            let probe = gpu.alloc(1)?;
            gpu.read(&probe, 0, 1).await.map(|_| ())
        }
        .await;
        allocator_cleanup(&self.backend.borrow());
        result.map_err(|e| AccountError::Read(e.to_string()))
    }

    /// The device was lost: no more flushes on it (every read would fail).
    pub fn device_lost(&self) {
        self.flusher.borrow_mut().take();
    }

    /// Accounts for `backend` from now on (the device re-created after a loss).
    pub fn rebind(&self, backend: Rc<Backend>) -> Result<(), AccountError> {
        *self.flusher.borrow_mut() = flusher_for(&backend)?;
        *self.backend.borrow_mut() = backend;
        Ok(())
    }
}

/// The facts the budget estimate reads and the single-buffer limits requirements are checked
/// against, from what the backend knows of its adapter (`None`: the CPU backend, which has
/// system memory and no buffer limits).
pub fn facts_of(
    adapter: Option<&AdapterInfo>,
    device_memory_gb: Option<f64>,
    probe: Option<Probe>,
) -> (AdapterFacts, DeviceLimits) {
    match adapter {
        Some(a) => (
            AdapterFacts {
                vendor: a.vendor.clone(),
                architecture: a.architecture.clone(),
                device: a.name.clone(),
                description: a.description.clone(),
                is_fallback_adapter: a.is_fallback_adapter,
                max_buffer_size: a.max_buffer_size,
                max_storage_buffer_binding_size: a.max_storage_buffer_binding_size,
                device_memory_gb,
                probe,
            },
            DeviceLimits {
                max_buffer_size: a.max_buffer_size,
                max_storage_buffer_binding_size: a.max_storage_buffer_binding_size,
            },
        ),
        None => (
            AdapterFacts { vendor: "cpu".to_owned(), device_memory_gb, ..AdapterFacts::default() },
            DeviceLimits::UNLIMITED,
        ),
    }
}

impl AdapterFacts {
    /// The facts as reported to people and JS: `u64::MAX` (the CPU backend's "no limit") is
    /// not a JS number, so it reads 0 = none.
    pub fn reported(&self) -> AdapterFacts {
        let mut facts = self.clone();
        if facts.max_buffer_size == u64::MAX {
            facts.max_buffer_size = 0;
            facts.max_storage_buffer_binding_size = 0;
        }
        facts
    }
}

impl EstimatedFrom {
    /// Where a budget came from, in words.
    pub fn describe(&self) -> String {
        match self {
            EstimatedFrom::Override => "set by the application".to_owned(),
            EstimatedFrom::Probe => "estimated from an allocation probe".to_owned(),
            EstimatedFrom::TierTable { tier } => format!("estimated from the adapter tier table, tier {tier}"),
            EstimatedFrom::DeviceMemory => "estimated from navigator.deviceMemory".to_owned(),
            EstimatedFrom::Default => "the default, as nothing is known about the adapter".to_owned(),
        }
    }
}

impl Budget {
    /// The `info` line a new account tells: the figure, its source and how it was reached.
    pub fn summary(&self) -> String {
        format!(
            "GPU memory budget: {} ({}: {})",
            format_bytes(self.bytes),
            self.estimated_from.describe(),
            self.explanation
        )
    }
}

impl Probe {
    /// The `info` line after a probe.
    pub fn summary(&self) -> String {
        format!(
            "Allocation probe: {} allocated and released{}.",
            format_bytes(self.allocated_bytes),
            if self.hit_out_of_memory { ", then out of memory" } else { " (its cap)" }
        )
    }
}

impl Stats {
    /// The `metrics` event reporting these stats.
    pub fn metrics(&self) -> Metrics {
        Metrics {
            used_bytes: self.used_bytes,
            reserved_bytes: Some(self.reserved_bytes),
            budget_bytes: Some(self.budget_bytes),
            available_bytes: Some(self.available_bytes),
            usage_percent: Some(self.usage_percent),
            loaded_models: Some(self.loaded.len() as u32),
        }
    }
}

/// The size of each probe allocation: the adapter's largest buffer, within 1 MiB..=256 MiB.
pub fn probe_chunk(max_buffer_size: u64) -> u64 {
    max_buffer_size.clamp(1 << 20, 256 << 20)
}

/// The GPU backend [`Account::flush`] waits on (`None` on the CPU backend).
fn flusher_for(backend: &Backend) -> Result<Option<Rc<Gpu>>, AccountError> {
    match backend.kind {
        BackendKind::Cpu => Ok(None),
        _ => {
            let device = backend.device.clone().ok_or_else(|| AccountError::Init(NO_WGPU_DEVICE.into()))?;
            Gpu::new(device).map(|gpu| Some(Rc::new(gpu))).map_err(|e| AccountError::Init(e.to_string()))
        }
    }
}

/// cubecl's allocator report for the whole device: (bytes in use, bytes reserved). `None` on
/// the CPU backend.
fn allocator_usage(backend: &Backend) -> Option<(u64, u64)> {
    if backend.kind == BackendKind::Cpu {
        return None;
    }
    let device = backend.device.clone()?;
    let usage = burn::cubecl::Device::Wgpu(device).client().memory_report(MemoryScope::Device).usage();
    Some((usage.bytes_in_use, usage.bytes_reserved))
}

/// Asks cubecl to give back what its pools hold and nothing uses (its uniform pools, the
/// kernel-parameter cache, emptied pages). Best effort: refused while a graph records.
fn allocator_cleanup(backend: &Backend) {
    if backend.kind == BackendKind::Cpu {
        return;
    }
    if let Some(device) = backend.device.clone() {
        let _ = burn::cubecl::Device::Wgpu(device).client().memory_cleanup();
    }
}

/// Allocates buffers of `chunk` bytes inside `pushErrorScope('out-of-memory')` until one fails
/// or `cap` is reached, then destroys them all at once. Out-of-memory on `createBuffer` is a
/// recoverable WebGPU error (the allocation fails, the device lives), which is why the probe
/// only allocates and never writes or binds.
pub async fn probe_allocation(device: &burn_wgpu::wgpu::Device, cap: u64, chunk: u64) -> Probe {
    use burn_wgpu::wgpu;
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
    Probe { allocated_bytes: allocated, hit_out_of_memory }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;

    use super::*;
    use crate::memory::{GIB, MIB};
    use crate::status::{Payload, Recorder};

    fn open_cpu(device_memory_gb: Option<f64>) -> (Account, Recorder) {
        let recorder = Recorder::new();
        let status = Rc::new(StatusStream::with_sink(Box::new(recorder.clone())));
        let account = block_on(Account::open(Rc::new(Backend::cpu()), status, device_memory_gb, Some(GIB))).unwrap();
        (account, recorder)
    }

    fn metrics(recorder: &Recorder) -> Vec<(Metrics, Option<String>)> {
        recorder
            .events()
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Metrics(m) => Some((m.clone(), e.model_key.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_cpu_account_tells_its_budget_and_first_metrics() {
        let (account, recorder) = open_cpu(Some(8.0));
        assert_eq!(account.kind(), BackendKind::Cpu);
        assert_eq!(account.facts().vendor, "cpu");
        assert_eq!(account.facts().probe, None, "no probe without a WebGPU device");
        assert_eq!(account.core().limits(), DeviceLimits::UNLIMITED);
        let infos = recorder.infos();
        assert_eq!(infos.len(), 1);
        assert!(infos[0].starts_with("GPU memory budget: "), "{infos:?}");
        assert_eq!(infos[0], account.core().budget().summary());
        let m = metrics(&recorder);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].0.used_bytes, 0);
        assert_eq!(m[0].0.budget_bytes, Some(account.core().budget().bytes));
    }

    #[test]
    fn loads_and_unloads_are_measured_as_registered_on_the_cpu() {
        let (account, recorder) = open_cpu(None);
        account.loaded("a", 100 * MIB, Some(5.0));
        account.loaded("b", 50 * MIB, Some(6.0));
        let stats = account.stats();
        assert!(!stats.measured);
        assert_eq!((stats.used_bytes, stats.registered_bytes, stats.loaded.len()), (150 * MIB, 150 * MIB, 2));
        assert!(account.unloaded("a"));
        assert!(!account.unloaded("a"));
        block_on(account.settle(Some("a")));
        block_on(account.flush()).unwrap();
        let m = metrics(&recorder);
        let keys: Vec<_> = m.iter().map(|(_, k)| k.as_deref()).collect();
        assert_eq!(keys, [None, Some("a"), Some("b"), Some("a"), Some("a"), Some("a")]);
        assert_eq!(m.last().unwrap().0.used_bytes, 50 * MIB);
        assert_eq!(m.last().unwrap().0.loaded_models, Some(1));
        account.device_lost();
        account.rebind(Rc::new(Backend::cpu())).unwrap();
        assert_eq!(account.emit_metrics(None).used_bytes, 50 * MIB);
    }

    fn adapter() -> AdapterInfo {
        AdapterInfo {
            name: "NVIDIA GeForce RTX 3060".into(),
            vendor: "nvidia".into(),
            architecture: "ampere".into(),
            description: String::new(),
            backend: "BrowserWebGpu".into(),
            max_buffer_size: 4 * GIB,
            max_storage_buffer_binding_size: 2 * GIB,
            shader_f16: true,
            subgroups: None,
            is_fallback_adapter: false,
        }
    }

    #[test]
    fn facts_and_limits_come_from_the_adapter() {
        let probe = Probe { allocated_bytes: GIB, hit_out_of_memory: true };
        let (facts, limits) = facts_of(Some(&adapter()), Some(16.0), Some(probe.clone()));
        assert_eq!((facts.vendor.as_str(), facts.device.as_str()), ("nvidia", "NVIDIA GeForce RTX 3060"));
        assert_eq!((facts.device_memory_gb, facts.probe.clone()), (Some(16.0), Some(probe)));
        assert_eq!(limits, DeviceLimits { max_buffer_size: 4 * GIB, max_storage_buffer_binding_size: 2 * GIB });
        let (cpu, limits) = facts_of(None, None, None);
        assert_eq!(limits, DeviceLimits::UNLIMITED);
        let unlimited = AdapterFacts { max_buffer_size: u64::MAX, max_storage_buffer_binding_size: u64::MAX, ..cpu };
        assert_eq!(
            (unlimited.reported().max_buffer_size, unlimited.reported().max_storage_buffer_binding_size),
            (0, 0)
        );
        assert_eq!(facts.reported(), facts, "real limits are reported as they are");
        assert!(!facts.is_fallback_adapter);
        // The adapter in use says it is a fallback: the budget plans for a software adapter.
        let fallback = AdapterInfo { is_fallback_adapter: true, ..adapter() };
        let (facts, _) = facts_of(Some(&fallback), Some(16.0), None);
        assert!(facts.is_fallback_adapter);
        assert_eq!(facts.class(), super::super::AdapterClass::Cpu, "planned as a software adapter");
    }

    #[test]
    fn the_words_people_read() {
        let probe = |hit| Probe { allocated_bytes: 512 * MIB, hit_out_of_memory: hit };
        assert_eq!(probe(true).summary(), "Allocation probe: 512 MB allocated and released, then out of memory.");
        assert_eq!(probe(false).summary(), "Allocation probe: 512 MB allocated and released (its cap).");
        assert_eq!(
            EstimatedFrom::TierTable { tier: "x".into() }.describe(),
            "estimated from the adapter tier table, tier x"
        );
        assert_eq!(EstimatedFrom::Override.describe(), "set by the application");
        let budget = Budget::estimate(&AdapterFacts::default()).overridden(GIB);
        assert!(
            budget.summary().starts_with("GPU memory budget: 1.0 GB (set by the application: "),
            "{}",
            budget.summary()
        );
        assert_eq!(probe_chunk(0), MIB);
        assert_eq!(probe_chunk(64 * MIB), 64 * MIB);
        assert_eq!(probe_chunk(4 * GIB), 256 * MIB);
    }
}
