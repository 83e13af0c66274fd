//! The decoder-only transformer of llama, qwen2 and gemma3, written once against [`Compute`].
//!
//! Weights arrive tensor by tensor ([`WeightsBuilder::add`]) so the browser can stream each
//! tensor's byte range with progress and drop it once uploaded; [`Model::new`] then allocates the
//! KV cache for the chosen context and every activation buffer once. A forward step only
//! enqueues ops on those buffers.
//!
//! The block follows llama.cpp (`llm_build_llama`, `llm_build_qwen2`, `llm_build_gemma3` in
//! `src/llama-model.cpp`), and `tools/reference_forward.py` spells it out in numpy:
//!
//! ```text
//! x = embed(ids) * (gemma3: sqrt(n_embd))
//! per layer:  h = attn(norm(x))            q,k,v = W x (+ bias: qwen2); gemma3: per-head q/k norm
//!             gemma3: h = norm(h)          RoPE (NORM: llama; NEOX: qwen2, gemma3)
//!             x = x + h                    softmax(q.k * scale) v over the causal (sliding) window
//!             h = ffn(norm(x))             down(act(gate x) * up x), act = SiLU | GELU-tanh
//!             gemma3: h = norm(h)
//!             x = x + h
//! logits = W_out norm(x)   (W_out = token_embd when tied; gemma3: optional softcap)
//! ```

use std::collections::HashMap;

use crate::gguf::{GgufHeader, TensorInfo, dequantize_to_vec};
use crate::model::{Architecture, ModelConfig, ModelError};

use super::InferError;
use super::compute::{Activation, Attention, Compute, HeadNorms, KvCache, MAX_TOP_K, Rope};

/// A weight matrix with what the forward pass needs to know about it.
pub struct Mat<C: Compute> {
    w: C::Weight,
}

/// One transformer block's weights.
pub struct Layer<C: Compute> {
    attn_norm: C::Buf,
    wq: Mat<C>,
    wk: Mat<C>,
    wv: Mat<C>,
    wo: Mat<C>,
    bq: Option<C::Buf>,
    bk: Option<C::Buf>,
    bv: Option<C::Buf>,
    q_norm: Option<C::Buf>,
    k_norm: Option<C::Buf>,
    post_attn_norm: Option<C::Buf>,
    ffn_norm: C::Buf,
    gate: Mat<C>,
    up: Mat<C>,
    down: Mat<C>,
    post_ffn_norm: Option<C::Buf>,
}

/// All weights of a model, on the device.
pub struct Weights<C: Compute> {
    embd: Mat<C>,
    /// `None` when the output projection is tied to the embedding.
    output: Option<Mat<C>>,
    output_norm: C::Buf,
    layers: Vec<Layer<C>>,
    /// Device bytes of all weights.
    bytes: u64,
    /// `rope_freqs.weight`: divisors of each rotated pair's frequency, all layers.
    rope_factors: Option<Vec<f32>>,
}

enum Slot<C: Compute> {
    Vector(C::Buf),
    Matrix(Mat<C>),
}

/// Collects uploaded tensors by name until all the model needs are there.
pub struct WeightsBuilder<C: Compute> {
    cfg: ModelConfig,
    needed: Vec<TensorInfo>,
    slots: HashMap<String, Slot<C>>,
    bytes: u64,
    /// `rope_freqs.weight`, kept on the host.
    rope_factors: Option<Vec<f32>>,
}

/// Llama 3.1+ RoPE frequency factors.
const ROPE_FREQS: &str = "rope_freqs.weight";
/// Rotated pairs the GPU RoPE's per-pair table holds (`gpu::kernel::ROPE_TABLE`): enough for
/// head_dim 256.
const ROPE_FACTOR_PAIRS_MAX: u32 = 128;

impl<C: Compute> WeightsBuilder<C> {
    /// Checks the header's tensors against the configuration and lists what will be read, in
    /// file order (so a streamed download reads the file front to back).
    pub fn new(cfg: &ModelConfig, header: &GgufHeader) -> Result<WeightsBuilder<C>, InferError> {
        cfg.validate_tensors(header)?;
        if header.tensor("rope_freqs.weight").is_some() && cfg.n_rot / 2 > ROPE_FACTOR_PAIRS_MAX {
            return Err(InferError::Unsupported(format!(
                "rope_freqs.weight with {} rotated pairs (at most {ROPE_FACTOR_PAIRS_MAX})",
                cfg.n_rot / 2
            )));
        }
        let wanted: std::collections::HashSet<String> =
            cfg.expected_tensors().into_iter().map(|(name, _, _)| name).collect();
        let mut needed: Vec<TensorInfo> =
            header.tensors().iter().filter(|t| wanted.contains(&t.name)).cloned().collect();
        needed.sort_by_key(|t| t.offset);
        Ok(WeightsBuilder { cfg: cfg.clone(), needed, slots: HashMap::new(), bytes: 0, rope_factors: None })
    }

