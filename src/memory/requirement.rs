//! What a model will occupy on the GPU, from its GGUF header alone, and whether each of its
//! buffers fits the device's limits.
//!
//! The arithmetic is the loader's, not a second guess:
//! - **Weights** — the tensors [`crate::infer::WeightsBuilder`] reads (every tensor of
//!   [`ModelConfig::expected_tensors`] present in the file). Matrices are laid out by the GPU
//!   backend's own `layout` module (`src/infer/gpu/layout.rs`, used here directly): GGUF
//!   block bytes kept, the lone `f16` scale of Q4_0/Q5_0/Q8_0/Q6_K blocks moved to a word-aligned
//!   array (at most 2 bytes of padding per part), split into row ranges at the binding limit.
//!   1-D tensors (norms, biases) are decoded to f32: `4 * n` bytes. These are the bytes
//!   `WeightsBuilder::add` counts.
//! - **KV cache and activations** — [`BufferPlan`], the list of buffers `Model::new` allocates
//!   from (f32 and u32 throughout): the per-layer K and V caches for the context, and the
//!   activation, logit, id and sampling buffers for one batch.
//!
//! Each device allocation is counted as the GPU backend makes it, rounded up to 16 bytes, so the
//! figure is the allocator's to the byte (`tests/infer_gpu_real.rs` measures it on the three
//! real models).
//!
//! # Limits
//! Every buffer the model binds is checked against the binding limit the GPU backend uses:
//! `min(maxStorageBufferBindingSize, maxBufferSize, 2^31)` (cubecl takes the smaller of the two
//! WebGPU limits as its page size; the backend caps it at 2 GiB to keep `u32` word indices in
//! range). A matrix is split by rows, so it fails only when a *single row* does not fit; a vector,
//! one layer's K (or V) cache and each activation buffer are bound whole. A type without a GPU
//! kernel, and a file feature the loader refuses, are reported as missing features.

use serde::Serialize;

use crate::gguf::{GgufHeader, TensorInfo};
use crate::infer::{BufferPlan, KvCache, Shape};
use crate::model::{ModelConfig, ModelError};

use super::format_bytes;

// The GPU backend's own weight layout, so the requirement and the loader cannot drift apart.
use crate::infer::gpu::layout::{Fmt, part_bytes, split_rows};

/// The GPU backend's own cap on one binding, whatever the device allows (`Gpu::with_max_binding`:
/// `u32` word indices must stay in range).
pub const BACKEND_MAX_BINDING: u64 = 1 << 31;

/// The two WebGPU limits that bound single buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceLimits {
    /// `maxBufferSize`.
    pub max_buffer_size: u64,
    /// `maxStorageBufferBindingSize`.
    pub max_storage_buffer_binding_size: u64,
}

impl DeviceLimits {
    /// WebGPU's defaults, what a device gets unless it asks for more: 256 MiB buffers, 128 MiB
    /// storage bindings.
    pub const WEBGPU_DEFAULT: DeviceLimits =
        DeviceLimits { max_buffer_size: 256 << 20, max_storage_buffer_binding_size: 128 << 20 };

    /// No limit (the CPU backend).
    pub const UNLIMITED: DeviceLimits =
        DeviceLimits { max_buffer_size: u64::MAX, max_storage_buffer_binding_size: u64::MAX };

    /// The largest buffer the GPU backend binds: `min(binding, buffer, 2 GiB)`, at least 4.
    pub fn binding_limit(&self) -> u64 {
        self.max_storage_buffer_binding_size.min(self.max_buffer_size).clamp(4, BACKEND_MAX_BINDING)
    }

    /// Which limit [`Self::binding_limit`] comes from: `maxBufferSize` when that is the smaller.
    fn limit_kind(&self, name: String, needed_bytes: u64) -> LimitKind {
        let limit_bytes = self.binding_limit();
        if self.max_buffer_size < self.max_storage_buffer_binding_size && self.max_buffer_size <= BACKEND_MAX_BINDING {
            LimitKind::BufferSize { name, needed_bytes, limit_bytes }
        } else {
            LimitKind::TensorOverBindingLimit { name, needed_bytes, limit_bytes }
        }
    }
}

