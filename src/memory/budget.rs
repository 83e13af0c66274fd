//! The memory budget: how many bytes this page should plan on holding on its GPU, and why.
//!
//! [`Budget::estimate`] turns what the page can learn about its adapter ([`AdapterFacts`]) into
//! a figure recorded with its source ([`EstimatedFrom`]) and a sentence a person can read
//! ([`Budget::explanation`]). See the [module docs](super) for the order of the sources.
//!
//! # The tier table
//! Matched against the adapter's vendor, architecture, device and description (lowercased,
//! `(R)`/`(TM)` removed), first match wins; then by vendor alone. Each rule is one of:
//! - **VRAM** — a named discrete GPU: the *smallest* VRAM any desktop or laptop part of that
//!   name ships with (an "RTX 4070" may be a 12 GB desktop card or an 8 GB laptop chip; the
//!   browser does not say which), of which [`DISCRETE_SHARE`] is planned on.
//! - **Share of system memory** — GPUs with unified memory (integrated Intel/AMD, Apple
//!   silicon, mobile Arm/Qualcomm/Imagination) and software adapters: a share of
//!   `navigator.deviceMemory`, or of [`ASSUMED_SYSTEM_GB`] where the browser does not say
//!   (Firefox and Safari do not implement `deviceMemory`).
//!
//! | tier | matches | rule |
//! |---|---|---|
//! | `cpu-software` | SwiftShader, lavapipe, llvmpipe, softpipe, Microsoft Basic Render Driver, `isFallbackAdapter`; vendors `mesa`, `google` | 25% of system |
//! | `nvidia-rtx-5090` … `nvidia-gtx-10xx` | `rtx 5090` … `gtx 10` | 2–24 GB VRAM (see [`TIERS`]) |
//! | `amd-rx-9xxx` … `amd-rx-5xx-5xxx` | `rx 9` … `rx 5` | 2–16 GB VRAM |
//! | `intel-arc-discrete` | `arc a3/a5/a7/b5`, `xe-hpg`, `gen-12hp` | 4–10 GB VRAM |
//! | `apple-unified` | `apple m…`, vendor `apple` | 50% of system |
//! | `intel-integrated` | UHD, Iris, `xe-lpg`, `gen-*`, vendor `intel` | 50% of system |
//! | `amd-integrated-or-unknown` | Radeon Graphics, Vega, vendor `amd` | 50% of system |
//! | `mobile-unified` | Mali, Immortalis, Adreno, PowerVR, Xclipse; vendors `arm`, `qualcomm`, `imagination`, `samsung` | 25% of system |
//! | `nvidia-unknown-model` | vendor `nvidia` | 4 GB VRAM |
//!
//! Nothing here reads the adapter's buffer limits: they bound single buffers (checked per tensor
//! by [`super::Requirement`]), not the total.

use serde::Serialize;

use super::{GIB, format_bytes};

/// The share of every estimate kept back (not of an override): allocator rounding and
/// fragmentation, the browser's own GPU allocations for this page (canvas, compositor surfaces),
/// and the error of the estimate itself. 10% of a 4 GB budget is 400 MB, more than the scratch
/// buffers of any model in the catalog.
pub const SAFETY_MARGIN: f64 = 0.10;

/// The share of a discrete GPU's VRAM this page plans on: the desktop compositor, other tabs and
/// other applications hold the rest. Windows' compositor alone keeps a few hundred MB on a
/// 4K display; 80% leaves 800 MB of a 4 GB card to them.
pub const DISCRETE_SHARE: f64 = 0.80;

/// System memory assumed when `navigator.deviceMemory` is unavailable (Firefox, Safari, native):
/// 4 GB is the least a machine that runs WebGPU usually has (entry laptops, phones), so the
/// estimate errs low rather than promising memory that is not there.
pub const ASSUMED_SYSTEM_GB: f64 = 4.0;

/// The budget when nothing about the adapter is known: 2 GiB, what a 4 GB discrete card or an
/// integrated GPU on an 8 GB machine can give one page, and enough for every small model in the
/// catalog (SmolLM2 135M, Gemma 3 270M, Qwen2.5 0.5B).
pub const DEFAULT_BUDGET_BYTES: u64 = 2 * GIB;

/// The share of `navigator.deviceMemory` for an adapter the tier table does not know: a quarter,
/// so that the 8 GB browsers report at most gives [`DEFAULT_BUDGET_BYTES`] — half of what an
/// integrated GPU would get, as the adapter may be a small discrete card or a phone.
pub const UNKNOWN_ADAPTER_SHARE: f64 = 0.25;