    /// The tensors to read, in file order.
    pub fn needed(&self) -> &[TensorInfo] {
        &self.needed
    }

    /// Total GGUF bytes of the tensors to read.
    pub fn needed_bytes(&self) -> u64 {
        self.needed.iter().map(|t| t.size_bytes).sum()
    }

    /// Uploads one tensor (`bytes` is exactly its GGUF data). Vectors (norms, biases) are
    /// decoded to f32; matrices stay in their block format.
    pub fn add(&mut self, compute: &C, info: &TensorInfo, bytes: &[u8]) -> Result<(), InferError> {
        let dims: Vec<u64> = {
            let n = info.dims.iter().rposition(|&d| d != 1).map_or(1, |i| i + 1);
            info.dims[..n].to_vec()
        };
        if info.name == ROPE_FREQS {
            // A handful of f32 divisors, applied on the host side of the RoPE launch.
            let n = dims[0] as usize;
            let factors = dequantize_to_vec(info.ggml_type, bytes, n)?;
            if let Some(bad) = factors.iter().find(|f| !(f.is_finite() && **f > 0.0)) {
                return Err(InferError::Model(ModelError::Inconsistent {
                    what: format!("{ROPE_FREQS} holds {bad}; frequency factors must be positive"),
                }));
            }
            self.rope_factors = Some(factors);
            return Ok(());
        }
        let slot = if dims.len() == 1 {
            let n = dims[0] as usize;
            let data = dequantize_to_vec(info.ggml_type, bytes, n)?;
            self.bytes += n as u64 * 4;
            Slot::Vector(compute.upload_f32(&data)?)
        } else {
            let (cols, rows) = (dims[0] as usize, dims[1..].iter().product::<u64>() as usize);
            let w = compute.upload_weight(&info.name, info.ggml_type, rows, cols, bytes)?;
            self.bytes += compute.weight_bytes(&w);
            Slot::Matrix(Mat { w })
        };
        self.slots.insert(info.name.clone(), slot);
        Ok(())
    }

    /// The assembled weights; every tensor from [`Self::needed`] must have been added.
    pub fn finish(mut self) -> Result<Weights<C>, InferError> {
        let cfg = self.cfg.clone();
        let mut matrix = |name: &str| match self.slots.remove(name) {
            Some(Slot::Matrix(w)) => Ok(w),
            _ => Err(InferError::Model(ModelError::MissingTensor { name: name.to_owned() })),
        };
        let embd = matrix("token_embd.weight")?;
        let output = if cfg.tied_output { None } else { Some(matrix("output.weight")?) };
        let mut layer_mats = Vec::with_capacity(cfg.n_layer as usize);
        for il in 0..cfg.n_layer {
            let p = |s: &str| format!("blk.{il}.{s}");
            layer_mats.push([
                matrix(&p("attn_q.weight"))?,
                matrix(&p("attn_k.weight"))?,
                matrix(&p("attn_v.weight"))?,
                matrix(&p("attn_output.weight"))?,
                matrix(&p("ffn_gate.weight"))?,
                matrix(&p("ffn_up.weight"))?,
                matrix(&p("ffn_down.weight"))?,
            ]);
        }
        let mut vector = |name: &str| match self.slots.remove(name) {
            Some(Slot::Vector(b)) => Some(b),
            _ => None,
        };
        let need = |v: Option<C::Buf>, name: String| v.ok_or(InferError::Model(ModelError::MissingTensor { name }));
        let output_norm = need(vector("output_norm.weight"), "output_norm.weight".into())?;
        let mut layers = Vec::with_capacity(cfg.n_layer as usize);
        for (il, [wq, wk, wv, wo, gate, up, down]) in layer_mats.into_iter().enumerate() {
            let p = |s: &str| format!("blk.{il}.{s}");
            layers.push(Layer {
                attn_norm: need(vector(&p("attn_norm.weight")), p("attn_norm.weight"))?,
                wq,
                wk,
                wv,
                wo,
                bq: vector(&p("attn_q.bias")),
                bk: vector(&p("attn_k.bias")),
                bv: vector(&p("attn_v.bias")),
                q_norm: vector(&p("attn_q_norm.weight")),
                k_norm: vector(&p("attn_k_norm.weight")),
                post_attn_norm: vector(&p("post_attention_norm.weight")),
                ffn_norm: need(vector(&p("ffn_norm.weight")), p("ffn_norm.weight"))?,
                gate,
                up,
                down,
                post_ffn_norm: vector(&p("post_ffw_norm.weight")),
            });
        }
        Ok(Weights { embd, output, output_norm, layers, bytes: self.bytes, rope_factors: self.rope_factors })
    }
}

