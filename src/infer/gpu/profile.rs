//! Per-kernel timings of the GPU backend, for benchmarks: while [`Gpu::profile_kernels`] is on,
//! every dispatch is measured on its own, with the device's timestamp queries where the adapter
//! offers them (`TIMESTAMP_QUERY`: lavapipe and most GPUs natively), else by the host clock
//! around a submission of that dispatch alone. Either way the dispatches no longer share a
//! submission, so the sum is an upper bound on a fused token's time; the split is what matters.

use std::collections::HashMap;
use std::sync::Mutex;

use burn::cubecl::profile::{ProfileDuration, TimingMethod};

use super::Gpu;
use super::kernel::Spec;

/// One kernel variant's share of the profiled dispatches ([`Gpu::kernel_times`]).
#[derive(Debug, Clone, PartialEq)]
pub struct KernelTime {
    /// The kernel variant and its workgroup count (`Rows { fmt: Q8_0, .. } x768`): one line per
    /// weight shape.
    pub kernel: String,
    /// Dispatches of it.
    pub dispatches: u64,
    /// Their total time in milliseconds.
    pub ms: f64,
    /// The fastest one's time in milliseconds (times the dispatches: an estimate that a shared,
    /// busy machine disturbs less than the total).
    pub min_ms: f64,
}

/// The dispatches measured so far, in launch order.
#[derive(Default)]
pub(super) struct Profile {
    windows: Vec<(String, ProfileDuration)>,
}

/// The per-launch profiling state of a [`Gpu`]: `None` when profiling is off.
pub(super) type ProfileSlot = Mutex<Option<Profile>>;

impl Gpu {
    /// Starts (or stops) measuring every dispatch on its own (see the module docs); starting
    /// drops what was measured before.
    pub fn profile_kernels(&self, on: bool) {
        *self.profile.lock().unwrap_or_else(|e| e.into_inner()) = on.then(Profile::default);
    }

    /// Whether every dispatch is being measured ([`Gpu::profile_kernels`]).
    pub(super) fn profiling(&self) -> bool {
        self.profile.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Whether the timings come from the device's timestamp queries (else the host's clock).
    pub fn timestamp_queries(&self) -> bool {
        self.client.properties().timing_method == TimingMethod::Device
    }

    /// Runs `launch` (one dispatch of `spec` over `groups` workgroups) inside a profiling window
    /// when profiling is on.
    pub(super) fn profiled(&self, spec: Spec, groups: u32, launch: impl FnOnce()) {
        let mut slot = self.profile.lock().unwrap_or_else(|e| e.into_inner());
        let Some(profile) = slot.as_mut() else {
            drop(slot);
            return launch();
        };
        let Ok(window) = self.client.profile_start() else { return launch() };
        launch();
        if let Ok(duration) = self.client.profile_end(window) {
            profile.windows.push((format!("{spec:?} x{groups}"), duration));
        }
    }

    /// The time of every kernel variant dispatched since [`Gpu::profile_kernels`] was turned
    /// on, the most expensive first; profiling stays on with nothing measured.
    pub async fn kernel_times(&self) -> Vec<KernelTime> {
        let windows = {
            let mut slot = self.profile.lock().unwrap_or_else(|e| e.into_inner());
            slot.as_mut().map(|p| std::mem::take(&mut p.windows)).unwrap_or_default()
        };
        let mut by_kernel: HashMap<String, KernelTime> = HashMap::new();
        for (kernel, duration) in windows {
            let ms = duration.resolve().await.map_or(0.0, |t| t.duration().as_secs_f64() * 1e3);
            let entry = by_kernel.entry(kernel.clone()).or_insert(KernelTime {
                kernel,
                dispatches: 0,
                ms: 0.0,
                min_ms: f64::MAX,
            });
            entry.dispatches += 1;
            entry.ms += ms;
            entry.min_ms = entry.min_ms.min(ms);
        }
        let mut times: Vec<KernelTime> = by_kernel.into_values().collect();
        times.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        times
    }
}