/// The outcome of a bounded allocation probe run by the web layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    /// Bytes allocated before the probe stopped.
    pub allocated_bytes: u64,
    /// `true` when it stopped on an out-of-memory error (a measurement of what is there);
    /// `false` when it stopped at its cap (only a lower bound).
    pub hit_out_of_memory: bool,
}

/// What a page can learn about its adapter (`GPUAdapter.info`, `.limits`,
/// `isFallbackAdapter`, `navigator.deviceMemory`) and, optionally, a probe.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdapterFacts {
    /// `adapter.info.vendor` (`"nvidia"`, `"intel"`, …), or a PCI vendor id as `0x10de`
    /// natively.
    pub vendor: String,
    /// `adapter.info.architecture` (`"ampere"`, `"gen-12lp"`, `"rdna-3"`, `"swiftshader"`, …).
    pub architecture: String,
    /// `adapter.info.device`, or the adapter name natively (`"llvmpipe (LLVM 15.0.7, 256 bits)"`).
    pub device: String,
    /// `adapter.info.description` (often empty in browsers).
    pub description: String,
    /// `adapter.isFallbackAdapter` (`info.isFallbackAdapter` in newer browsers): a software
    /// implementation.
    pub is_fallback_adapter: bool,
    /// `adapter.limits.maxBufferSize`.
    pub max_buffer_size: u64,
    /// `adapter.limits.maxStorageBufferBindingSize`.
    pub max_storage_buffer_binding_size: u64,
    /// `navigator.deviceMemory` in GB (rounded down to a power of two and capped at 8 by
    /// browsers; `None` where unsupported).
    pub device_memory_gb: Option<f64>,
    /// A bounded allocation probe, when one was run.
    pub probe: Option<Probe>,
}

/// What kind of memory the adapter has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AdapterClass {
    /// A software rasteriser on the CPU (SwiftShader, lavapipe, llvmpipe): system memory.
    Cpu,
    /// Unified memory shared with the CPU.
    Integrated,
    /// Its own VRAM.
    Discrete,
    /// Not recognised.
    Unknown,
}

/// Where a [`Budget`] figure came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "source", rename_all = "camelCase")]
pub enum EstimatedFrom {
    /// Set by the application ([`super::MemoryManager::set_budget_bytes`]).
    Override,
    /// A bounded allocation probe.
    Probe,
    /// The tier table, by the named tier.
    TierTable {
        /// The tier's name, e.g. `"intel-integrated"`.
        tier: String,
    },
    /// A share of `navigator.deviceMemory` for an unrecognised adapter.
    DeviceMemory,
    /// Nothing known: [`DEFAULT_BUDGET_BYTES`].
    Default,
}

/// How many bytes this page plans on holding on the device, with the reasoning.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// The usable budget: [`Self::raw_bytes`] less the safety margin.
    pub bytes: u64,
    /// The estimate before the margin.
    pub raw_bytes: u64,
    /// Where the estimate came from.
    pub estimated_from: EstimatedFrom,
    /// The share of `raw_bytes` kept back (0 for an override).
    pub safety_margin: f64,
    /// What kind of memory the adapter has.
    pub adapter_class: AdapterClass,
    /// One sentence saying how the figure was reached, numbers included.
    pub explanation: String,
}

/// How a tier turns into bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Rule {
    /// Its own VRAM, in GiB (the smallest of the parts that carry the name).
    Vram(f64),
    /// A share of system memory.
    SystemShare(f64),
}

/// One row of the tier table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tier {
    /// The name recorded in [`EstimatedFrom::TierTable`].
    pub name: &'static str,
    /// A person's name for the family, used in explanations.
    pub label: &'static str,
    pub class: AdapterClass,
    /// Substrings of the normalised adapter text (see the module docs); any one matches.
    pub patterns: &'static [&'static str],
    /// Exact values of `vendor` (names or PCI ids) that match on their own, after every
    /// pattern of every tier has been tried.
    pub vendors: &'static [&'static str],
    pub rule: Rule,
}

const fn vram(name: &'static str, label: &'static str, patterns: &'static [&'static str], gib: f64) -> Tier {
    Tier { name, label, class: AdapterClass::Discrete, patterns, vendors: &[], rule: Rule::Vram(gib) }
}

/// Unified memory: [`UNIFIED_SHARE`] of system memory, as the drivers themselves allow. Windows
/// lets an integrated GPU use half of system RAM as "shared GPU memory"; macOS's
/// `recommendedMaxWorkingSetSize` is about two thirds to three quarters of RAM on Apple silicon,
/// but the OS, the browser and other tabs live in the same memory, so half is planned on too.
const UNIFIED_SHARE: f64 = 0.5;