/// Sizes fixed when the model is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Positions the KV cache holds.
    pub context: usize,
    /// Most tokens one forward step takes (longer prompts are cut into steps).
    pub batch: usize,
    /// Rows of logits one step can produce (1 for generation; the batch for full-logit tests).
    pub logit_rows: usize,
    /// How the KV cache stores its elements.
    pub kv: KvCache,
}

impl Shape {
    /// Generation defaults: a 64-token prefill step and logits for the last token only.
    pub fn for_context(context: usize) -> Shape {
        Shape { context, batch: 64, logit_rows: 1, kv: KvCache::F32 }
    }

    /// Device bytes of every buffer [`Model::new`] allocates for this shape (activations,
    /// logits, ids, sampling and the KV cache), as the GPU backend allocates them: the figure
    /// the memory planner uses. Read from [`BufferPlan`], the list `Model::new` allocates from.
    pub fn buffer_bytes(&self, cfg: &ModelConfig) -> u64 {
        BufferPlan::new(cfg, *self).device_bytes()
    }
}

/// Device bytes of a buffer of `elements` 4-byte values as the GPU backend allocates it: rounded
/// up to 16 bytes, at least 16 (`Gpu::empty`).
pub fn allocated_bytes(elements: usize) -> u64 {
    (elements as u64 * 4).next_multiple_of(16).max(16)
}

/// The buffers a [`Model`] allocates when it is created, in elements (f32 or u32): the one
/// list `Model::new` allocates from and the memory plan sums ([`Shape::buffer_bytes`]), so the
/// two cannot drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferPlan {
    /// The shape after `Model::new`'s clamps (a batch of at least 1, `1..=batch` logit rows).
    pub shape: Shape,
    pub x: usize,
    pub xn: usize,
    pub h: usize,
    pub q: usize,
    pub k: usize,
    pub v: usize,
    pub qn: usize,
    pub kn: usize,
    pub att: usize,
    pub gate: usize,
    pub up: usize,
    pub act: usize,
    pub logits: usize,
    pub ids: usize,
    pub next: usize,
    pub penalty_ids: usize,
    pub cand_vals: usize,
    pub cand_ids: usize,
    /// One layer's K cache (and, again, its V cache), in 4-byte words ([`KvCache::words`]).
    pub cache_per_layer: usize,
    pub layers: usize,
}

impl BufferPlan {
    pub fn new(cfg: &ModelConfig, shape: Shape) -> BufferPlan {
        let b = shape.batch.max(1);
        let shape = Shape { batch: b, logit_rows: shape.logit_rows.clamp(1, b), ..shape };
        let (embd, q, kv, ff) = (cfg.n_embd as usize, cfg.q_dim() as usize, cfg.kv_dim() as usize, cfg.n_ff as usize);
        BufferPlan {
            shape,
            x: b * embd,
            xn: b * embd,
            h: b * q.max(embd),
            q: b * q,
            k: b * kv,
            v: b * kv,
            qn: b * q,
            kn: b * kv,
            att: b * q,
            gate: b * ff,
            up: b * ff,
            act: b * ff,
            logits: shape.logit_rows * cfg.n_vocab as usize,
            ids: b,
            next: 1,
            penalty_ids: shape.context.min(cfg.n_vocab as usize).max(1),
            cand_vals: MAX_TOP_K,
            cand_ids: MAX_TOP_K,
            cache_per_layer: shape.kv.words(shape.context * kv),
            layers: cfg.n_layer as usize,
        }
    }

