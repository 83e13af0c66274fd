//! The GPU backend: [`Compute`] as hand-written WGSL kernels, launched through burn's cubecl
//! runtime on burn's wgpu device (WebGPU in the browser, Vulkan/Metal/DX12 natively).
//!
//! # Kernels
//! - Weights stay in their GGUF block formats, re-laid out losslessly into `u32` words at upload
//!   (module `layout`: the lone `f16` scale of Q4_0/Q5_0/Q8_0/Q6_K blocks moves to an array in
//!   front, so every payload is word-aligned; device bytes are the GGUF bytes plus at most 2 per
//!   part). A weight larger than the binding limit is split by row ranges into several buffers;
//!   `matmul` and `embed` launch once per part.
//! - Every weight format has one WGSL decoder, `unit(row, u)`: eight weights of a row (two runs
//!   of four columns) as two `vec4<f32>`, plus the columns they multiply. `matmul` with `n == 1`
//!   is a matrix-vector product (4 to 32 lanes per row, so that each lane gets a few units,
//!   striding over the row; 256 threads per workgroup; a shared-memory tree reduction per row);
//!   with `n > 1` a tiled product (32 x 64 output tiles: each weight unit is dequantized once per
//!   tile into shared memory and reused by 32 rows of `x`). `embed` uses the same decoders.
//!   Those two are the choice on a real GPU (coalesced loads, many lanes per row).
//! - On a CPU adapter (SwiftShader in the browser, llvmpipe/lavapipe natively: no card behind
//!   it, or a name that says so; [`Gpu::use_row_kernels`] overrides) `matmul` uses `Rows`
//!   instead, for every `n`: no shared memory and no barrier; each invocation loops over whole
//!   rows, `rb` weight rows by `xb` rows of `x` in registers (4 x min(n, 4)), 64 invocations
//!   per workgroup. These adapters run a workgroup's invocations as
//!   SIMD loops (8 lanes on llvmpipe, 4 on SwiftShader) and every `workgroupBarrier` switches
//!   between all of them, so barriers and shared memory cost far more than the arithmetic; and
//!   an `x` load shared by `rb` rows saves gathers (lanes read different rows). Measured on
//!   lavapipe (2 shared cores, `examples/gpu_profile.rs`, SmolLM2-135M Q4_1; noisy to ~1.5x):
//!   Q4_1 1536x576 `n == 1` 2.9 -> 0.7 ms, 576x1536 2.4 -> 0.8 ms, the Q8_0 49152x576 lm_head
//!   81 -> 32 ms; `n == 5` 40 -> 1.8 ms and 1590 -> 114 ms (the tile does 64 rows x 32 lanes
//!   of shared-memory work and 2 barriers per 32 columns for 5 real rows); `n == 64` 79 ->
//!   19 ms. A whole decode step 777 -> 285 ms, a 5-token prefill 5.7 -> 1.0 s. For `n == 1`
//!   (and the fused decode kernels) 4 rows beat 8 on SwiftShader, whose 4-wide SIMD has half
//!   llvmpipe's registers for the accumulators: SmolLM2's decode 1.60-1.65 -> 2.00-2.07 tok/s,
//!   Gemma 3's 0.65-0.80 -> 0.76-0.82, A/B in one headless Chromium session.
//! - `attention` is one workgroup per (query row, head), online softmax over tiles of 128 keys
//!   (split among key groups that each keep their own running max, merged at the end), so the
//!   context is bounded only by the cache and no scratch buffer is needed. One kernel serves
//!   every head size: rows are read as `vec4`s, masked when the size is not a multiple of 4. Row-wise ops
//!   (`rms_norm`: 64 threads, `argmax`: 256) are one workgroup per row: strided partial results,
//!   one barrier, then a serial pass over the partials (a tree reduction costs a barrier per
//!   level, which CPU adapters pay dearly and GPUs do not need for 64 or 256 values); the rest
//!   are element-wise. No `f16` arithmetic: `f16` scales are decoded from their bits (the
//!   `F16` family's tiles hold f16 values that f16 holds exactly; see [`Kernels::F16`]).
//! - On a GPU whose device has `subgroups` ([`GpuFeatures`]), `matmul` with `n == 1` and the fused
//!   weight kernels reduce each row in one subgroup instead (`SgMatvec`, `shaders/subgroup/`):
//!   several rows per workgroup of 128, the lanes of a subgroup striding over the row's units and
//!   `subgroupAdd` summing them, for any subgroup size.
//! - `top_k` (sampling reads back `k` candidates, not the vocabulary) is a radix select on the
//!   values' order keys, one workgroup per range of the row: up to 64 workgroups each write the
//!   top `k` of their range to a scratch buffer the [`Gpu`] holds (64 x 64 pairs), and one more
//!   workgroup selects and sorts the final `k` from those. Each pass reads its range 3 to 4 times
//!   (cache-resident on a CPU-emulated adapter) and does O(1) work per element and round.
//! - Every buffer is its own device allocation (cubecl's "dedicated" allocations): exact-sized,
//!   and handed back to the driver soon after its last handle is dropped.
//! - The families ([`Kernels`], module `family`): `Rows`, `Subgroup` (`SgMatvec`/`Tiled`) or
//!   `Portable` (`Matvec`/`Tiled`), chosen from the adapter and its features or forced by
//!   [`Gpu::set_kernels`] for tests and benchmarks; `F16` (forced only) is `Subgroup` or
//!   `Portable` with a prompt's quantized weights in f16 tiles (`Tiled { half }`).
//!
//! # One submission per decoded token
//! A decode step is the fused ops of module `fused` (three projections in one dispatch, gate +
//! up + activation in one, biases or gemma3's per-head norms + RoPE + KV-cache write in one,
//! each residual add with the norm after it, the embedding with the first norm; a weight split
//! over two or three buffers in one too): 8 dispatches per layer plus 3 (the embedding, the
//! output projection, the argmax). cubecl records launches into one command encoder and submits it
//! every `tasks_max` launches, before a queue write, and at a readback; with a device made with
//! [`TASKS_PER_SUBMISSION`] and the greedy token embedded from the device (no queue write), a
//! decoded token is one submission, its readback of one id.
//!
//! # Recorded decode steps
//! A model's first decode step is recorded (module `graph`, [`Compute::decode_step`]): cubecl
//! resolves its pipelines, bind groups and parameters once, and every later step replays them,
//! skipping the launch path. The position, the one parameter that changes per token, is then
//! read by the RoPE and attention kernels from a one-word buffer written once per token
//! ([`Spec::pos_buf`]); a step launched op by op carries it in its parameters. Steps are recorded
//! again where attention's split over the context changes, and never while kernels are profiled;
//! on a CPU adapter they are launched op by op unless [`Gpu::set_decode_graphs`] says otherwise.

