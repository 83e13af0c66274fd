//! [`Compute`]: the operations a transformer forward pass needs, implemented once per backend.
//!
//! The model code in [`super::transformer`] is written against this trait only, so the same
//! forward pass runs on the CPU ([`super::cpu::Cpu`], plain Rust over the GGUF blocks, the native
//! test backend and the browser fallback) and on WebGPU / native wgpu ([`super::gpu::Gpu`], our
//! WGSL kernels launched through burn's cubecl runtime on burn's device).
//!
//! # Conventions
//! - Activations are `f32`, row-major. "`n` rows of `dim`" means element `[i, j]` is at
//!   `i * dim + j`. Buffers are allocated once (for the largest batch) and reused; an op touches
//!   only the prefix it is told about.
//! - Weights stay in their GGUF block format ([`Compute::upload_weight`]); a weight has `rows`
//!   output features (ggml `ne[1]`) of `cols` input features (ggml `ne[0]`, contiguous).
//! - Ops enqueue work and return at once; only [`Compute::read`] and [`Compute::read_ids`] wait
//!   (asynchronously: the browser cannot block). Ops must be correct when many forward steps are
//!   enqueued with no readback between them.
//! - Ops never allocate device memory after the buffers are created (nothing per token).

use crate::gguf::GgmlType;

use super::InferError;

/// The largest `k` [`Compute::top_k`] accepts.
pub const MAX_TOP_K: usize = 64;

/// The key that orders `f32`s as [`Compute::top_k`] does: larger key, larger value; `-0.0` and
/// `+0.0` share a key (`==` as numbers, as in argmax); every NaN maps to 0, below `-inf`
/// (`0x007f_ffff`). Both backends rank by it.
pub fn order_key(v: f32) -> u32 {
    let b = v.to_bits();
    if b == 0x8000_0000 {
        0x8000_0000
    } else if b & 0x7fff_ffff > 0x7f80_0000 {
        0
    } else if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// The value [`Compute::top_k`] reports for a key of [`order_key`]: the value itself (`+0.0`
/// for `-0.0`), `-inf` for a NaN (key 0).
pub fn order_value(key: u32) -> f32 {
    if key == 0 {
        f32::NEG_INFINITY
    } else if key & 0x8000_0000 != 0 {
        f32::from_bits(key & 0x7fff_ffff)
    } else {
        f32::from_bits(!key)
    }
}

/// The gated activation of the feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x * sigmoid(x)` (llama, qwen2).
    Silu,
    /// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (gemma3).
    GeluTanh,
}

/// How RoPE pairs the dimensions of a head (see [`crate::model::RopeStyle`]).
pub use crate::model::RopeStyle;

/// Rotary embedding parameters for one call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rope<'a> {
    /// Heads in the buffer; each row holds `n_heads * head_dim` values.
    pub n_heads: u32,
    pub head_dim: u32,
    /// Dimensions rotated per head (the first `n_rot`); the rest pass through.
    pub n_rot: u32,
    /// Position of row 0; row `i` is at `pos0 + i`.
    pub pos0: u32,
    /// `theta_k = pos * freq_scale * base^(-2k / n_rot)` for `k < n_rot / 2`.
    pub base: f32,
    pub freq_scale: f32,
    /// `Normal` rotates `(x[2k], x[2k+1])`; `Neox` rotates `(x[k], x[k + n_rot/2])`.
    pub style: RopeStyle,
    /// Llama 3.1+ frequency factors (`rope_freqs.weight`), one per rotated pair: `theta_k` is
    /// divided by `factors[k]` (llama.cpp's `freq_factors` in `ggml_rope_ext`).
    pub factors: Option<&'a [f32]>,
}

/// gemma3's per-head norms, which [`Compute::rope_store`] applies before RoPE: each query head
/// `rms_norm(head) * wq` (into `q_out`), each key head `rms_norm(head) * wk` (`k_out`: scratch
/// the backend may leave untouched), with `eps`.
#[derive(Debug)]
pub struct HeadNorms<'a, B> {
    pub wq: &'a B,
    pub wk: &'a B,
    pub eps: f32,
    pub q_out: &'a B,
    pub k_out: &'a B,
}