    /// The activation, logit, id and sampling buffers (everything but the KV cache), in elements.
    pub fn working_buffers(&self) -> [usize; 18] {
        // Destructured without `..`: a buffer added to the plan must be counted here.
        let BufferPlan {
            shape: _,
            x,
            xn,
            h,
            q,
            k,
            v,
            qn,
            kn,
            att,
            gate,
            up,
            act,
            logits,
            ids,
            next,
            penalty_ids,
            cand_vals,
            cand_ids,
            cache_per_layer: _,
            layers: _,
        } = *self;
        [x, xn, h, q, k, v, qn, kn, att, gate, up, act, logits, ids, next, penalty_ids, cand_vals, cand_ids]
    }

    /// Device bytes of the KV cache: a K and a V buffer per layer.
    pub fn kv_cache_device_bytes(&self) -> u64 {
        2 * self.layers as u64 * allocated_bytes(self.cache_per_layer)
    }

    /// Device bytes of every buffer, as allocated.
    pub fn device_bytes(&self) -> u64 {
        self.working_buffers().iter().map(|&n| allocated_bytes(n)).sum::<u64>() + self.kv_cache_device_bytes()
    }
}

struct Buffers<C: Compute> {
    x: C::Buf,
    xn: C::Buf,
    h: C::Buf,
    q: C::Buf,
    k: C::Buf,
    v: C::Buf,
    qn: C::Buf,
    kn: C::Buf,
    att: C::Buf,
    gate: C::Buf,
    up: C::Buf,
    act: C::Buf,
    logits: C::Buf,
    ids: C::Ids,
    next: C::Ids,
    /// Distinct token ids the repetition penalty applies to (`min(context, n_vocab)`: a window
    /// of the history holds no more).
    penalty_ids: C::Ids,
    /// The candidates of [`Model::next_candidates`].
    cand_vals: C::Buf,
    cand_ids: C::Ids,
}

/// A loaded model with its KV cache: feed tokens, get logits or the greedy next token.
pub struct Model<C: Compute> {
    compute: C,
    cfg: ModelConfig,
    weights: Weights<C>,
    shape: Shape,
    k_cache: Vec<C::Buf>,
    v_cache: Vec<C::Buf>,
    buf: Buffers<C>,
    /// The ids whose keys and values the cache holds, in position order (its length is the
    /// position of the next token; allocated once for the whole context).
    tokens: Vec<u32>,
    /// The distinct penalized ids of a sampling step, kept so that no step allocates.
    seen: Vec<u32>,
    /// The id `buf.next` holds: the last greedy pick, which the next step may embed from the
    /// device instead of writing it back.
    next_on_device: Option<u32>,
    /// The decode steps the backend recorded for replay ([`Compute::decode_step`]).
    steps: C::Steps,
}

/// Which logits a step computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logits {
    /// An inner prefill step: no logits.
    None,
    Last,
    All,
}