//! # Parameters
//! Scalars (sizes, offsets, positions, `eps`, ...) travel in cubecl's own per-launch info
//! binding ([`MetadataBindingInfo::custom`]): cubecl stages them into a uniform slice taken from
//! its uniform pool (reused by content, recycled after the submission that used it), and binds
//! it after the storage buffers, where our WGSL declares `P`. Each launch therefore owns its
//! parameters: two launches queued back to back with no readback in between see their own
//! values, unlike a shared parameter buffer rewritten between launches (a queue write lands
//! before the whole submission). No device buffer is created per op in steady state.
//!
//! # Aliasing
//! WebGPU rejects a dispatch that binds overlapping ranges of one buffer writable twice, so a
//! call that passes the same [`GpuBuf`] twice (an in-place `rms_norm`, say) binds it once and
//! the kernel variant names both parameters by the one binding.

mod attention;
mod family;
pub mod features;
mod fused;
mod graph;
mod kernel;
pub(crate) mod layout;
mod profile;
mod wgsl;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use burn::cubecl::MemoryScope;
use burn::cubecl::bytes::Bytes;
use burn::cubecl::client::Client;
use burn::cubecl::prelude::CubeCount;
use burn::cubecl::server::{Handle, KernelArguments, MetadataBindingInfo};
use burn_wgpu::WgpuDevice;

use crate::gguf::GgmlType;

use super::InferError;
use super::compute::MAX_TOP_K;
use super::compute::{Activation, Attention, Compute, HeadNorms, KvCache, Rope};
pub use attention::Flash;
pub use family::Kernels;
use family::cpu_adapter;
pub use features::{GpuFeatures, SubgroupSizes};
pub use graph::GpuSteps;
use kernel::{MAX_BUFFERS, Spec, TopKPass, WgslKernel};
pub use layout::GpuWeight;
use layout::{Fmt, Part};
pub use profile::KernelTime;

/// An `f32` buffer on the GPU. Clones share the storage.
#[derive(Debug, Clone)]
pub struct GpuBuf {
    handle: Handle,
    len: usize,
    id: u64,
}