/// Which limit keeps a model off the device.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum LimitKind {
    /// The model does not fit in the memory budget.
    TotalBudget,
    /// One buffer (a vector, one row of a matrix, a cache or activation buffer) is larger than
    /// `maxStorageBufferBindingSize`.
    TensorOverBindingLimit {
        /// The tensor or buffer.
        name: String,
        /// The smallest binding it needs (one row, for a matrix).
        needed_bytes: u64,
        /// The binding limit in force.
        limit_bytes: u64,
    },
    /// As [`LimitKind::TensorOverBindingLimit`], where `maxBufferSize` is the smaller limit.
    BufferSize { name: String, needed_bytes: u64, limit_bytes: u64 },
    /// Something the model needs that this device or Hearth does not have: a GPU kernel for a
    /// tensor type, or a model feature the loader refuses.
    MissingFeature {
        /// What is missing, e.g. `"a GPU kernel for Q5_K"`.
        feature: String,
        /// The tensor that needs it, if one does.
        tensor: Option<String>,
    },
}

/// One reason a model cannot be loaded whatever the budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitProblem {
    pub limit: LimitKind,
    /// A sentence for people, e.g. "Tensor token_embd.weight needs a 1.2 GB binding but this
    /// GPU allows 1.0 GB".
    pub message: String,
}

/// A tensor and its device bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TensorBytes {
    pub name: String,
    pub bytes: u64,
}

/// The sizes a requirement is computed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequirementOptions {
    /// Positions the KV cache holds. Clamped to the model's training context, as the loader does.
    pub context: u32,
    /// Most tokens one forward step takes ([`Shape::for_context`] uses 64).
    pub batch: u32,
    /// How the KV cache stores its elements (the CPU engine's `kvCache`; f32 by default).
    #[serde(skip)]
    pub kv: KvCache,
}

impl Default for RequirementOptions {
    /// The web loader's defaults: a 2048-position context and [`Shape::for_context`]'s batch.
    fn default() -> Self {
        RequirementOptions { context: 2048, batch: Shape::for_context(2048).batch as u32, kv: KvCache::F32 }
    }
}

/// What a model will occupy on the device.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Requirement {
    /// `true` when computed from the header; `false` for a catalog estimate or figure.
    pub exact: bool,
    /// The context the KV cache is sized for (after clamping).
    pub context: u32,
    /// The batch the activation buffers are sized for.
    pub batch: u32,
    /// Weights as laid out on the device.
    pub weight_bytes: u64,
    /// K and V caches, all layers, f32.
    pub kv_cache_bytes: u64,
    /// Activation, logit and id buffers, f32.
    pub activation_bytes: u64,
    /// The sum of the three.
    pub total_bytes: u64,
    /// The weight tensor with the most device bytes (all its parts together).
    pub largest_tensor: Option<TensorBytes>,
    /// Host memory (the wasm heap in the browser) one tensor's upload holds at its peak, not
    /// part of [`Self::total_bytes`]: the tensor's file bytes, which the loader holds whole,
    /// beside the device-layout copy of its largest part (a matrix) or its f32 decoding and
    /// the bytes of that (a vector). The largest over the model's tensors.
    pub upload_peak_bytes: u64,
    /// Reasons the model cannot be loaded on this device at any budget; empty when none.
    pub problems: Vec<LimitProblem>,
}

/// Trailing dimensions of 1 dropped, as `WeightsBuilder::add` does before telling vectors from
/// matrices.
fn trimmed_dims(info: &TensorInfo) -> &[u64] {
    let n = info.dims.iter().rposition(|&d| d != 1).map_or(1, |i| i + 1);
    &info.dims[..n.min(info.dims.len())]
}

/// The list of GPU kernel formats, for messages.
const KERNEL_TYPES: &str = "F32, F16, Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K";

fn over_limit(limits: &DeviceLimits, what: String, name: String, needed: u64) -> LimitProblem {
    let limit = limits.limit_kind(name, needed);
    let noun = match limit {
        LimitKind::BufferSize { .. } => "buffer",
        _ => "binding",
    };
    let message = format!(
        "{what} needs a {} {noun} but this GPU allows {}",
        format_bytes(needed),
        format_bytes(limits.binding_limit())
    );
    LimitProblem { limit, message }
}

fn missing(feature: String, tensor: Option<String>, message: String) -> LimitProblem {
    LimitProblem { limit: LimitKind::MissingFeature { feature, tensor }, message }
}

/// Host bytes the upload of `info` holds at once (see [`Requirement::upload_peak_bytes`]), given
/// the device bytes of its largest part.
fn upload_peak(info: &TensorInfo, largest_part: u64) -> u64 {
    if trimmed_dims(info).len() <= 1 {
        // The f32 decoding, then its bytes (rounded as uploaded).
        let f32s = info.n_elements.saturating_mul(4);
        info.size_bytes.saturating_add(f32s).saturating_add(f32s.next_multiple_of(16).max(16))
    } else {
        info.size_bytes.saturating_add(largest_part)
    }
}