impl<C: Compute> Model<C> {
    /// Allocates the KV cache and the activation buffers for `shape`.
    pub fn new(compute: C, cfg: ModelConfig, weights: Weights<C>, shape: Shape) -> Result<Model<C>, InferError> {
        let plan = BufferPlan::new(&cfg, shape);
        let shape = plan.shape;
        let c = &compute;
        c.set_kv_cache(shape.kv, cfg.kv_dim() as usize)?;
        let buf = Buffers {
            x: c.alloc(plan.x)?,
            xn: c.alloc(plan.xn)?,
            h: c.alloc(plan.h)?,
            q: c.alloc(plan.q)?,
            k: c.alloc(plan.k)?,
            v: c.alloc(plan.v)?,
            qn: c.alloc(plan.qn)?,
            kn: c.alloc(plan.kn)?,
            att: c.alloc(plan.att)?,
            gate: c.alloc(plan.gate)?,
            up: c.alloc(plan.up)?,
            act: c.alloc(plan.act)?,
            logits: c.alloc(plan.logits)?,
            ids: c.alloc_ids(plan.ids)?,
            next: c.alloc_ids(plan.next)?,
            penalty_ids: c.alloc_ids(plan.penalty_ids)?,
            cand_vals: c.alloc(plan.cand_vals)?,
            cand_ids: c.alloc_ids(plan.cand_ids)?,
        };
        let mut k_cache = Vec::with_capacity(plan.layers);
        let mut v_cache = Vec::with_capacity(plan.layers);
        for _ in 0..plan.layers {
            k_cache.push(c.alloc(plan.cache_per_layer)?);
            v_cache.push(c.alloc(plan.cache_per_layer)?);
        }
        let seen = Vec::with_capacity(shape.context.min(cfg.n_vocab as usize));
        let tokens = Vec::with_capacity(shape.context);
        let steps = C::Steps::default();
        Ok(Model { compute, cfg, weights, shape, k_cache, v_cache, buf, tokens, seen, next_on_device: None, steps })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    pub fn compute(&self) -> &C {
        &self.compute
    }

    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Tokens currently in the KV cache.
    pub fn position(&self) -> usize {
        self.tokens.len()
    }

    /// The ids whose keys and values the cache holds, in position order.
    pub fn cached(&self) -> &[u32] {
        &self.tokens
    }

    /// Device bytes of the weights.
    pub fn weight_bytes(&self) -> u64 {
        self.weights.bytes
    }

    /// Forget the cached tokens (the buffers stay allocated).
    pub fn reset(&mut self) {
        self.tokens.clear();
    }

    /// Rewind the cache to `pos` tokens (to reuse a shared prompt prefix).
    pub fn truncate(&mut self, pos: usize) {
        self.tokens.truncate(pos);
    }

    /// Keeps the longest prefix of the cache that `ids` begins with, short of `ids`' last token
    /// (a step needs one token to give logits), and frees the positions after it: the next
    /// step continues at the returned count, and only `ids[kept..]` needs feeding.
    pub fn reuse_prefix(&mut self, ids: &[u32]) -> usize {
        let common = self.tokens.iter().zip(ids).take_while(|(a, b)| a == b).count();
        let kept = common.min(ids.len().saturating_sub(1));
        self.tokens.truncate(kept);
        kept
    }

    fn check(&self, ids: &[u32]) -> Result<(), InferError> {
        if ids.is_empty() {
            return Err(InferError::invalid("ids", "a forward step needs at least one token"));
        }
        if let Some(&id) = ids.iter().find(|&&id| id >= self.cfg.n_vocab) {
            return Err(InferError::BadToken { id, n_vocab: self.cfg.n_vocab });
        }
        let needed = self.tokens.len() + ids.len();
        if needed > self.shape.context {
            return Err(InferError::ContextOverflow { needed, context: self.shape.context });
        }
        Ok(())
    }

    /// Appends `ids` to the cache and returns the greedy next token (one id read back).
    pub async fn next_greedy(&mut self, ids: &[u32]) -> Result<u32, InferError> {
        self.check(ids)?;
        self.feed(ids, Logits::Last);
        let c = &self.compute;
        c.argmax(&self.buf.logits, 0, self.cfg.n_vocab as usize, &self.buf.next, 0);
        self.next_on_device = None;
        let id = c.read_ids(&self.buf.next, 1).await?[0];
        self.next_on_device = Some(id);
        Ok(id)
    }

    /// Appends `ids` to the cache and returns the logits after the last one.
    pub async fn next_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>, InferError> {
        self.check(ids)?;
        self.feed(ids, Logits::Last);
        self.compute.read(&self.buf.logits, 0, self.cfg.n_vocab as usize).await
    }

    /// Appends `ids` to the cache and returns the `k` most likely next tokens as (id, logit),
    /// best first (ties by lower id), after llama.cpp's repetition penalty on the device when
    /// `penalty` is `Some((seen, p))` with `p != 1`: every distinct id of `seen` inside the
    /// vocabulary gets `logit / p` if positive, `logit * p` if not (`seen` may repeat ids; pass the
    /// window of history the penalty covers). Only `2k` words are read back, not the row.
    ///
    /// The candidates follow [`Compute::top_k`]: a NaN logit ranks below every number and is
    /// reported as `-inf`. `k` must be in `1..=min(MAX_TOP_K, n_vocab)`.
    ///
    /// # Errors
    /// [`InferError::InvalidInput`] for `k` out of range or more distinct penalized ids than
    /// the context holds; the errors of a forward step.
    pub async fn next_candidates(
        &mut self,
        ids: &[u32],
        penalty: Option<(&[u32], f32)>,
        k: usize,
    ) -> Result<Vec<(u32, f32)>, InferError> {
        let nv = self.cfg.n_vocab as usize;
        if !(1..=MAX_TOP_K.min(nv)).contains(&k) {
            return Err(InferError::invalid(
                "k",
                format!("candidates: k must be in 1..={} (got {k})", MAX_TOP_K.min(nv)),
            ));
        }
        self.check(ids)?;
        // The sampler skips the same penalties (see `Sampler::sample`).
        let penalty = penalty.filter(|&(_, p)| p != 1.0 && p > 0.0);
        let mut seen = std::mem::take(&mut self.seen);
        seen.clear();
        if let Some((history, _)) = penalty {
            seen.extend(history.iter().copied().filter(|&id| (id as usize) < nv));
            seen.sort_unstable();
            seen.dedup();
            if seen.len() > self.shape.context.min(nv) {
                let n = seen.len();
                self.seen = seen;
                return Err(InferError::invalid(
                    "penalty",
                    format!("candidates: {n} distinct penalized ids, more than the context of {}", self.shape.context),
                ));
            }
        }
        self.feed(ids, Logits::Last);
        let (c, b) = (&self.compute, &self.buf);
        if let (Some((_, p)), false) = (penalty, seen.is_empty()) {
            c.write_ids(&b.penalty_ids, &seen)?;
            c.penalize(&b.logits, 0, nv, &b.penalty_ids, seen.len(), p);
        }
        c.top_k(&b.logits, 0, nv, k, &b.cand_vals, &b.cand_ids);
        // Both readbacks in flight at once: one wait on the queue, not two.
        let (vals, ids) = futures::join!(c.read(&b.cand_vals, 0, k), c.read_ids(&b.cand_ids, k));
        self.seen = seen;
        Ok(ids?.into_iter().zip(vals?).collect())
    }

    /// Appends `ids` and returns the logits at every one of their positions
    /// (`ids.len() x n_vocab`): what the golden tests compare.
    pub async fn all_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>, InferError> {
        self.check(ids)?;
        let nv = self.cfg.n_vocab as usize;
        let mut out = Vec::with_capacity(ids.len() * nv);
        for chunk in ids.chunks(self.shape.logit_rows) {
            self.step(chunk, Logits::All);
            out.extend(self.compute.read(&self.buf.logits, 0, chunk.len() * nv).await?);
        }
        Ok(out)
    }

    /// Enqueues the steps for `ids` (already checked), logits for the last token only.
    fn feed(&mut self, ids: &[u32], logits: Logits) {
        let chunks: Vec<&[u32]> = ids.chunks(self.shape.batch).collect();
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            self.step(chunk, if i == last { logits } else { Logits::None });
        }
    }