impl<'a, B> HeadNorms<'a, B> {
    /// Applies the norms on their own (`n` rows of `q` and `k`, heads as `rope_q` and `rope_k`
    /// say), for backends that do not fuse them with RoPE; returns the normed `(q, k)`.
    pub fn apply<C: Compute<Buf = B> + ?Sized>(
        self,
        c: &C,
        (q, k): (&B, &B),
        n: usize,
        rope_q: Rope<'_>,
        rope_k: Rope<'_>,
    ) -> (&'a B, &'a B) {
        let rows = |r: Rope<'_>| n * r.n_heads as usize;
        let dim = rope_q.head_dim as usize;
        c.head_norms((q, self.wq, rows(rope_q)), (k, self.wk, rows(rope_k)), dim, self.eps, self.q_out, self.k_out);
        (self.q_out, self.k_out)
    }
}

impl<B> Clone for HeadNorms<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B> Copy for HeadNorms<'_, B> {}

/// Causal attention parameters for one call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attention {
    pub n_head: u32,
    pub n_head_kv: u32,
    pub head_dim: u32,
    /// Position of query row 0 (row `i` is at `p = pos0 + i`); keys `0..=p` are in the cache.
    pub pos0: u32,
    /// Multiplies `q . k` before the softmax.
    pub scale: f32,
    /// Sliding window: `0` for none, else a query at `p` sees keys at `t` with `p - t < window`.
    pub window: u32,
}

/// How the KV cache stores keys and values (`LoadOptions.kvCache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvCache {
    /// 4 bytes per element: the keys and values exactly as computed.
    #[default]
    F32,
    /// IEEE half precision, 2 bytes per element (llama.cpp's default): half the cache's memory,
    /// each key and value rounded to 11 significant bits. The CPU engine only.
    F16,
}

impl KvCache {
    /// The type named `name` (`f32`, `f16`).
    ///
    /// # Errors
    /// [`InferError::InvalidInput`] for the field `kvCache`, naming the types there are.
    pub fn parse(name: &str) -> Result<KvCache, InferError> {
        match name {
            "f32" => Ok(KvCache::F32),
            "f16" => Ok(KvCache::F16),
            other => Err(InferError::invalid("kvCache", format!("kvCache '{other}': expected 'f32' or 'f16'"))),
        }
    }

    /// The 4-byte words a cache of `elements` keys (or values) occupies: f16 pairs share a word.
    pub fn words(self, elements: usize) -> usize {
        match self {
            KvCache::F32 => elements,
            KvCache::F16 => elements.div_ceil(2),
        }
    }
}

/// A backend that can run the forward pass.
///
/// `Buf` is an `f32` device buffer, `Ids` a `u32` device buffer, `Weight` a quantized matrix.
/// Handles are cheap to clone and share the same storage.
#[allow(async_fn_in_trait)] // the futures are awaited where they are made; no Send needed on wasm
pub trait Compute {
    type Buf: Clone;
    type Ids: Clone;
    type Weight;
    /// What the backend keeps of a model's recorded decode steps ([`Compute::decode_step`]);
    /// the model owns it, so it lives exactly as long as the buffers the steps use.
    type Steps: Default;

    /// A short description for status messages and reports (`"cpu"`, `"webgpu: SwiftShader"`).
    fn describe(&self) -> String;

    /// The largest single buffer binding the backend accepts, in bytes (`u64::MAX` on the CPU).
    /// Weights larger than this are split by rows inside the backend, never rejected for size.
    fn max_binding_bytes(&self) -> u64;

