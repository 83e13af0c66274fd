//! What fits on this GPU, and why not: a memory budget with its source, the exact requirement
//! of a model before its weights are downloaded, and an account of what is resident.
//!
//! # No browser API reports GPU memory
//! WebGPU exposes limits on single buffers (`maxBufferSize`, `maxStorageBufferBindingSize`) but
//! nothing about how much memory the device has or has free, and `adapter.info` is deliberately
//! coarse (a vendor and an architecture family; the description is often empty). So the budget
//! is an *estimate*, and every [`Budget`] records where it came from ([`EstimatedFrom`]), in
//! order of precedence:
//!
//! 1. [`EstimatedFrom::Override`] — the application said so (`set_budget_bytes`).
//! 2. [`EstimatedFrom::Probe`] — a bounded allocation probe run by the web layer (chunks
//!    allocated inside `pushErrorScope('out-of-memory')` up to a cap, released at once) hit
//!    out-of-memory: what it got is a measurement. A probe that reached its cap only raises the
//!    estimate below to at least what it allocated.
//! 3. [`EstimatedFrom::TierTable`] — the adapter was recognised in a small table ([`budget`]):
//!    a conservative VRAM figure for named discrete GPUs, a share of system memory
//!    (`navigator.deviceMemory`, which browsers round down and cap at 8 GB) for integrated GPUs
//!    with unified memory and for software (CPU) adapters.
//! 4. [`EstimatedFrom::DeviceMemory`] — an unrecognised adapter, but `navigator.deviceMemory` is
//!    known: a quarter of it.
//! 5. [`EstimatedFrom::Default`] — nothing is known: 2 GiB.
//!
//! A safety margin (10%) comes off every estimate but an override.
//!
//! # The requirement is the loader's arithmetic
//! [`Requirement::from_header`] needs only the GGUF header: weights as the GPU backend lays them
//! out (the same `layout` source file the backend compiles: block formats kept, a few bytes of
//! padding per part, split by rows at the binding limit; 1-D vectors as f32), the KV cache and
//! activation buffers from [`crate::infer::Shape::buffer_bytes`] (what `Model::new` allocates),
//! and every tensor checked against the binding and buffer limits.
//!
//! # Resident bytes are measured
//! [`MemoryManager`] keeps the loaded models, their LRU order and pins, and answers
//! [`MemoryManager::can_load`] and [`MemoryManager::plan_eviction`]. Its [`MemoryManager::stats`]
//! prefers the allocator's own measurement, passed in by the caller, over the registered sums.
//!
//! [`Account`] binds a manager to a device: it measures through cubecl's allocator, flushes the
//! queue before a measurement, runs the bounded allocation probe, and tells every change on the
//! status stream. [`request`] checks what callers pass in (options, requirements handed back,
//! simulated limits).
//!
//! Plain Rust, single-threaded (`Cell`/`RefCell`), no `wasm-bindgen`: the web layer reads JS
//! values into these serde types and converts the results for JS.
//!
//! Byte counts shown to people ([`format_bytes`]) use binary multiples with the familiar
//! `MB`/`GB` labels, as operating systems and GPU vendors do (a "2 GB" card holds 2 GiB).

pub mod account;
pub mod budget;
pub mod manager;
pub mod request;
pub mod requirement;

pub use account::{Account, AccountError};
pub use budget::{AdapterClass, AdapterFacts, Budget, EstimatedFrom, Probe, SAFETY_MARGIN};
pub use manager::{CanLoad, Evictable, LOW_VRAM_SIMULATED_BYTES, LoadedModel, MemoryManager, Stats};
pub use requirement::{DeviceLimits, LimitKind, LimitProblem, Requirement, RequirementOptions, TensorBytes};

/// Bytes in a KiB.
pub const KIB: u64 = 1 << 10;
/// Bytes in a MiB.
pub const MIB: u64 = 1 << 20;
/// Bytes in a GiB.
pub const GIB: u64 = 1 << 30;

/// A byte count for people: `"512 B"`, `"96 KB"`, `"500 MB"`, `"1.2 GB"`, `"24 GB"`.
///
/// Binary multiples with `KB`/`MB`/`GB` labels; one decimal below 10 units (where it matters:
/// "1.2 GB" vs "1.0 GB"), whole units from 10 up ("500 MB", not "500.0 MB").
pub fn format_bytes(bytes: u64) -> String {
    let (value, unit) = match bytes {
        b if b < KIB => return format!("{b} B"),
        b if b < MIB => (b as f64 / KIB as f64, "KB"),
        b if b < GIB => (b as f64 / MIB as f64, "MB"),
        b => (b as f64 / GIB as f64, "GB"),
    };
    // Round first, so 9.96 shows as "10 MB" rather than "10.0 MB".
    let tenths = (value * 10.0).round() / 10.0;
    if tenths < 10.0 { format!("{tenths:.1} {unit}") } else { format!("{value:.0} {unit}") }
}

#[cfg(test)]
mod tests;