    /// One forward step over `ids` (at most `batch`; `All` at most `logit_rows`).
    fn step(&mut self, ids: &[u32], logits: Logits) {
        let n = ids.len();
        let pos0 = self.tokens.len();
        // A decode step whose token is the greedy pick of the previous one embeds it from the
        // device (where argmax left it): no queue write in the step.
        let from_device = n == 1 && self.next_on_device == Some(ids[0]);
        if !from_device {
            // Writing ids can fail only if the device is lost; the next readback reports that.
            let _ = self.compute.write_ids(&self.buf.ids, ids);
        }
        let Model { compute, cfg, weights, buf, k_cache, v_cache, steps, .. } = self;
        let ids_buf = if from_device { &buf.next } else { &buf.ids };
        let caches = (&k_cache[..], &v_cache[..]);
        let mut launch = || launch_step(&*compute, cfg, weights, buf, caches, ids_buf, n, pos0, logits);
        if n == 1 && logits == Logits::Last {
            compute.decode_step(steps, u32::from(from_device), pos0, &mut launch);
        } else {
            launch();
        }
        self.tokens.extend_from_slice(ids);
    }
}

/// Enqueues the work of a forward step over `n` tokens at `pos0` whose ids are in `ids_buf`.
#[allow(clippy::too_many_arguments)]
fn launch_step<C: Compute>(
    c: &C,
    cfg: &ModelConfig,
    w: &Weights<C>,
    b: &Buffers<C>,
    (k_cache, v_cache): (&[C::Buf], &[C::Buf]),
    ids_buf: &C::Ids,
    n: usize,
    pos0: usize,
    logits: Logits,
) {
    let embd = cfg.n_embd as usize;
    let (qd, kvd, ff) = (cfg.q_dim() as usize, cfg.kv_dim() as usize, cfg.n_ff as usize);
    let eps = cfg.rms_eps;
    let act = match cfg.arch {
        Architecture::Gemma3 => Activation::GeluTanh,
        Architecture::Llama | Architecture::Qwen2 => Activation::Silu,
    };
    let mm = |x: &C::Buf, m: &Mat<C>, n: usize, out: &C::Buf| c.matmul(x, &m.w, n, out);
    // Every residual add is fused with the norm after it (the next layer's attention norm,
    // or the output norm after the last layer), and the embedding with the first norm.
    let first_norm = w.layers.first().map_or(&w.output_norm, |l| &l.attn_norm);
    let scale = cfg.embedding_scale.unwrap_or(1.0);
    c.embed_norm(&w.embd.w, ids_buf, n, scale, &b.x, first_norm, embd, eps, &b.xn);
    for (il, l) in w.layers.iter().enumerate() {
        // Attention.
        c.qkv(&b.xn, &l.wq.w, &l.wk.w, &l.wv.w, n, &b.q, &b.k, &b.v);
        let mut bias = match (&l.bq, &l.bk, &l.bv) {
            (Some(bq), Some(bk), Some(bv)) => Some((bq, bk, bv)),
            _ => None,
        };
        let separate_bias = bias.is_none() || l.q_norm.is_some();
        if separate_bias {
            bias = None;
            if let Some(bias) = &l.bq {
                c.add_bias(&b.q, bias, n, qd);
            }
            if let Some(bias) = &l.bk {
                c.add_bias(&b.k, bias, n, kvd);
            }
            if let Some(bias) = &l.bv {
                c.add_bias(&b.v, bias, n, kvd);
            }
        }
        // With per-head norms the rotated queries land in `qn`.
        let (norms, q) = match (&l.q_norm, &l.k_norm) {
            (Some(wq), Some(wk)) => (Some(HeadNorms { wq, wk, eps, q_out: &b.qn, k_out: &b.kn }), &b.qn),
            _ => (None, &b.q),
        };
        let (base, freq_scale) = cfg.rope_for_layer(il as u32);
        let rope = |heads: u32| Rope {
            n_heads: heads,
            head_dim: cfg.head_dim,
            n_rot: cfg.n_rot,
            pos0: pos0 as u32,
            base,
            freq_scale,
            style: cfg.rope,
            factors: w.rope_factors.as_deref(),
        };
        let (kc, vc) = (&k_cache[il], &v_cache[il]);
        c.rope_store(&b.q, &b.k, &b.v, bias, norms, n, rope(cfg.n_head), rope(cfg.n_head_kv), kvd, kc, vc);
        let window = if cfg.is_local_layer(il as u32) { cfg.sliding_window.unwrap_or(0) } else { 0 };
        let a = Attention {
            n_head: cfg.n_head,
            n_head_kv: cfg.n_head_kv,
            head_dim: cfg.head_dim,
            pos0: pos0 as u32,
            scale: cfg.attention_scale,
            window,
        };
        c.attention(q, kc, vc, n, a, &b.att);
        mm(&b.att, &l.wo, n, &b.h);
        c.add_rms_norm(&b.x, &b.h, l.post_attn_norm.as_ref(), &l.ffn_norm, n, embd, eps, &b.xn);
        // Feed-forward.
        c.gated_ffn(&b.xn, &l.gate.w, &l.up.w, n, ff, act, (&b.gate, &b.up), &b.act);
        mm(&b.act, &l.down, n, &b.h);
        let next_norm = w.layers.get(il + 1).map_or(&w.output_norm, |next| &next.attn_norm);
        c.add_rms_norm(&b.x, &b.h, l.post_ffn_norm.as_ref(), next_norm, n, embd, eps, &b.xn);
    }
    let out_w = w.output.as_ref().unwrap_or(&w.embd);
    let nv = cfg.n_vocab as usize;
    // `xn` holds the output norm of every row.
    match logits {
        Logits::None => {}
        Logits::Last => {
            let last = if n == 1 {
                &b.xn
            } else {
                c.copy_rows(&b.xn, n - 1, &b.h, 0, 1, embd);
                &b.h
            };
            mm(last, out_w, 1, &b.logits);
            if let Some(cap) = cfg.final_logit_softcapping {
                c.softcap(&b.logits, nv, cap);
            }
        }
        Logits::All => {
            mm(&b.xn, out_w, n, &b.logits);
            if let Some(cap) = cfg.final_logit_softcapping {
                c.softcap(&b.logits, n * nv, cap);
            }
        }
    }
}