    /// A zero-filled `f32` buffer of `len` elements.
    fn alloc(&self, len: usize) -> Result<Self::Buf, InferError>;
    /// A zero-filled `u32` buffer of `len` elements.
    fn alloc_ids(&self, len: usize) -> Result<Self::Ids, InferError>;
    /// An `f32` buffer holding `data` (norm weights, biases).
    fn upload_f32(&self, data: &[f32]) -> Result<Self::Buf, InferError>;
    /// A `rows x cols` matrix in GGUF format `ty`; `bytes` is exactly the tensor's GGUF data.
    /// [`InferError::UnsupportedType`] for a format the backend cannot multiply.
    fn upload_weight(
        &self,
        name: &str,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        bytes: &[u8],
    ) -> Result<Self::Weight, InferError>;
    /// Bytes the weight occupies on the device (after any re-layout or padding).
    fn weight_bytes(&self, w: &Self::Weight) -> u64;
    /// Overwrite the first `data.len()` ids (token ids for the next step).
    fn write_ids(&self, ids: &Self::Ids, data: &[u32]) -> Result<(), InferError>;

    /// `out[i, :] = scale * table[ids[i], :]` (dequantized) for `i < n`; `out` has `table.cols`
    /// columns. Ids `>= table.rows` are the caller's bug and are checked before the call.
    fn embed(&self, table: &Self::Weight, ids: &Self::Ids, n: usize, scale: f32, out: &Self::Buf);
    /// `out[i, j] = x[i, j] / sqrt(mean_j(x[i, :]^2) + eps) * w[j]` for `rows` rows of `dim`.
    fn rms_norm(&self, x: &Self::Buf, w: &Self::Buf, rows: usize, dim: usize, eps: f32, out: &Self::Buf);
    /// `out[i, r] = sum_c x[i, c] * W[r, c]` for `i < n`: `x` is `n x w.cols`, `out` `n x w.rows`.
    fn matmul(&self, x: &Self::Buf, w: &Self::Weight, n: usize, out: &Self::Buf);
    /// `x[i, j] += b[j]` for `n` rows of `dim`.
    fn add_bias(&self, x: &Self::Buf, b: &Self::Buf, n: usize, dim: usize);
    /// Rotate `n` rows in place (see [`Rope`]).
    fn rope(&self, x: &Self::Buf, n: usize, rope: Rope<'_>);
    /// Makes the caches [`Compute::store_rows`] and [`Compute::attention`] see hold `kv`
    /// elements (buffers of [`KvCache::words`]) in rows of `width`; called once, before the
    /// first step.
    ///
    /// # Errors
    /// [`InferError::InvalidInput`] (`kvCache`) for a type the backend cannot store at this
    /// width.
    fn set_kv_cache(&self, kv: KvCache, width: usize) -> Result<(), InferError>;
    /// `cache[(pos0 + i) * width + j] = src[i * width + j]` for `i < n`.
    fn store_rows(&self, src: &Self::Buf, n: usize, width: usize, pos0: usize, cache: &Self::Buf);
    /// Causal attention of `n` query rows against the cached keys and values:
    /// `q` is `n x (n_head * head_dim)`, the caches `ctx x (n_head_kv * head_dim)`, `out` like `q`.
    /// Query head `h` reads KV head `h / (n_head / n_head_kv)`.
    fn attention(&self, q: &Self::Buf, k: &Self::Buf, v: &Self::Buf, n: usize, a: Attention, out: &Self::Buf);
    /// `out[e] = act(gate[e]) * up[e]` for `e < len`.
    fn glu(&self, gate: &Self::Buf, up: &Self::Buf, len: usize, act: Activation, out: &Self::Buf);
    /// `dst[e] += src[e]` for `e < len`.
    fn add(&self, dst: &Self::Buf, src: &Self::Buf, len: usize);
    /// `dst[dst_row * width ..][..rows * width] = src[src_row * width ..][..rows * width]`.
    fn copy_rows(&self, src: &Self::Buf, src_row: usize, dst: &Self::Buf, dst_row: usize, rows: usize, width: usize);
    /// `x[e] = cap * tanh(x[e] / cap)` for `e < len`.
    fn softcap(&self, x: &Self::Buf, len: usize, cap: f32);
    /// `ids[slot] = argmax_j x[row * width + j]` over `j < width` (lowest index on ties).
    fn argmax(&self, x: &Self::Buf, row: usize, width: usize, ids: &Self::Ids, slot: usize);
    /// llama.cpp's repetition penalty, in place on one row: for each of the first `n_ids` ids,
    /// `v = x[row * width + id]` becomes `v / penalty` if `v > 0`, else `v * penalty` (a NaN
    /// stays NaN). The ids must be distinct (the caller dedupes; a repeated id would be penalized
    /// twice, or racily on the GPU); ids `>= width` are ignored.
    fn penalize(&self, x: &Self::Buf, row: usize, width: usize, ids: &Self::Ids, n_ids: usize, penalty: f32);
    /// The `k` largest values of row `row` (`x[row * width ..][..width]`), in descending order,
    /// into `vals[0..k]` with their column indices in `ids[0..k]`.
    ///
    /// The order is total: by value, ties (`-0.0 == +0.0` included) by lower index, and a NaN
    /// ranks below every number (`-inf` included): see [`order_key`]. So a NaN is never selected
    /// while the row holds `k` numbers; if it is (a row with fewer than `k` numbers), its value
    /// is reported as `-inf`. `vals` never holds a NaN (nor `-0.0`: [`order_value`]). Requires `1 <= k <= min(width, MAX_TOP_K)` (the caller checks;
    /// the backends may panic otherwise).
    fn top_k(&self, x: &Self::Buf, row: usize, width: usize, k: usize, vals: &Self::Buf, ids: &Self::Ids);

    /// `x += h`, then `out = rms_norm(x) * w` (as [`Compute::rms_norm`]) for `rows` rows of `dim`;
    /// with `pre`, `h` is first replaced by `rms_norm(h) * pre` (a post-norm, gemma3), written
    /// into `out` on the way. `out` is neither `x` nor `h`. Backends may fuse the three.
    #[allow(clippy::too_many_arguments)]
    fn add_rms_norm(
        &self,
        x: &Self::Buf,
        h: &Self::Buf,
        pre: Option<&Self::Buf>,
        w: &Self::Buf,
        rows: usize,
        dim: usize,
        eps: f32,
        out: &Self::Buf,
    ) {
        match pre {
            Some(p) => {
                self.rms_norm(h, p, rows, dim, eps, out);
                self.add(x, out, rows * dim);
            }
            None => self.add(x, h, rows * dim),
        }
        self.rms_norm(x, w, rows, dim, eps, out);
    }

    /// [`Compute::embed`] into `x` (`n` rows of `dim`, the table's columns), then
    /// `xn = rms_norm(x) * w`.
    /// Backends may fuse the two.
    #[allow(clippy::too_many_arguments)]
    fn embed_norm(
        &self,
        table: &Self::Weight,
        ids: &Self::Ids,
        n: usize,
        scale: f32,
        x: &Self::Buf,
        w: &Self::Buf,
        dim: usize,
        eps: f32,
        xn: &Self::Buf,
    ) {
        self.embed(table, ids, n, scale, x);
        self.rms_norm(x, w, n, dim, eps, xn);
    }

    /// The per-head norms of gemma3: `q_out = rms_norm(q) * wq` over `q_rows` rows of `dim`,
    /// and `k_out = rms_norm(k) * wk` over `k_rows`. Backends may do both in one pass.
    fn head_norms(
        &self,
        (q, wq, q_rows): (&Self::Buf, &Self::Buf, usize),
        (k, wk, k_rows): (&Self::Buf, &Self::Buf, usize),
        dim: usize,
        eps: f32,
        q_out: &Self::Buf,
        k_out: &Self::Buf,
    ) {
        self.rms_norm(q, wq, q_rows, dim, eps, q_out);
        self.rms_norm(k, wk, k_rows, dim, eps, k_out);
    }

    /// The query, key and value projections of `n` rows of `x`: [`Compute::matmul`] by each
    /// weight. Backends may compute the three in one pass.
    #[allow(clippy::too_many_arguments)]
    fn qkv(
        &self,
        x: &Self::Buf,
        wq: &Self::Weight,
        wk: &Self::Weight,
        wv: &Self::Weight,
        n: usize,
        q: &Self::Buf,
        k: &Self::Buf,
        v: &Self::Buf,
    ) {
        self.matmul(x, wq, n, q);
        self.matmul(x, wk, n, k);
        self.matmul(x, wv, n, v);
    }

    /// The gated feed-forward input of `n` rows of `x`: `out = act(x Wg) * (x Wu)`, with `gate`
    /// and `up` as scratch (`n x ff` each; a fusing backend may leave them untouched).
    #[allow(clippy::too_many_arguments)]
    fn gated_ffn(
        &self,
        x: &Self::Buf,
        w_gate: &Self::Weight,
        w_up: &Self::Weight,
        n: usize,
        ff: usize,
        act: Activation,
        scratch: (&Self::Buf, &Self::Buf),
        out: &Self::Buf,
    ) {
        self.matmul(x, w_gate, n, scratch.0);
        self.matmul(x, w_up, n, scratch.1);
        self.glu(scratch.0, scratch.1, n * ff, act, out);
    }

    /// One step's attention inputs after the projections: the biases `(bq, bk, bv)` added when
    /// given, or the per-head `norms` applied (never both), RoPE on the `n` rows of `q`
    /// (`rope_q`; in place, or into `norms.q_out`) and of `k` (`rope_k`), and the rotated keys
    /// and the values stored at row `rope_k.pos0` of the caches (rows of `kv_width`, as
    /// [`Compute::store_rows`]). `k`, `v` and `norms.k_out` may be left rotated or not.
    /// Backends may do it all in one pass.
    #[allow(clippy::too_many_arguments)]
    fn rope_store(
        &self,
        q: &Self::Buf,
        k: &Self::Buf,
        v: &Self::Buf,
        bias: Option<(&Self::Buf, &Self::Buf, &Self::Buf)>,
        norms: Option<HeadNorms<'_, Self::Buf>>,
        n: usize,
        rope_q: Rope<'_>,
        rope_k: Rope<'_>,
        kv_width: usize,
        k_cache: &Self::Buf,
        v_cache: &Self::Buf,
    ) {
        debug_assert!(bias.is_none() || norms.is_none(), "rope_store: biases and norms");
        let (q, k) = match norms {
            Some(hn) => hn.apply(self, (q, k), n, rope_q, rope_k),
            None => (q, k),
        };
        if let Some((bq, bk, bv)) = bias {
            self.add_bias(q, bq, n, (rope_q.n_heads * rope_q.head_dim) as usize);
            self.add_bias(k, bk, n, kv_width);
            self.add_bias(v, bv, n, kv_width);
        }
        self.rope(q, n, rope_q);
        self.rope(k, n, rope_k);
        self.store_rows(k, n, kv_width, rope_k.pos0 as usize, k_cache);
        self.store_rows(v, n, kv_width, rope_k.pos0 as usize, v_cache);
    }

    /// Wait for the queued work and read `len` values from element `offset`.
    async fn read(&self, x: &Self::Buf, offset: usize, len: usize) -> Result<Vec<f32>, InferError>;
    /// Wait for the queued work and read the first `len` ids.
    async fn read_ids(&self, ids: &Self::Ids, len: usize) -> Result<Vec<u32>, InferError>;

    /// Runs `step`, which only enqueues the work of a one-token decode step at position `pos`.
    /// A backend that can record work and replay it (the GPU) records the step the first time
    /// it sees `key` (the step's inputs: which buffer holds its token id) and replays it after,
    /// with the position written where the recorded kernels read it. The default runs `step`.
    fn decode_step(&self, steps: &mut Self::Steps, key: u32, pos: usize, step: &mut dyn FnMut()) {
        let _ = (steps, key, pos);
        step();
    }

    /// Device bytes this backend holds now (buffers it allocated, measured where the allocator
    /// reports it).
    fn resident_bytes(&self) -> u64;

    /// Bytes of the buffers this backend allocated (rounded as allocated), whether or not other
    /// backends share the device: what one model holds, since a model's buffers live as long
    /// as it does.
    fn allocated_bytes(&self) -> u64;
}