/// Device bytes of one weight tensor, the bytes of its largest part, and any problem with it.
fn tensor_device_bytes(info: &TensorInfo, limits: &DeviceLimits) -> (u64, u64, Option<LimitProblem>) {
    let limit = limits.binding_limit();
    let dims = trimmed_dims(info);
    let problem = |needed| over_limit(limits, format!("Tensor {}", info.name), info.name.clone(), needed);
    if dims.len() <= 1 {
        let bytes = info.n_elements.saturating_mul(4);
        let allocated = bytes.next_multiple_of(16).max(16);
        return (allocated, allocated, (bytes > limit).then(|| problem(bytes)));
    }
    let Some(fmt) = Fmt::of(info.ggml_type) else {
        let ty = info.ggml_type.name();
        return (
            info.size_bytes,
            info.size_bytes,
            Some(missing(
                format!("a GPU kernel for {ty}"),
                Some(info.name.clone()),
                format!(
                    "Tensor {} is stored as {ty}, which the GPU backend cannot compute with \
                     (supported: {KERNEL_TYPES})",
                    info.name
                ),
            )),
        );
    };
    // The layout works in `usize`: a tensor whose element count does not fit (over 4G elements
    // on wasm32) cannot be uploaded either.
    let shape = usize::try_from(dims[0]).ok().and_then(|c| {
        let r = usize::try_from(dims[1..].iter().product::<u64>()).ok()?;
        r.checked_mul(c).map(|_| (r, c))
    });
    let Some((rows, cols)) = shape else {
        return (info.size_bytes, info.size_bytes, Some(problem(info.size_bytes)));
    };
    match split_rows(fmt, rows, cols, limit) {
        Some(parts) => {
            let largest = parts.iter().map(|&(_, n)| part_bytes(fmt, n, cols)).max().unwrap_or(0);
            // Each part is its own allocation, rounded up to 16 bytes (`Gpu::create`).
            (parts.iter().map(|&(_, n)| part_bytes(fmt, n, cols).next_multiple_of(16)).sum(), largest, None)
        }
        None => {
            let whole = part_bytes(fmt, rows, cols);
            (whole, whole, Some(problem(part_bytes(fmt, 1, cols))))
        }
    }
}

impl Requirement {
    /// The exact requirement of the model `header` describes, for `options`, on a device with
    /// `limits`. Needs the header only.
    ///
    /// # Errors
    /// What [`ModelConfig::from_gguf`] and [`ModelConfig::validate_tensors`] reject (an
    /// unsupported architecture, a missing key or tensor, a misshapen tensor): the loader would
    /// refuse the same file.
    pub fn from_header(
        header: &GgufHeader,
        options: RequirementOptions,
        limits: &DeviceLimits,
    ) -> Result<Requirement, ModelError> {
        let cfg = ModelConfig::from_gguf(header)?;
        cfg.validate_tensors(header)?;
        Ok(Requirement::for_config(&cfg, header, options, limits))
    }

    /// What loading `header` with a `context` of positions occupies, sized as the loader sizes
    /// it: the context clamped to the model's own first, then the batch that context takes.
    ///
    /// # Errors
    /// As [`Self::from_header`].
    pub fn for_load(header: &GgufHeader, context: u32, limits: &DeviceLimits) -> Result<Requirement, ModelError> {
        let cfg = ModelConfig::from_gguf(header)?;
        let context = context.min(cfg.context_length).max(1);
        let options =
            RequirementOptions { context, batch: Shape::for_context(context as usize).batch as u32, kv: KvCache::F32 };
        cfg.validate_tensors(header)?;
        Ok(Requirement::for_config(&cfg, header, options, limits))
    }

