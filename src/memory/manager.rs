//! [`MemoryManager`]: the budget, the resident models in LRU order with their pins, and the
//! answers "can this load?", "what would have to go?" and "what is in use?".
//!
//! Single-threaded, `&self` throughout (`Cell`/`RefCell` inside), so the web layer can share it
//! between overlapping JS calls without wasm-bindgen's "recursive use of an object" error. No
//! method calls out while a borrow is held.
//!
//! Recency is a logical clock (each `register_loaded` and `touch` takes the next tick), so LRU
//! order never depends on wall-clock resolution or clock changes; the caller may pass a
//! timestamp in milliseconds alongside, which is only reported back (`lastUsed`).

use std::cell::{Cell, RefCell};

use serde::Serialize;

use super::budget::{AdapterFacts, Budget, EstimatedFrom};
use super::requirement::{DeviceLimits, LimitKind, Requirement};
use super::{MIB, format_bytes};

/// The budget [`MemoryManager::set_simulation_low_vram`] pretends to: 256 MiB, a very small
/// device (an old integrated GPU's share), and the figure that tells the ModelManager v3.1
/// design's story: its default model, Gemma 3 270M Q4_K_M (311 MiB at context 2048), is
/// refused with "Not enough VRAM", while SmolLM2 135M (184 MiB; 226 MiB by the catalog estimate
/// made before its header is read) fits and is the suggestion. Qwen2.5 0.5B (517 MiB) is refused too.
pub const LOW_VRAM_SIMULATED_BYTES: u64 = 256 * MIB;

/// One resident model.
#[derive(Debug, Clone)]
struct Entry {
    key: String,
    bytes: u64,
    /// The logical clock at the last use.
    tick: u64,
    /// The caller's timestamp of the last use, in ms.
    last_used_ms: Option<f64>,
    pinned: bool,
}

/// A model eviction could unload, in the order it would be unloaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evictable {
    pub key: String,
    /// What unloading it frees.
    pub bytes: u64,
    /// What unloading it and every model before it in the list frees.
    pub cumulative_bytes: u64,
}

/// The answer of [`MemoryManager::can_load`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CanLoad {
    /// Whether the model fits now, without unloading anything.
    pub can: bool,
    /// A sentence for people: "Not enough VRAM (available: 500 MB, required: 2.0 GB)", the
    /// limit problem, or "Fits (available: …, required: …)".
    pub reason: String,
    pub required_bytes: u64,
    /// The budget less what the other resident models hold.
    pub available_bytes: u64,
    /// The budget in force (simulated or not).
    pub budget_bytes: u64,
    /// Every unpinned resident model but this one, least recently used first, with what
    /// unloading it (and those before it) frees.
    pub evictable: Vec<Evictable>,
    /// Whether unloading some of [`Self::evictable`] would make it fit (`false` when it fits
    /// already, or when a limit other than the budget bites).
    pub fits_after_eviction: bool,
    /// The limit that bites, when `can` is false.
    pub limit: Option<LimitKind>,
    /// Whether the budget is a simulated one.
    pub simulated: bool,
}

/// A resident model, as [`Stats`] lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadedModel {
    pub key: String,
    pub bytes: u64,
    /// The caller's timestamp of the last use, in ms, if it gave one.
    pub last_used: Option<f64>,
    /// The logical clock at the last use (higher is more recent).
    pub use_order: u64,
    pub pinned: bool,
}

/// The answer of [`MemoryManager::stats`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// The budget in force (the simulated one while simulating).
    pub budget_bytes: u64,
    /// Where the real budget came from.
    pub estimated_from: EstimatedFrom,
    /// How the real budget was reached.
    pub explanation: String,
    /// Whether `budget_bytes` is simulated.
    pub simulated: bool,
    /// Bytes in live allocations: the allocator's measurement when given, else
    /// [`Self::registered_bytes`].
    pub used_bytes: u64,
    /// Bytes the allocator holds from the driver (at least `used_bytes`): measured when given,
    /// else `used_bytes`.
    pub reserved_bytes: u64,
    /// Whether `used_bytes`/`reserved_bytes` are measurements.
    pub measured: bool,
    /// The sum of the registered models' bytes.
    pub registered_bytes: u64,
    /// `budget_bytes` less `reserved_bytes` (what the page really holds), at least 0.
    pub available_bytes: u64,
    /// `reserved_bytes` as a percentage of `budget_bytes`, one decimal.
    pub usage_percent: f64,
    /// Resident models, least recently used first.
    pub loaded: Vec<LoadedModel>,
}