impl GpuBuf {
    /// Elements the buffer holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A `u32` buffer on the GPU (token ids). Clones share the storage.
#[derive(Debug, Clone)]
pub struct GpuIds {
    handle: Handle,
    len: usize,
    id: u64,
}

/// The GPU backend (see the module docs).
pub struct Gpu {
    client: Client,
    name: String,
    max_binding: u64,
    max_groups: u32,
    /// `matmul` with [`Spec::Rows`] (a CPU adapter; see [`Gpu::use_row_kernels`]).
    row_kernels: AtomicBool,
    /// Whether the adapter runs shaders on the CPU ([`Kernels::Auto`] picks `Rows` there).
    cpu: bool,
    /// `matmul` with `n == 1` and the fused weight kernels with subgroup reductions
    /// ([`Kernels::Subgroup`]; never set without the feature).
    subgroup_kernels: AtomicBool,
    /// `Spec::Tiled` in f16 ([`Kernels::F16`]; never set without `shader-f16`).
    half_tiles: AtomicBool,
    /// The optional device features the kernels may use.
    features: GpuFeatures,
    /// Dispatches recorded so far ([`Gpu::launches`]).
    launches: AtomicU64,
    /// The chunk maxima of [`Compute::top_k`] (`TOP_K_CHUNKS` order keys). Calls queued back to
    /// back reuse it safely: dispatches run in queue order.
    topk_chunks: GpuIds,
    /// Bytes of every buffer allocated through this backend ([`Compute::allocated_bytes`]).
    allocated: AtomicU64,
    /// Per-dispatch timings while [`Gpu::profile_kernels`] is on.
    profile: profile::ProfileSlot,
    /// When a decoded token's attention is split ([`Gpu::set_flash_decoding`]).
    flash_min_keys: AtomicU32,
    flash_min_chunk: AtomicU32,
    /// Flash-decoding's partial results.
    attn_scratch: attention::ScratchSlot,
    /// The KV caches hold half-precision pairs ([`Compute::set_kv_cache`]).
    half_kv: AtomicBool,
    /// The position a recorded decode step reads (module `graph`).
    pos: GpuIds,
    /// Whether the device can bind the position buffer besides a kernel's 8 others.
    graphs_possible: bool,
    /// Whether decode steps are recorded and replayed ([`Gpu::set_decode_graphs`]).
    graphs_on: AtomicBool,
    /// The step kernels read the position from `pos` (while a step is recorded).
    pos_buf: AtomicBool,
    /// Launches go to a recording ([`Gpu::record_launch`]).
    recording_now: AtomicBool,
    /// Decode steps replayed and recorded so far ([`Gpu::decode_graph_counts`]).
    replays: AtomicU64,
    recordings: AtomicU64,
    graph: graph::GraphSlot,
}

/// Launches cubecl records before it submits them, for a device made for this backend
/// (`tasks_max` of burn's wgpu options): more than a decode step's dispatches, so that a decoded
/// token is one submission (its readback submits it).
pub const TASKS_PER_SUBMISSION: usize = 2048;

/// Identities of buffers, unique across every [`Gpu`] of the process (two backends may share a
/// device, and so a launch may mix their buffers).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("name", &self.name)
            .field("max_binding", &self.max_binding)
            .field("row_kernels", &self.row_kernels())
            .finish()
    }
}

/// Workgroups per dispatch dimension every WebGPU device supports.
const MAX_GROUPS_PER_DIM: u32 = 65535;

/// Most chunks a top-k splits a row into (the size of its scratch buffer).
const TOP_K_CHUNKS: usize = 4096;
/// log2 of the smallest chunk of a top-k: the second pass reads `k` chunks of the row.
const TOP_K_MIN_LOG2_CHUNK: u32 = 6;

impl Gpu {
    /// The backend on `device`, whose wgpu runtime must be initialised (see
    /// [`crate::backend::Backend`] and [`crate::backend::init_wgpu`]).
    pub fn new(device: WgpuDevice) -> Result<Gpu, InferError> {
        Gpu::with_max_binding(device, u64::MAX)
    }

    /// Like [`Gpu::new`], but splits weights at `max_binding` bytes per buffer when that is below
    /// the device's own limit (to exercise splitting on a device with a generous limit).
    pub fn with_max_binding(device: WgpuDevice, max_binding: u64) -> Result<Gpu, InferError> {
        Gpu::with_features(device, GpuFeatures::NONE, max_binding)
    }