/// Phones and tablets: Android's low-memory killer and the browsers' per-process limits leave a
/// page far less than half of RAM; a quarter.
const MOBILE_SHARE: f64 = 0.25;

/// Software adapters draw on system memory too, in the browser's GPU process next to the page's
/// own wasm heap (which holds a copy of each tensor while it uploads): a quarter. A software
/// adapter is slow enough that models which need more are not worth running on it anyway.
const CPU_SHARE: f64 = 0.25;

/// The tier table. VRAM figures are the smallest memory any desktop or laptop part with that
/// name ships with (vendor spec sheets), so that "laptop" variants are covered; a more specific
/// pattern comes before a more general one.
pub const TIERS: &[Tier] = &[
    Tier {
        name: "cpu-software",
        label: "software (CPU) adapter",
        class: AdapterClass::Cpu,
        // The one software-adapter rule's names (with `isFallbackAdapter`, checked in `tier`).
        patterns: crate::backend::SOFTWARE_ADAPTER_NAMES,
        // The rule's vendors: Mesa's Vulkan id (lavapipe/llvmpipe) and Google's (SwiftShader).
        vendors: crate::backend::SOFTWARE_ADAPTER_VENDORS,
        rule: Rule::SystemShare(CPU_SHARE),
    },
    // NVIDIA GeForce: desktop / laptop VRAM in GB.
    vram("nvidia-rtx-5090", "NVIDIA RTX 5090", &["rtx 5090"], 24.0), // 32 / 24
    vram("nvidia-rtx-5080", "NVIDIA RTX 5080", &["rtx 5080"], 16.0), // 16 / 16
    vram("nvidia-rtx-50xx", "NVIDIA RTX 50 series", &["rtx 50"], 8.0), // 5070: 12 / 8; 5060: 8 / 8
    vram("nvidia-rtx-4090", "NVIDIA RTX 4090", &["rtx 4090"], 16.0), // 24 / 16
    vram("nvidia-rtx-4080", "NVIDIA RTX 4080", &["rtx 4080"], 12.0), // 16 / 12
    vram("nvidia-rtx-4070", "NVIDIA RTX 4070", &["rtx 4070"], 8.0),  // 12 / 8
    vram("nvidia-rtx-40xx", "NVIDIA RTX 40 series", &["rtx 40"], 6.0), // 4060: 8 / 8; 4050: - / 6
    vram("nvidia-rtx-3090", "NVIDIA RTX 3090", &["rtx 3090"], 24.0), // 24 / -
    vram("nvidia-rtx-3080", "NVIDIA RTX 3080", &["rtx 3080"], 8.0),  // 10 / 8
    vram("nvidia-rtx-3070", "NVIDIA RTX 3070", &["rtx 3070"], 8.0),  // 8 / 8
    vram("nvidia-rtx-30xx", "NVIDIA RTX 30 series", &["rtx 30"], 4.0), // 3060: 8 / 6; 3050: 6 / 4
    vram("nvidia-rtx-20xx", "NVIDIA RTX 20 series", &["rtx 20"], 6.0), // 2060 6 … 2080 Ti 11
    vram("nvidia-gtx-16xx", "NVIDIA GTX 16 series", &["gtx 16"], 4.0), // 1650 4, 1660 6
    vram("nvidia-gtx-10xx", "NVIDIA GTX 10 series", &["gtx 10"], 2.0), // 1050 2 … 1080 Ti 11
    // AMD Radeon RX (discrete; "Radeon Graphics" without "RX" is an APU, below).
    vram("amd-rx-9xxx", "AMD Radeon RX 9000 series", &["rx 9"], 8.0), // 9070 16, 9060 8
    vram("amd-rx-7900", "AMD Radeon RX 7900", &["rx 7900"], 16.0),    // GRE 16, XT 20, XTX 24
    vram("amd-rx-7800", "AMD Radeon RX 7800", &["rx 7800"], 16.0),    // 16
    vram("amd-rx-7xxx", "AMD Radeon RX 7000 series", &["rx 7"], 8.0), // 7700 XT 12, 7600 8, 7700S 8
    vram("amd-rx-68xx-69xx", "AMD Radeon RX 6800/6900", &["rx 68", "rx 69"], 12.0), // 6800M 12
    vram("amd-rx-6xxx", "AMD Radeon RX 6000 series", &["rx 6"], 4.0), // 6700 10 … 6500 XT 4
    // "rx 5" is both Polaris (RX 550/560/570/580: 2 to 8) and RDNA 1 (RX 5500/5700: 4 to 8).
    vram("amd-rx-5xx-5xxx", "AMD Radeon RX 500/5000 series", &["rx 5"], 2.0),
    // Intel Arc discrete. "Intel Arc Graphics" without a model number is Meteor Lake's
    // integrated GPU and falls through to `intel-integrated`.
    vram("intel-arc-b", "Intel Arc B series", &["arc b5", "arc b7"], 10.0), // B570 10, B580 12
    vram("intel-arc-a7", "Intel Arc A7 series", &["arc a7"], 8.0),          // A750 8, A770 8/16
    vram(
        "intel-arc-discrete",
        "Intel Arc discrete",
        &["arc a5", "arc a3", "xe-hpg", "xe2-hpg", "gen-12hp"],
        4.0, // A380 6, A370M 4, A310 4, A530M 4
    ),
    Tier {
        name: "apple-unified",
        label: "Apple silicon (unified memory)",
        class: AdapterClass::Integrated,
        patterns: &["apple m"],
        vendors: &["apple", "0x106b"],
        rule: Rule::SystemShare(UNIFIED_SHARE),
    },
    Tier {
        name: "intel-integrated",
        label: "Intel integrated GPU",
        class: AdapterClass::Integrated,
        patterns: &["intel uhd", "intel hd", "iris", "xe-lpg", "xe2-lpg", "gen-"],
        vendors: &["intel", "0x8086"],
        rule: Rule::SystemShare(UNIFIED_SHARE),
    },
    Tier {
        name: "amd-integrated-or-unknown",
        label: "AMD GPU of unknown model (APU or discrete; planned as an APU)",
        class: AdapterClass::Integrated,
        patterns: &["radeon graphics", "radeon vega", "vega 8", "vega 11"],
        // Browsers report `amd` with an architecture (`rdna-3`) for APUs and discrete cards
        // alike; an APU's share of system memory is the safe reading of the two.
        vendors: &["amd", "0x1002"],
        rule: Rule::SystemShare(UNIFIED_SHARE),
    },
    Tier {
        name: "mobile-unified",
        label: "mobile GPU (unified memory)",
        class: AdapterClass::Integrated,
        patterns: &["mali", "immortalis", "adreno", "powervr", "xclipse"],
        vendors: &["arm", "qualcomm", "imagination", "samsung", "0x13b5", "0x5143", "0x1010", "0x144d"],
        rule: Rule::SystemShare(MOBILE_SHARE),
    },
    Tier {
        name: "nvidia-unknown-model",
        label: "NVIDIA GPU of unknown model",
        class: AdapterClass::Discrete,
        patterns: &[],
        // Browsers usually report only `nvidia` and an architecture. 4 GB is the least VRAM of
        // the RTX laptop parts still in use (RTX 3050 Laptop); older GTX cards have less but
        // rarely run WebGPU well.
        vendors: &["nvidia", "0x10de"],
        rule: Rule::Vram(4.0),
    },
];