/// The memory account of one device. See the [module docs](self).
#[derive(Debug)]
pub struct MemoryManager {
    /// The budget estimated from the adapter.
    estimate: RefCell<Budget>,
    /// `set_budget_bytes`.
    override_bytes: Cell<Option<u64>>,
    limits: Cell<DeviceLimits>,
    models: RefCell<Vec<Entry>>,
    clock: Cell<u64>,
    low_vram: Cell<bool>,
    simulated_budget: Cell<Option<u64>>,
    simulated_limits: Cell<Option<DeviceLimits>>,
}

impl MemoryManager {
    /// A manager for the adapter `facts` describe: the budget from [`Budget::estimate`], the
    /// limits from its `maxBufferSize` and `maxStorageBufferBindingSize`.
    pub fn new(facts: &AdapterFacts) -> MemoryManager {
        MemoryManager::with_budget(
            Budget::estimate(facts),
            DeviceLimits {
                max_buffer_size: facts.max_buffer_size,
                max_storage_buffer_binding_size: facts.max_storage_buffer_binding_size,
            },
        )
    }

    /// A manager with a given budget and limits.
    pub fn with_budget(budget: Budget, limits: DeviceLimits) -> MemoryManager {
        MemoryManager {
            estimate: RefCell::new(budget),
            override_bytes: Cell::new(None),
            limits: Cell::new(limits),
            models: RefCell::new(Vec::new()),
            clock: Cell::new(0),
            low_vram: Cell::new(false),
            simulated_budget: Cell::new(None),
            simulated_limits: Cell::new(None),
        }
    }

    /// Re-estimates the budget and limits for a new adapter (after device loss); keeps an
    /// override, the simulation settings and the registered models.
    pub fn set_adapter(&self, facts: &AdapterFacts) {
        *self.estimate.borrow_mut() = Budget::estimate(facts);
        self.limits.set(DeviceLimits {
            max_buffer_size: facts.max_buffer_size,
            max_storage_buffer_binding_size: facts.max_storage_buffer_binding_size,
        });
    }

    /// The real budget: the estimate, or the override.
    pub fn budget(&self) -> Budget {
        let estimate = self.estimate.borrow();
        match self.override_bytes.get() {
            Some(bytes) => estimate.overridden(bytes),
            None => estimate.clone(),
        }
    }

    /// The limits requirements are checked against: the simulated ones, else the adapter's.
    pub fn limits(&self) -> DeviceLimits {
        self.simulated_limits.get().unwrap_or_else(|| self.limits.get())
    }

    /// Pretends the adapter has `limits` (`None` ends it): requirements computed from now on
    /// are checked against them, as [`Self::set_simulated_budget`] does for the budget. The
    /// per-tensor check can then be exercised on a small model without a gigabyte-wide row.
    pub fn set_simulated_limits(&self, limits: Option<DeviceLimits>) {
        self.simulated_limits.set(limits);
    }

    /// Sets the real budget to exactly `bytes` ([`EstimatedFrom::Override`], no margin).
    pub fn set_budget_bytes(&self, bytes: u64) {
        self.override_bytes.set(Some(bytes));
    }

    /// Goes back to the estimated budget.
    pub fn clear_budget_override(&self) {
        self.override_bytes.set(None);
    }

    /// Pretends the device has [`LOW_VRAM_SIMULATED_BYTES`] (unless a simulated budget is set,
    /// which wins). Changes what [`Self::can_load`] and [`Self::plan_eviction`] answer, not the
    /// real budget.
    pub fn set_simulation_low_vram(&self, on: bool) {
        self.low_vram.set(on);
    }