    /// Like [`Gpu::with_max_binding`], on a device that has `features` (see
    /// [`GpuFeatures::of_wgpu`]): [`Kernels::Auto`] then picks the subgroup family on a GPU
    /// with subgroups.
    pub fn with_features(device: WgpuDevice, features: GpuFeatures, max_binding: u64) -> Result<Gpu, InferError> {
        let client = burn::cubecl::Device::Wgpu(device).client();
        let props = client.properties();
        let name = props.identity.name.clone();
        let cpu = cpu_adapter(props.identity.physical.is_none(), &name);
        // Keep u32 word indices in range whatever the device allows.
        let device_limit = props.memory.max_page_size.min(1 << 31);
        let max_groups = props.hardware.max_cube_count.0.clamp(1, MAX_GROUPS_PER_DIM);
        // Never read before a partial pass writes it, so not zeroed.
        let scratch_bytes = |len: usize| (len * 4).next_multiple_of(16) as u64;
        let scratch = |len: usize| GpuIds {
            handle: client.memory_dedicated_allocation(len * 4, |size| client.empty(size)),
            len,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        };
        let topk_chunks = scratch(TOP_K_CHUNKS);
        let pos = scratch(1);
        // cubecl reports one storage binding fewer than the device has (`max_bindings`).
        let graphs_possible = props.hardware.max_bindings + 1 >= MAX_BUFFERS as u32;
        let flash = if cpu { Flash::CPU } else { Flash::GPU };
        Ok(Gpu {
            client,
            name,
            max_binding: device_limit.min(max_binding).max(4),
            max_groups,
            row_kernels: AtomicBool::new(cpu),
            cpu,
            subgroup_kernels: AtomicBool::new(!cpu && features.subgroups.is_some()),
            half_tiles: AtomicBool::new(false),
            features,
            launches: AtomicU64::new(0),
            topk_chunks,
            allocated: AtomicU64::new(scratch_bytes(TOP_K_CHUNKS) + scratch_bytes(1)),
            profile: std::sync::Mutex::new(None),
            flash_min_keys: AtomicU32::new(flash.min_keys),
            flash_min_chunk: AtomicU32::new(flash.min_chunk),
            attn_scratch: std::sync::Mutex::default(),
            half_kv: AtomicBool::new(false),
            pos,
            graphs_possible,
            // Not on a CPU adapter: there the kernels' execution dominates a token, and
            // SwiftShader runs attention slower with its bounds read from a buffer.
            graphs_on: AtomicBool::new(graphs_possible && !cpu),
            pos_buf: AtomicBool::new(false),
            recording_now: AtomicBool::new(false),
            replays: AtomicU64::new(0),
            recordings: AtomicU64::new(0),
            graph: graph::GraphSlot::default(),
        })
    }

    fn id(&self) -> u64 {
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    }

    /// A device allocation of `bytes` (rounded up to 16) of its own, outside cubecl's pools:
    /// exact-sized, and returned to the driver soon after its last handle is dropped (so a model
    /// that is unloaded gives its memory back without an explicit cleanup).
    fn empty(&self, bytes: usize) -> Handle {
        let size = bytes.next_multiple_of(16).max(16);
        self.allocated.fetch_add(size as u64, Ordering::Relaxed);
        self.client.memory_dedicated_allocation(size, |size| self.client.empty(size))
    }

    /// Like [`Gpu::empty`], holding `bytes`.
    fn create(&self, bytes: &[u8]) -> Handle {
        self.allocated.fetch_add(bytes.len().next_multiple_of(16) as u64, Ordering::Relaxed);
        self.client.memory_dedicated_allocation(bytes, |bytes| self.client.create_from_slice(bytes))
    }

    /// Launches `spec` over `groups` workgroups with `bufs` bound in order and `params` in `P`.
    fn launch(&self, spec: Spec, bufs: &[(&Handle, u64)], params: &[u32], groups: u32) {
        self.launch_words(spec, bufs, params, groups);
    }

    /// [`Gpu::launch`] (the one place a dispatch is recorded, and counted).
    fn launch_words(&self, spec: Spec, bufs: &[(&Handle, u64)], params: &[u32], groups: u32) {
        if groups == 0 {
            return;
        }
        debug_assert_eq!(bufs.len(), spec.buffers().len());
        // The position buffer goes after the kernel's own (see `Spec::pos_buf`).
        let pos = [(&self.pos.handle, self.pos.id)];
        let bufs = bufs.iter().chain(if spec.pos_buf() { &pos[..] } else { &[] });
        if !self.record_launch(bufs.clone().map(|&(h, _)| h)) {
            self.launches.fetch_add(1, Ordering::Relaxed);
        }
        let mut alias = [0u8; MAX_BUFFERS];
        let mut args = KernelArguments::new();
        for (i, (handle, id)) in bufs.clone().enumerate() {
            let first = bufs.clone().take(i).position(|(_, other)| other == id);
            match first {
                Some(j) => {
                    assert_eq!(
                        spec.buffers()[i].1,
                        spec.buffers()[j].1,
                        "{spec:?}: buffers {j} and {i} are the same buffer with different views"
                    );
                    alias[i] = alias[j];
                }
                None => {
                    alias[i] = i as u8;
                    args = args.with_buffer((*handle).clone().binding());
                }
            }
        }
        let mut words = params.to_vec();
        words.resize(spec.param_words(), 0);
        args.info = MetadataBindingInfo::custom(
            words.chunks_exact(2).map(|w| u64::from(w[0]) | (u64::from(w[1]) << 32)).collect(),
        );
        let x = groups.min(self.max_groups);
        let y = groups.div_ceil(x);
        self.profiled(spec, groups, || {
            self.client.launch(Box::new(WgslKernel::new(spec, alias)), CubeCount::Static(x, y, 1), args);
        });
    }

    fn fill_zero(&self, handle: &Handle, id: u64, words: usize) {
        self.launch(Spec::Fill, &[(handle, id)], &[u32_of(words)], groups(words, 256));
    }