    /// As [`Self::from_header`], with the configuration already read (and validated).
    pub fn for_config(
        cfg: &ModelConfig,
        header: &GgufHeader,
        options: RequirementOptions,
        limits: &DeviceLimits,
    ) -> Requirement {
        let mut problems = Vec::new();

        // The tensors `WeightsBuilder::new` lists: those of the configuration present in the file.
        let mut weight_bytes = 0u64;
        let mut upload_peak_bytes = 0u64;
        let mut largest: Option<TensorBytes> = None;
        for (name, _, _) in cfg.expected_tensors() {
            let Some(info) = header.tensor(&name) else {
                continue;
            };
            if name == "rope_freqs.weight" {
                // A few divisors kept on the host (the RoPE launch's parameters), not a buffer.
                continue;
            }
            let (bytes, largest_part, problem) = tensor_device_bytes(info, limits);
            weight_bytes += bytes;
            upload_peak_bytes = upload_peak_bytes.max(upload_peak(info, largest_part));
            problems.extend(problem);
            if largest.as_ref().is_none_or(|l| bytes > l.bytes) {
                largest = Some(TensorBytes { name, bytes });
            }
        }

        let context = options.context.min(cfg.context_length).max(1);
        let batch = options.batch.max(1);
        // The buffers `Model::new` allocates, from the list it allocates from.
        let shape = Shape { context: context as usize, batch: batch as usize, logit_rows: 1, kv: options.kv };
        let plan = BufferPlan::new(cfg, shape);
        let kv_cache_bytes = plan.kv_cache_device_bytes();
        let activation_bytes = plan.device_bytes() - kv_cache_bytes;

        // Buffers bound whole: one layer's K (or V) cache, and the largest activation buffers.
        let limit = limits.binding_limit();
        let (b, embd, q, kv, ff) =
            (u64::from(batch), u64::from(cfg.n_embd), cfg.q_dim(), cfg.kv_dim(), u64::from(cfg.n_ff));
        let whole = [
            (
                "The KV cache of one layer",
                "kv_cache.layer",
                4 * options.kv.words(context as usize * kv as usize) as u64,
            ),
            ("The logits buffer", "logits", u64::from(cfg.n_vocab) * 4),
            ("The feed-forward activation buffer", "activations.ffn", b * ff * 4),
            ("The attention activation buffer", "activations.attention", b * q.max(embd) * 4),
        ];
        for (what, name, bytes) in whole {
            if bytes > limit {
                problems.push(over_limit(limits, what.to_owned(), name.to_owned(), bytes));
            }
        }

        Requirement {
            exact: true,
            context,
            batch,
            weight_bytes,
            kv_cache_bytes,
            activation_bytes,
            total_bytes: weight_bytes + kv_cache_bytes + activation_bytes,
            largest_tensor: largest,
            upload_peak_bytes,
            problems,
        }
    }

    /// A rough figure for a catalog entry whose header has not been read: the file's bytes for
    /// the weights (the device layout is within a few bytes per tensor of the GGUF data, and the
    /// header's metadata, counted here, outweighs the f32 decoding of the small vectors), plus
    /// [`CATALOG_OVERHEAD_SHARE`] of them, at least [`CATALOG_OVERHEAD_MIN`], for the KV cache
    /// and activations at a 2048-position context, scaled linearly with `context`.
    ///
    /// Replace it with [`Self::from_header`] once the header is known.
    pub fn estimate_from_catalog(file_bytes: u64, context: u32) -> Requirement {
        let overhead_2048 = ((file_bytes as f64 * CATALOG_OVERHEAD_SHARE) as u64).max(CATALOG_OVERHEAD_MIN);
        let overhead = (overhead_2048 as f64 * f64::from(context.max(1)) / 2048.0) as u64;
        Requirement {
            exact: false,
            context,
            batch: RequirementOptions::default().batch,
            weight_bytes: file_bytes,
            kv_cache_bytes: overhead,
            activation_bytes: 0,
            total_bytes: file_bytes + overhead,
            largest_tensor: None,
            upload_peak_bytes: 0,
            problems: Vec::new(),
        }
    }

    /// A figure a catalog entry carries (computed earlier with [`Self::from_header`]).
    pub fn precomputed(total_bytes: u64, context: u32) -> Requirement {
        Requirement {
            exact: false,
            context,
            batch: RequirementOptions::default().batch,
            weight_bytes: total_bytes,
            kv_cache_bytes: 0,
            activation_bytes: 0,
            total_bytes,
            largest_tensor: None,
            upload_peak_bytes: 0,
            problems: Vec::new(),
        }
    }
}

/// KV cache and activations of a catalog estimate at context 2048, as a share of the file. The
/// three real models need (exact, from their headers) 11% (Qwen2.5 0.5B: 54 MiB over a 469 MiB
/// file), 31% (Gemma 3 270M: 76 MiB over 241 MiB) and 98% (SmolLM2 135M: 92 MiB over 94 MiB; 30
/// layers of 3 KV heads hold as much cache as its weights). A half errs high for most models,
/// which is the safe side for a figure the header replaces.
pub const CATALOG_OVERHEAD_SHARE: f64 = 0.5;

/// ... but at least this much, which covers SmolLM2 135M's 92 MiB.
pub const CATALOG_OVERHEAD_MIN: u64 = 128 << 20;