impl AdapterFacts {
    /// Vendor, architecture, device and description, lowercased, with `(r)`/`(tm)`/`®`/`™`
    /// removed and whitespace collapsed: the text the tier patterns match.
    pub fn normalized_text(&self) -> String {
        let joined = [&self.vendor, &self.architecture, &self.device, &self.description]
            .map(|s| s.as_str())
            .join(" ")
            .to_lowercase()
            .replace("(r)", " ")
            .replace("(tm)", " ")
            .replace(['®', '™'], " ");
        joined.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The tier-table row this adapter matches, if any: a software adapter (the one rule,
    /// [`crate::backend::is_software_adapter`]) is always `cpu-software`; then patterns in table
    /// order; then the vendor alone.
    pub fn tier(&self) -> Option<&'static Tier> {
        let texts = [self.architecture.as_str(), self.device.as_str(), self.description.as_str()];
        if crate::backend::is_software_adapter(self.is_fallback_adapter, &self.vendor, &texts) {
            return Some(&TIERS[0]);
        }
        let text = self.normalized_text();
        if let Some(t) = TIERS.iter().find(|t| t.patterns.iter().any(|p| text.contains(p))) {
            return Some(t);
        }
        let vendor = self.vendor.trim().to_lowercase();
        TIERS.iter().find(|t| t.vendors.contains(&vendor.as_str()))
    }

    /// Whether this is a software adapter on the CPU (SwiftShader, lavapipe, llvmpipe, …).
    pub fn is_cpu(&self) -> bool {
        self.class() == AdapterClass::Cpu
    }

    /// The adapter's memory class, from the tier table.
    pub fn class(&self) -> AdapterClass {
        self.tier().map_or(AdapterClass::Unknown, |t| t.class)
    }
}

/// `gb` GB (binary) in bytes.
fn gb_bytes(gb: f64) -> u64 {
    (gb * GIB as f64).max(0.0) as u64
}

/// `bytes * share`, rounded down.
fn share_of(bytes: u64, share: f64) -> u64 {
    (bytes as f64 * share) as u64
}

/// `"8 GB"` for a deviceMemory figure (which may be 0.25, 0.5, …).
fn gb_text(gb: f64) -> String {
    format_bytes(gb_bytes(gb))
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

impl Budget {
    /// The budget for an adapter; see the [module docs](self) for the table and the
    /// [parent module](super) for the order of the sources.
    pub fn estimate(facts: &AdapterFacts) -> Budget {
        let class = facts.class();
        if let Some(probe) = facts.probe.as_ref().filter(|p| p.hit_out_of_memory) {
            return Budget::with_margin(
                probe.allocated_bytes,
                EstimatedFrom::Probe,
                class,
                format!("An allocation probe ran out of memory after {}", format_bytes(probe.allocated_bytes)),
            );
        }
        let (raw, from, why) = match facts.tier() {
            Some(tier) => {
                let (raw, why) = tier_estimate(tier, facts.device_memory_gb);
                (raw, EstimatedFrom::TierTable { tier: tier.name.to_owned() }, why)
            }
            None => match facts.device_memory_gb {
                Some(gb) => (
                    share_of(gb_bytes(gb), UNKNOWN_ADAPTER_SHARE),
                    EstimatedFrom::DeviceMemory,
                    format!(
                        "Unrecognised adapter: {} of navigator.deviceMemory {}",
                        percent(UNKNOWN_ADAPTER_SHARE),
                        gb_text(gb)
                    ),
                ),
                None => (
                    DEFAULT_BUDGET_BYTES,
                    EstimatedFrom::Default,
                    format!(
                        "Unrecognised adapter and no navigator.deviceMemory: the default {}",
                        format_bytes(DEFAULT_BUDGET_BYTES)
                    ),
                ),
            },
        };
        // A probe that stopped at its cap proves at least that much is there.
        if let Some(probe) = facts.probe.as_ref()
            && probe.allocated_bytes > raw
        {
            return Budget::with_margin(
                probe.allocated_bytes,
                EstimatedFrom::Probe,
                class,
                format!(
                    "An allocation probe reached its cap of {} without running out of memory \
                     (more than the estimate: {why})",
                    format_bytes(probe.allocated_bytes)
                ),
            );
        }
        Budget::with_margin(raw, from, class, why)
    }

    /// The same adapter with the budget set by the application: exactly `bytes`, no margin.
    pub fn overridden(&self, bytes: u64) -> Budget {
        Budget {
            bytes,
            raw_bytes: bytes,
            estimated_from: EstimatedFrom::Override,
            safety_margin: 0.0,
            adapter_class: self.adapter_class,
            explanation: format!("Set by the application to {}", format_bytes(bytes)),
        }
    }

    fn with_margin(raw: u64, from: EstimatedFrom, class: AdapterClass, why: String) -> Budget {
        let bytes = share_of(raw, 1.0 - SAFETY_MARGIN);
        Budget {
            bytes,
            raw_bytes: raw,
            estimated_from: from,
            safety_margin: SAFETY_MARGIN,
            adapter_class: class,
            explanation: format!(
                "{why} = {}, less a {} safety margin: {}",
                format_bytes(raw),
                percent(SAFETY_MARGIN),
                format_bytes(bytes)
            ),
        }
    }
}

/// Raw bytes and the reasoning for a recognised tier.
fn tier_estimate(tier: &Tier, device_memory_gb: Option<f64>) -> (u64, String) {
    match tier.rule {
        Rule::Vram(gib) => (
            share_of(gb_bytes(gib), DISCRETE_SHARE),
            format!(
                "{} (tier {}): at least {} of VRAM, of which {} is planned on",
                tier.label,
                tier.name,
                gb_text(gib),
                percent(DISCRETE_SHARE)
            ),
        ),
        Rule::SystemShare(share) => {
            let (gb, said) = match device_memory_gb {
                Some(gb) => (gb, format!("navigator.deviceMemory {}", gb_text(gb))),
                None => (
                    ASSUMED_SYSTEM_GB,
                    format!("an assumed {} (no navigator.deviceMemory)", gb_text(ASSUMED_SYSTEM_GB)),
                ),
            };
            (
                share_of(gb_bytes(gb), share),
                format!("{} (tier {}) shares system memory: {} of {said}", tier.label, tier.name, percent(share)),
            )
        }
    }
}