    async fn read_words(&self, handle: &Handle, offset: usize, len: usize) -> Result<Bytes, InferError> {
        // Handles come with offsets of their own (their place in the allocation); ours add to them.
        let start = offset as u64 * 4;
        let end = handle.size_in_used() - start - len as u64 * 4;
        let view = handle.clone().offset_start(start).offset_end(end);
        let mut bytes = self
            .client
            .read_async(vec![view])
            .await
            .map_err(|e| InferError::Device(format!("reading a buffer back failed: {e:?}")))?;
        Ok(bytes.remove(0))
    }
}

fn u32_of(v: usize) -> u32 {
    u32::try_from(v).expect("size fits in u32")
}

fn groups(items: usize, per_group: usize) -> u32 {
    u32_of(items.div_ceil(per_group))
}

fn words_to_f32(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

impl Compute for Gpu {
    type Buf = GpuBuf;
    type Ids = GpuIds;
    type Weight = GpuWeight;
    type Steps = GpuSteps;

    fn describe(&self) -> String {
        format!("webgpu: {}", self.name)
    }

    fn max_binding_bytes(&self) -> u64 {
        self.max_binding
    }

    fn alloc(&self, len: usize) -> Result<GpuBuf, InferError> {
        let handle = self.empty(len * 4);
        let id = self.id();
        self.fill_zero(&handle, id, (handle.size_in_used() / 4) as usize);
        Ok(GpuBuf { handle, len, id })
    }

    fn alloc_ids(&self, len: usize) -> Result<GpuIds, InferError> {
        let handle = self.empty(len * 4);
        let id = self.id();
        self.fill_zero(&handle, id, (handle.size_in_used() / 4) as usize);
        Ok(GpuIds { handle, len, id })
    }

    fn upload_f32(&self, data: &[f32]) -> Result<GpuBuf, InferError> {
        let mut bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        bytes.resize((data.len() * 4).next_multiple_of(16).max(16), 0);
        Ok(GpuBuf { handle: self.create(&bytes), len: data.len(), id: self.id() })
    }

    fn upload_weight(
        &self,
        name: &str,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        bytes: &[u8],
    ) -> Result<GpuWeight, InferError> {
        let unsupported = || InferError::UnsupportedType { tensor: name.to_string(), ty };
        let fmt = Fmt::of(ty).ok_or_else(unsupported)?;
        if !cols.is_multiple_of(fmt.block_elems()) || rows == 0 || cols == 0 {
            return Err(InferError::Device(format!(
                "tensor {name}: {rows} x {cols} is not a whole number of {ty} blocks per row"
            )));
        }
        let expected = ty.byte_size((rows * cols) as u64);
        if expected != Some(bytes.len() as u64) {
            return Err(InferError::Device(format!(
                "tensor {name}: {} bytes for {rows} x {cols} {ty}, expected {expected:?}",
                bytes.len()
            )));
        }
        let ranges = layout::split_rows(fmt, rows, cols, self.max_binding).ok_or_else(|| {
            InferError::Device(format!(
                "tensor {name}: one row of {cols} {ty} values exceeds the binding limit of {} bytes",
                self.max_binding
            ))
        })?;
        let row_bytes = bytes.len() / rows;
        let mut parts = Vec::with_capacity(ranges.len());
        for (r0, n) in ranges {
            let dev = layout::relayout(fmt, &bytes[r0 * row_bytes..(r0 + n) * row_bytes]);
            parts.push(Part {
                handle: self.create(&dev.bytes),
                id: self.id(),
                row0: u32_of(r0),
                rows: u32_of(n),
                qoff: dev.qoff,
                bytes: dev.bytes.len() as u64,
            });
        }
        Ok(GpuWeight { parts, fmt, ty, rows, cols })
    }

    fn weight_bytes(&self, w: &GpuWeight) -> u64 {
        w.parts.iter().map(|p| p.bytes).sum()
    }

    fn write_ids(&self, ids: &GpuIds, data: &[u32]) -> Result<(), InferError> {
        if data.len() > ids.len {
            return Err(InferError::Device(format!("writing {} ids into a buffer of {}", data.len(), ids.len)));
        }
        if data.is_empty() {
            return Ok(());
        }
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        let start = 0;
        let end = ids.handle.size_in_used() - bytes.len() as u64;
        let view = ids.handle.clone().offset_start(start).offset_end(end);
        self.client.write(&view, Bytes::from_bytes_vec(bytes));
        Ok(())
    }

    fn embed(&self, table: &GpuWeight, ids: &GpuIds, n: usize, scale: f32, out: &GpuBuf) {
        let (upr, bpr, ragged) = table.geometry();
        for p in &table.parts {
            let params = [u32_of(n), p.rows, u32_of(table.cols), upr, bpr, p.qoff, p.row0, scale.to_bits()];
            self.launch(
                Spec::Embed { fmt: table.fmt, ragged },
                &[(&p.handle, p.id), (&ids.handle, ids.id), (&out.handle, out.id)],
                &params,
                u32_of(n),
            );
        }
    }

    fn rms_norm(&self, x: &GpuBuf, w: &GpuBuf, rows: usize, dim: usize, eps: f32, out: &GpuBuf) {
        self.launch(
            Spec::RmsNorm,
            &[(&x.handle, x.id), (&w.handle, w.id), (&out.handle, out.id)],
            &[u32_of(rows), u32_of(dim), eps.to_bits()],
            u32_of(rows),
        );
    }

    fn matmul(&self, x: &GpuBuf, w: &GpuWeight, n: usize, out: &GpuBuf) {
        if self.matmul_parts(x, w, n, out) {
            return;
        }
        let (upr, bpr, ragged) = w.geometry();
        for p in &w.parts {
            let params = [u32_of(n), p.rows, u32_of(w.cols), upr, bpr, p.qoff, p.row0, u32_of(w.rows)];
            let bufs = [(&p.handle, p.id), (&x.handle, x.id), (&out.handle, out.id)];
            if let Some((rb, xb)) = self.rows_blocking(n) {
                let spec = Spec::Rows { fmt: w.fmt, ragged, rb, xb };
                let inv = p.rows.div_ceil(rb) * u32_of(n).div_ceil(xb);
                self.launch(spec, &bufs, &params, inv.div_ceil(64));
            } else if let Some(rpw) = self.subgroup_matvec_rows(n) {
                let spec = Spec::SgMatvec { fmt: w.fmt, ragged, rpw };
                self.launch(spec, &bufs, &params, p.rows.div_ceil(rpw));
            } else if n == 1 {
                // At least ~4 units (32 weights) per lane, 4 to 32 lanes per row.
                let want = (upr / 4).clamp(4, 32);
                let tpr = 1 << want.ilog2();
                let spec = Spec::Matvec { fmt: w.fmt, ragged, tpr };
                self.launch(spec, &bufs, &params, p.rows.div_ceil(256 / tpr));
            } else {
                // F32 and F16 weights keep the f32 tiles in the f16 family (their values are
                // not all exact in f16, or need no decoding).
                let spec = Spec::Tiled { fmt: w.fmt, ragged, half: self.half_tiles() && !w.fmt.is_plain() };
                let tiles = p.rows.div_ceil(64) * u32_of(n.div_ceil(32));
                self.launch(spec, &bufs, &params, tiles);
            }
        }
    }

    fn add_bias(&self, x: &GpuBuf, b: &GpuBuf, n: usize, dim: usize) {
        self.launch(
            Spec::AddBias,
            &[(&x.handle, x.id), (&b.handle, b.id)],
            &[u32_of(n * dim), u32_of(dim)],
            groups(n * dim, 256),
        );
    }

    fn rope(&self, x: &GpuBuf, n: usize, rope: Rope<'_>) {
        let pairs = n * rope.n_heads as usize * (rope.n_rot / 2) as usize;
        self.launch(Spec::Rope, &[(&x.handle, x.id)], &fused::rope_params(n, rope), groups(pairs, 256));
    }

    fn set_kv_cache(&self, kv: KvCache, width: usize) -> Result<(), InferError> {
        // Halves are packed two a word by whole rows: an odd row would share a word with the
        // next position's.
        if kv == KvCache::F16 && !width.is_multiple_of(2) {
            let why = format!("kvCache 'f16' on the GPU needs an even cache row (this model's is {width}); use 'f32'");
            return Err(InferError::invalid("kvCache", why));
        }
        self.half_kv.store(kv == KvCache::F16, Ordering::Relaxed);
        Ok(())
    }

    fn store_rows(&self, src: &GpuBuf, n: usize, width: usize, pos0: usize, cache: &GpuBuf) {
        if !self.half_kv() {
            return self.copy_rows(src, 0, cache, pos0, n, width);
        }
        let words = n * width / 2;
        self.launch(
            Spec::PackHalf,
            &[(&src.handle, src.id), (&cache.handle, cache.id)],
            &[u32_of(words), 0, u32_of(pos0 * width / 2)],
            groups(words, 256),
        );
    }

    fn attention(&self, q: &GpuBuf, k: &GpuBuf, v: &GpuBuf, n: usize, a: Attention, out: &GpuBuf) {
        self.launch_attention(q, k, v, n, a, out);
    }

    fn glu(&self, gate: &GpuBuf, up: &GpuBuf, len: usize, act: Activation, out: &GpuBuf) {
        let act = fused::act_code(act);
        self.launch(
            Spec::Glu,
            &[(&gate.handle, gate.id), (&up.handle, up.id), (&out.handle, out.id)],
            &[u32_of(len), act],
            groups(len, 256),
        );
    }

    fn add(&self, dst: &GpuBuf, src: &GpuBuf, len: usize) {
        self.launch(Spec::Add, &[(&dst.handle, dst.id), (&src.handle, src.id)], &[u32_of(len)], groups(len, 256));
    }

    fn copy_rows(&self, src: &GpuBuf, src_row: usize, dst: &GpuBuf, dst_row: usize, rows: usize, width: usize) {
        self.launch(
            Spec::Copy,
            &[(&src.handle, src.id), (&dst.handle, dst.id)],
            &[u32_of(rows * width), u32_of(src_row * width), u32_of(dst_row * width)],
            groups(rows * width, 256),
        );
    }

    fn softcap(&self, x: &GpuBuf, len: usize, cap: f32) {
        self.launch(Spec::Softcap, &[(&x.handle, x.id)], &[u32_of(len), cap.to_bits()], groups(len, 256));
    }

    fn argmax(&self, x: &GpuBuf, row: usize, width: usize, ids: &GpuIds, slot: usize) {
        self.launch(
            Spec::Argmax,
            &[(&x.handle, x.id), (&ids.handle, ids.id)],
            &[u32_of(row * width), u32_of(width), u32_of(slot)],
            1,
        );
    }

    fn penalize(&self, x: &GpuBuf, row: usize, width: usize, ids: &GpuIds, n_ids: usize, penalty: f32) {
        self.launch(
            Spec::Penalize,
            &[(&x.handle, x.id), (&ids.handle, ids.id)],
            &[u32_of(row * width), u32_of(width), u32_of(n_ids), penalty.to_bits()],
            groups(n_ids, 256),
        );
    }

    fn top_k(&self, x: &GpuBuf, row: usize, width: usize, k: usize, vals: &GpuBuf, ids: &GpuIds) {
        assert!(
            (1..=MAX_TOP_K.min(width)).contains(&k) && vals.len >= k && ids.len >= k,
            "top_k: k = {k} outside 1..={} or outputs shorter than k",
            MAX_TOP_K.min(width)
        );
        // Chunks of 2^log2 elements, at least 64, at most TOP_K_CHUNKS of them.
        let log2 = width.div_ceil(TOP_K_CHUNKS).next_power_of_two().ilog2().max(TOP_K_MIN_LOG2_CHUNK);
        let chunks = width.div_ceil(1 << log2);
        let params = [u32_of(row * width), u32_of(width), u32_of(k), log2, u32_of(chunks)];
        let m = &self.topk_chunks;
        self.launch(Spec::TopK(TopKPass::Chunks), &[(&x.handle, x.id), (&m.handle, m.id)], &params, groups(chunks, 64));
        self.launch(
            Spec::TopK(TopKPass::Select),
            &[(&x.handle, x.id), (&m.handle, m.id), (&vals.handle, vals.id), (&ids.handle, ids.id)],
            &params,
            1,
        );
    }

    fn add_rms_norm(
        &self,
        x: &GpuBuf,
        h: &GpuBuf,
        pre: Option<&GpuBuf>,
        w: &GpuBuf,
        rows: usize,
        dim: usize,
        eps: f32,
        out: &GpuBuf,
    ) {
        self.fused_add_rms_norm(x, h, pre, w, rows, dim, eps, out);
    }

    fn embed_norm(
        &self,
        table: &GpuWeight,
        ids: &GpuIds,
        n: usize,
        scale: f32,
        x: &GpuBuf,
        w: &GpuBuf,
        dim: usize,
        eps: f32,
        xn: &GpuBuf,
    ) {
        self.fused_embed_norm(table, ids, n, scale, x, w, dim, eps, xn);
    }

    fn head_norms(
        &self,
        q: (&GpuBuf, &GpuBuf, usize),
        k: (&GpuBuf, &GpuBuf, usize),
        dim: usize,
        eps: f32,
        q_out: &GpuBuf,
        k_out: &GpuBuf,
    ) {
        self.fused_head_norms(q, k, dim, eps, q_out, k_out);
    }

    fn qkv(
        &self,
        x: &GpuBuf,
        wq: &GpuWeight,
        wk: &GpuWeight,
        wv: &GpuWeight,
        n: usize,
        q: &GpuBuf,
        k: &GpuBuf,
        v: &GpuBuf,
    ) {
        self.fused_qkv(x, wq, wk, wv, n, q, k, v);
    }

    fn gated_ffn(
        &self,
        x: &GpuBuf,
        w_gate: &GpuWeight,
        w_up: &GpuWeight,
        n: usize,
        ff: usize,
        act: Activation,
        scratch: (&GpuBuf, &GpuBuf),
        out: &GpuBuf,
    ) {
        self.fused_ffn(x, w_gate, w_up, n, ff, act, scratch, out);
    }

    fn rope_store(
        &self,
        q: &GpuBuf,
        k: &GpuBuf,
        v: &GpuBuf,
        bias: Option<(&GpuBuf, &GpuBuf, &GpuBuf)>,
        norms: Option<HeadNorms<'_, GpuBuf>>,
        n: usize,
        rope_q: Rope<'_>,
        rope_k: Rope<'_>,
        kv_width: usize,
        k_cache: &GpuBuf,
        v_cache: &GpuBuf,
    ) {
        self.fused_rope_store(q, k, v, bias, norms, n, rope_q, rope_k, kv_width, k_cache, v_cache);
    }

    async fn read(&self, x: &GpuBuf, offset: usize, len: usize) -> Result<Vec<f32>, InferError> {
        if offset + len > x.len {
            return Err(InferError::Device(format!("reading {len} values at {offset} from a buffer of {}", x.len)));
        }
        if len == 0 {
            return Ok(Vec::new());
        }
        Ok(words_to_f32(&self.read_words(&x.handle, offset, len).await?))
    }

    async fn read_ids(&self, ids: &GpuIds, len: usize) -> Result<Vec<u32>, InferError> {
        if len > ids.len {
            return Err(InferError::Device(format!("reading {len} ids from a buffer of {}", ids.len)));
        }
        if len == 0 {
            return Ok(Vec::new());
        }
        let bytes = self.read_words(&ids.handle, 0, len).await?;
        Ok(bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    fn decode_step(&self, steps: &mut GpuSteps, key: u32, pos: usize, step: &mut dyn FnMut()) {
        self.replay_or_record(steps, key, pos, step);
    }

    fn allocated_bytes(&self) -> u64 {
        self.allocated.load(Ordering::Relaxed)
    }

    fn resident_bytes(&self) -> u64 {
        self.client.memory_report(MemoryScope::Device).usage().bytes_reserved
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod capture_probe {
    use std::time::Instant;

    use futures::executor::block_on;

    use super::*;
    use crate::backend::init_wgpu_blocking;
    use crate::infer::Compute;

    /// Host cost of recording `n` small dispatches the usual way against replaying them from a
    /// cubecl graph, whose bind groups and parameters were resolved once at capture, as the
    /// engine's recorded decode steps are (`cargo test --release --lib capture_probe --
    /// --ignored --nocapture`).
    #[test]
    #[ignore]
    fn launch_against_replay() {
        let device = WgpuDevice::default();
        init_wgpu_blocking(&device, Some(TASKS_PER_SUBMISSION)).unwrap();
        let gpu = Gpu::new(device).unwrap();
        let len = 1024;
        let a = gpu.upload_f32(&vec![1.0; len]).unwrap();
        let b = gpu.upload_f32(&vec![0.5; len]).unwrap();
        let n = 243;
        let record = |gpu: &Gpu| {
            for _ in 0..n {
                gpu.add(&a, &b, len);
            }
        };
        // Warm-up, and what the usual path costs.
        record(&gpu);
        block_on(gpu.read(&a, 0, 1)).unwrap();
        // (caller's time to enqueue, time to the read-back value): the best of 5.
        let mut usual = (f64::MAX, f64::MAX);
        for _ in 0..5 {
            let t = Instant::now();
            record(&gpu);
            let host = t.elapsed().as_secs_f64();
            block_on(gpu.read(&a, 0, 1)).unwrap();
            usual = (usual.0.min(host), usual.1.min(t.elapsed().as_secs_f64()));
        }
        let before = block_on(gpu.read(&a, 0, 1)).unwrap()[0];
        gpu.client.graph_prepare().unwrap();
        record(&gpu);
        block_on(gpu.read(&a, 0, 1)).ok();
        gpu.client.start_capture().unwrap();
        record(&gpu);
        let graph = gpu.client.stop_capture().unwrap();
        let after_capture = block_on(gpu.read(&a, 0, 1)).unwrap()[0];
        let mut replay = (f64::MAX, f64::MAX);
        for _ in 0..5 {
            let t = Instant::now();
            // SAFETY: `a` and `b` live to the end of the test, on this one thread and stream.
            unsafe { graph.replay() }.unwrap();
            let host = t.elapsed().as_secs_f64();
            block_on(gpu.read(&a, 0, 1)).unwrap();
            replay = (replay.0.min(host), replay.1.min(t.elapsed().as_secs_f64()));
        }
        let after = block_on(gpu.read(&a, 0, 1)).unwrap()[0];
        // The capture records without running; each replay runs all `n` adds again.
        let step = 0.5 * n as f32;
        assert_eq!(after_capture, before + step);
        assert_eq!(after, after_capture + 5.0 * step);
        let us = |t: f64| t * 1e6;
        println!(
            "{n} dispatches, enqueue / to the result: usual {:.0} / {:.0} us, replayed {:.0} / {:.0} us",
            us(usual.0),
            us(usual.1),
            us(replay.0),
            us(replay.1)
        );
    }
}