    /// Pretends the device has `bytes` (`None` ends it). Wins over the low-VRAM simulation.
    pub fn set_simulated_budget(&self, bytes: Option<u64>) {
        self.simulated_budget.set(bytes);
    }

    /// The simulated budget in force, if any.
    pub fn simulated_budget(&self) -> Option<u64> {
        self.simulated_budget.get().or_else(|| self.low_vram.get().then_some(LOW_VRAM_SIMULATED_BYTES))
    }

    /// The budget [`Self::can_load`] answers against: the simulated one, else the real one.
    pub fn effective_budget_bytes(&self) -> u64 {
        self.simulated_budget().unwrap_or_else(|| self.budget().bytes)
    }

    fn tick(&self) -> u64 {
        let t = self.clock.get() + 1;
        self.clock.set(t);
        t
    }

    /// Records `key` as resident with `bytes` (replacing an earlier figure for it, keeping its
    /// pin) and as just used.
    pub fn register_loaded(&self, key: &str, bytes: u64, now_ms: Option<f64>) {
        let tick = self.tick();
        let mut models = self.models.borrow_mut();
        match models.iter_mut().find(|e| e.key == key) {
            Some(e) => {
                e.bytes = bytes;
                e.tick = tick;
                e.last_used_ms = now_ms.or(e.last_used_ms);
            }
            None => models.push(Entry { key: key.to_owned(), bytes, tick, last_used_ms: now_ms, pinned: false }),
        }
    }

    /// Forgets `key`; returns the bytes it was registered with, `None` if it was not.
    pub fn register_unloaded(&self, key: &str) -> Option<u64> {
        let mut models = self.models.borrow_mut();
        let i = models.iter().position(|e| e.key == key)?;
        Some(models.remove(i).bytes)
    }

    /// Marks `key` as just used; `false` if it is not resident.
    pub fn touch(&self, key: &str, now_ms: Option<f64>) -> bool {
        let tick = self.tick();
        let mut models = self.models.borrow_mut();
        match models.iter_mut().find(|e| e.key == key) {
            Some(e) => {
                e.tick = tick;
                e.last_used_ms = now_ms.or(e.last_used_ms);
                true
            }
            None => false,
        }
    }

    fn set_pinned(&self, key: &str, pinned: bool) -> bool {
        let mut models = self.models.borrow_mut();
        match models.iter_mut().find(|e| e.key == key) {
            Some(e) => {
                e.pinned = pinned;
                true
            }
            None => false,
        }
    }

    /// Keeps `key` out of eviction; `false` if it is not resident.
    pub fn pin(&self, key: &str) -> bool {
        self.set_pinned(key, true)
    }

    /// Makes `key` evictable again; `false` if it is not resident.
    pub fn unpin(&self, key: &str) -> bool {
        self.set_pinned(key, false)
    }

    /// Whether `key` is registered as resident.
    pub fn is_loaded(&self, key: &str) -> bool {
        self.models.borrow().iter().any(|e| e.key == key)
    }

    /// The sum of the registered models' bytes.
    pub fn registered_bytes(&self) -> u64 {
        self.models.borrow().iter().map(|e| e.bytes).sum()
    }

    /// Unpinned resident models other than `except`, least recently used first, with
    /// cumulative bytes.
    pub fn evictable(&self, except: Option<&str>) -> Vec<Evictable> {
        let mut entries: Vec<Entry> =
            self.models.borrow().iter().filter(|e| !e.pinned && Some(e.key.as_str()) != except).cloned().collect();
        entries.sort_by_key(|e| e.tick);
        let mut cumulative = 0;
        entries
            .into_iter()
            .map(|e| {
                cumulative += e.bytes;
                Evictable { key: e.key, bytes: e.bytes, cumulative_bytes: cumulative }
            })
            .collect()
    }

    /// Whether the model `key` with `requirement` can be loaded now, and if not, which limit
    /// bites and what eviction could free.
    ///
    /// If `key` is already resident its own bytes count as available (loading it again replaces
    /// it). A [`Requirement::problems`] entry wins over the budget: no eviction helps it.
    pub fn can_load(&self, key: &str, requirement: &Requirement) -> CanLoad {
        let budget = self.effective_budget_bytes();
        let others: u64 = self.models.borrow().iter().filter(|e| e.key != key).map(|e| e.bytes).sum();
        let available = budget.saturating_sub(others);
        let required = requirement.total_bytes;
        let evictable = self.evictable(Some(key));
        let freeable = evictable.last().map_or(0, |e| e.cumulative_bytes);
        let mut answer = CanLoad {
            can: false,
            reason: String::new(),
            required_bytes: required,
            available_bytes: available,
            budget_bytes: budget,
            evictable,
            fits_after_eviction: false,
            limit: None,
            simulated: self.simulated_budget().is_some(),
        };
        if let Some(problem) = requirement.problems.first() {
            answer.reason = problem.message.clone();
            answer.limit = Some(problem.limit.clone());
        } else if required <= available {
            answer.can = true;
            answer.reason =
                format!("Fits (available: {}, required: {})", format_bytes(available), format_bytes(required));
        } else {
            answer.reason = format!(
                "Not enough VRAM (available: {}, required: {})",
                format_bytes(available),
                format_bytes(required)
            );
            answer.limit = Some(LimitKind::TotalBudget);
            answer.fits_after_eviction = required <= available.saturating_add(freeable);
        }
        answer
    }

    /// The least recently used unpinned models to unload so that `required` more bytes fit:
    /// `Some(vec![])` if they fit already, `None` if they do not fit even with every unpinned
    /// model unloaded.
    pub fn plan_eviction(&self, required: u64) -> Option<Vec<String>> {
        self.plan_eviction_sparing(required, |_| false)
    }

    /// As [`Self::plan_eviction`], never choosing a model `spare` keeps (one that is
    /// generating, for the web layer).
    pub fn plan_eviction_sparing(&self, required: u64, spare: impl Fn(&str) -> bool) -> Option<Vec<String>> {
        let available = self.effective_budget_bytes().saturating_sub(self.registered_bytes());
        if required <= available {
            return Some(Vec::new());
        }
        let mut plan = Vec::new();
        let mut freed = 0u64;
        for e in self.evictable(None) {
            if spare(&e.key) {
                continue;
            }
            freed += e.bytes;
            plan.push(e.key);
            if required <= available.saturating_add(freed) {
                return Some(plan);
            }
        }
        None
    }

    /// The account: used and reserved bytes from the allocator's measurement when given (what
    /// the issue asks for), else the registered sums.
    pub fn stats(&self, measured_used: Option<u64>, measured_reserved: Option<u64>) -> Stats {
        let budget = self.budget();
        let budget_bytes = self.effective_budget_bytes();
        let registered = self.registered_bytes();
        let used = measured_used.unwrap_or(registered);
        let reserved = measured_reserved.unwrap_or(used).max(used);
        let usage_percent = if budget_bytes == 0 {
            if reserved > 0 { 100.0 } else { 0.0 }
        } else {
            (reserved as f64 / budget_bytes as f64 * 1000.0).round() / 10.0
        };
        let mut models = self.models.borrow().clone();
        models.sort_by_key(|e| e.tick);
        Stats {
            budget_bytes,
            estimated_from: budget.estimated_from,
            explanation: budget.explanation,
            simulated: self.simulated_budget().is_some(),
            used_bytes: used,
            reserved_bytes: reserved,
            measured: measured_used.is_some() || measured_reserved.is_some(),
            registered_bytes: registered,
            available_bytes: budget_bytes.saturating_sub(reserved),
            usage_percent,
            loaded: models
                .into_iter()
                .map(|e| LoadedModel {
                    key: e.key,
                    bytes: e.bytes,
                    last_used: e.last_used_ms,
                    use_order: e.tick,
                    pinned: e.pinned,
                })
                .collect(),
        }
    }
}
