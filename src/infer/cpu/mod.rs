//! [`Cpu`]: the [`Compute`] ops in plain Rust, reading weights in their GGUF blocks.
//!
//! This is the native test backend and the browser's fallback when no WebGPU adapter exists.
//! Weights are kept as their GGUF bytes and decoded one row at a time inside the product (the
//! decoders are [`crate::gguf::dequantize`], bit-exact with gguf-py), so memory stays at the
//! file's size. Natively the matrix products are split over the machine's cores (or
//! [`CpuOptions::threads`]); on wasm32 they run on the calling thread.
//!
//! # Two arithmetic modes ([`CpuOptions::exact`])
//! - **Quantized** (the default, what the product runs): as llama.cpp's CPU backend does, each
//!   matrix product quantizes its activation rows once into 8-bit blocks of 32 and multiplies
//!   them with the weight blocks in integers ([`quant`]). F32/F16/BF16 and the formats
//!   without a quantized kernel (Q2_K, Q3_K) use the f32 path below.
//! - **Exact**: every weight row is decoded to f32 and multiplied with the f32 activations. This is
//!   the reference the golden-logit tests hold to 1e-3; the quantized mode stays within the
//!   same greedy-token tolerance against llama.cpp (tests/infer_real_models.rs checks both).
//!
//! All scratch space (quantized activations, product rows, attention scores) lives in the
//! [`Cpu`] and grows to the largest batch once, so a decode step allocates nothing.

use std::cell::RefCell;
use std::ops::Deref;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::gguf::{GgmlType, dequantize};

use super::InferError;

mod kv;
#[cfg(not(target_arch = "wasm32"))]
mod pool;
mod profile;
pub mod quant;
pub mod team;
pub mod threads;

use super::compute::{Activation, Attention, Compute, KvCache, MAX_TOP_K, Rope, RopeStyle, order_key, order_value};
use profile::Profile;
use quant::{Kernel, QuantActs};

/// An `f32` buffer on the CPU.
pub type CpuBuf = Rc<Counted<RefCell<Vec<f32>>>>;
/// A `u32` buffer on the CPU.
pub type CpuIds = Rc<Counted<RefCell<Vec<u32>>>>;

/// Bytes counted in a [`Cpu`]'s total while held; given back when dropped, so the total is
/// what is alive now (a load that fails returns it to where it was).
#[derive(Debug)]
pub struct Lease {
    bytes: u64,
    total: Arc<AtomicU64>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.total.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// A value whose bytes count in its [`Cpu`]'s total while it lives.
#[derive(Debug)]
pub struct Counted<T> {
    value: T,
    _lease: Lease,
}

impl<T> Deref for Counted<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// A matrix kept in its GGUF encoding.
#[derive(Debug)]
pub struct CpuWeight {
    ty: GgmlType,
    rows: usize,
    cols: usize,
    row_bytes: usize,
    bytes: Vec<u8>,
    /// The quantized kernel for this format, if there is one.
    kernel: Option<Kernel>,
    /// The output projection (the LM head, tied to the embedding or not): profiled apart.
    head: bool,
    /// Bytes of the whole matrix in its encoding (`bytes` holds fewer when it is sharded).
    size: usize,
    /// Where its rows after `sharded.own` live when it is split across a shard team
    /// ([`team`]); `bytes` then holds the first `own` rows (all of them for the embedding
    /// table, whose rows the embedding looks up).
    sharded: Option<team::Sharded>,
    _lease: Lease,
}

impl CpuWeight {
    fn row(&self, r: usize, out: &mut [f32]) {
        let b = &self.bytes[r * self.row_bytes..(r + 1) * self.row_bytes];
        // The size was checked at upload, so the decoder cannot fail here.
        let _ = dequantize(self.ty, b, self.cols, out);
    }
}

/// How the CPU backend computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuOptions {
    /// Decode every weight row to f32 and multiply in f32 (the reference), instead of
    /// quantizing the activations to 8 bits per product (the default; see the module docs).
    pub exact: bool,
    /// Threads a large matrix product is split over natively; `0` picks the machine's cores
    /// (at most 8). The `HEARTH_CPU_THREADS` environment variable sets it for [`Cpu::new`].
    /// Ignored on wasm32, which runs on the calling thread.
    pub threads: usize,
}

/// Scratch space reused by every op (grown to the largest batch, never shrunk).
#[derive(Debug, Default)]
struct Scratch {
    acts: QuantActs,
    /// Products as `[row][token]` before they are written out as `[token][row]`.
    tmp: Vec<f32>,
    /// One decoded weight row (the f32 path).
    row: Vec<f32>,
    /// Attention's scratch (a converted cache row, scores, softmax sums).
    kv: kv::Scratch,
}

/// The CPU backend.
#[derive(Debug, Default)]
pub struct Cpu {
    /// Bytes of the weights and buffers alive now (what a memory report shows for this backend).
    resident: Arc<AtomicU64>,
    options: CpuOptions,
    /// How the caches given to `store_rows` and `attention` hold their elements.
    kv: std::cell::Cell<KvCache>,
    scratch: RefCell<Scratch>,
    profile: Profile,
    /// The worker threads of the large products, started by the first one.
    #[cfg(not(target_arch = "wasm32"))]
    pool: std::cell::OnceCell<pool::Pool>,
    /// The shard workers the large products are split across (the browser's threads, see
    /// [`team`]), when there are any.
    team: Option<team::Team>,
}

impl Cpu {
    /// The quantized mode, with `HEARTH_CPU_THREADS` threads natively (cores when unset).
    pub fn new() -> Cpu {
        #[cfg(not(target_arch = "wasm32"))]
        let threads = std::env::var("HEARTH_CPU_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        #[cfg(target_arch = "wasm32")]
        let threads = 0;
        Cpu::with_options(CpuOptions { exact: false, threads })
    }

    /// The exact f32 reference mode (see the module docs).
    pub fn exact() -> Cpu {
        Cpu::with_options(CpuOptions { exact: true, ..Cpu::new().options })
    }

    pub fn with_options(options: CpuOptions) -> Cpu {
        Cpu { options, profile: Profile::from_env(), ..Cpu::default() }
    }

    pub fn options(&self) -> CpuOptions {
        self.options
    }

    /// The quantized mode with its large products split across `peers` ([`team`]): weights
    /// uploaded afterwards are sharded, and [`Self::serve`] must run after the last one.
    pub fn with_peers(peers: Box<dyn team::Peers>) -> Cpu {
        let team = team::Team { peers, layout: Default::default(), next_id: Default::default() };
        Cpu { team: Some(team), ..Cpu::with_options(CpuOptions { exact: false, threads: 1 }) }
    }

    /// Lets the shard team serve products of up to `tokens` tokens per job (after the last
    /// weight is uploaded; nothing to do without a team).
    ///
    /// # Errors
    /// What the team says when a shard cannot take the shared buffer.
    pub async fn serve(&self, tokens: usize) -> Result<(), String> {
        let Some(team) = &self.team else { return Ok(()) };
        let layout = team::Layout { tokens: tokens.max(1), ..team.layout.get() };
        team.layout.set(layout);
        team.peers.serve(layout).await
    }

    /// Fails when a shard of the team stopped answering, so that no token is read from
    /// products that lack its rows (every step ends with a read).
    fn team_answered(&self) -> Result<(), InferError> {
        match &self.team {
            Some(team) if team.peers.broken() => Err(InferError::Device(
                "a shard worker of the CPU engine stopped answering for 60 s; unload the model and load it again \
                 (or load it with threads: 1)"
                    .into(),
            )),
            _ => Ok(()),
        }
    }

    /// Threads the large products run on: the shard team's parts, the native pool's threads,
    /// or 1.
    pub fn threads(&self) -> usize {
        if let Some(team) = &self.team {
            return team.peers.parts();
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            threads_for(usize::MAX, self.options.threads)
        }
        #[cfg(target_arch = "wasm32")]
        1
    }

    /// Counts `bytes` until the returned lease drops.
    fn lease(&self, bytes: usize) -> Lease {
        self.resident.fetch_add(bytes as u64, Ordering::Relaxed);
        Lease { bytes: bytes as u64, total: Arc::clone(&self.resident) }
    }

    fn counted<T>(&self, value: Vec<T>) -> Rc<Counted<RefCell<Vec<T>>>> {
        let _lease = self.lease(value.len() * size_of::<T>());
        Rc::new(Counted { value: RefCell::new(value), _lease })
    }
}

/// The types [`Cpu::upload_weight`] accepts: everything the decoders handle.
fn supported(ty: GgmlType) -> bool {
    ty.is_supported_for_decode()
}

/// Threads for a product of `work` multiply-adds: one below ~256k, `threads` above (0: the
/// machine's cores, at most 8).
#[cfg(not(target_arch = "wasm32"))]
fn threads_for(work: usize, threads: usize) -> usize {
    if work < (1 << 18) {
        return 1;
    }
    match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()).min(8),
        t => t,
    }
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler vectorise without reassociating.
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for i in chunks * 8..a.len() {
        s += a[i] * b[i];
    }
    s
}

/// How one product's rows are computed.
#[derive(Clone, Copy)]
enum Rows<'a> {
    /// f32 activations against weight rows decoded to f32.
    F32(&'a [f32]),
    /// Quantized activations against the weight blocks.
    Quant(Kernel, &'a QuantActs),
}

/// `x[i, :] . W[r, :]` for the rows `r0..r1` and tokens `i < n`, written into `out`
/// (`(r1 - r0) x n`, row-major by output row then token): each weight row is read once for all
/// the tokens (a prompt's tokens share every pass over the weights). `row` is scratch of
/// `w.cols` for the f32 path.
fn matmul_rows(w: &CpuWeight, rows: Rows<'_>, n: usize, r0: usize, r1: usize, out: &mut [f32], row: &mut [f32]) {
    match rows {
        Rows::F32(x) => {
            for r in r0..r1 {
                w.row(r, row);
                for i in 0..n {
                    out[(r - r0) * n + i] = dot(&x[i * w.cols..(i + 1) * w.cols], row);
                }
            }
        }
        Rows::Quant(k, acts) => {
            for (r, o) in (r0..r1).zip(out.chunks_exact_mut(n)) {
                o.fill(0.0);
                (k.dot)(&w.bytes[r * w.row_bytes..(r + 1) * w.row_bytes], acts, o);
            }
        }
    }
}

/// Products laid out `[row][token]` (`rows x n`, as [`matmul_rows`] writes them) into `out`
/// as `[token][row]`.
fn by_token(products: &[f32], rows: usize, n: usize, out: &mut [f32]) {
    if n == 1 {
        out[..rows].copy_from_slice(&products[..rows]);
        return;
    }
    for r in 0..rows {
        for i in 0..n {
            out[i * rows + r] = products[r * n + i];
        }
    }
}

fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + 0.044_715 * x * x)).tanh())
}

/// Lets the browser run between tokens: without it a CPU generation is one long task (no
/// paint, no streamed tokens reaching an async iterator, no abort) until the last token.
#[cfg(target_arch = "wasm32")]
async fn yield_to_browser() {
    use wasm_bindgen::{JsCast, JsValue};
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        match js_sys::Reflect::get(&global, &JsValue::from_str("setTimeout")).map(|f| f.dyn_into::<js_sys::Function>())
        {
            Ok(Ok(set_timeout)) => {
                let _ = set_timeout.call2(&global, &resolve, &JsValue::from(0));
            }
            _ => {
                let _ = resolve.call0(&JsValue::NULL);
            }
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

impl Compute for Cpu {
    type Buf = CpuBuf;
    type Ids = CpuIds;
    type Weight = CpuWeight;
    type Steps = ();

    fn describe(&self) -> String {
        "cpu".to_owned()
    }

    fn max_binding_bytes(&self) -> u64 {
        u64::MAX
    }

    fn alloc(&self, len: usize) -> Result<CpuBuf, InferError> {
        Ok(self.counted(vec![0.0; len]))
    }

    fn alloc_ids(&self, len: usize) -> Result<CpuIds, InferError> {
        Ok(self.counted(vec![0; len]))
    }

    fn upload_f32(&self, data: &[f32]) -> Result<CpuBuf, InferError> {
        Ok(self.counted(data.to_vec()))
    }

    fn upload_weight(
        &self,
        name: &str,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        bytes: &[u8],
    ) -> Result<CpuWeight, InferError> {
        if !supported(ty) || !cols.is_multiple_of(ty.block_size()) {
            return Err(InferError::UnsupportedType { tensor: name.to_owned(), ty });
        }
        let row_bytes = cols / ty.block_size() * ty.type_size();
        if bytes.len() != row_bytes * rows {
            return Err(InferError::BadWeight {
                tensor: name.to_owned(),
                detail: format!(
                    "{} bytes given for {rows} x {cols} {} ({} expected)",
                    bytes.len(),
                    ty.name(),
                    row_bytes * rows
                ),
            });
        }
        let kernel = quant::kernel(ty);
        let (kept, sharded) = match &self.team {
            Some(team) if team::is_sharded(rows, cols, team.peers.parts(), kernel.is_some()) => {
                let parts = team.peers.parts();
                let id = team.next_id.get();
                team.next_id.set(id + 1);
                for k in 1..parts {
                    let r = team::part_rows(rows, parts, k);
                    team.peers.add_weight(k, id, ty, r.len(), cols, &bytes[r.start * row_bytes..r.end * row_bytes]);
                }
                let mut layout = team.layout.get();
                layout.include(rows, cols, parts);
                team.layout.set(layout);
                let own = team::part_rows(rows, parts, 0).end;
                // The embedding looks rows up by token id, so the page keeps the whole table.
                let kept = if name == "token_embd.weight" { rows } else { own };
                (kept, Some(team::Sharded { id, own }))
            }
            _ => (rows, None),
        };
        // The shards' rows are this model's memory too: counted here while it lives.
        let shard_bytes = sharded.map_or(0, |s| (rows - s.own) * row_bytes);
        Ok(CpuWeight {
            ty,
            rows,
            cols,
            row_bytes,
            bytes: bytes[..kept * row_bytes].to_vec(),
            kernel,
            head: name == "output.weight" || name == "token_embd.weight",
            size: bytes.len(),
            sharded,
            _lease: self.lease(kept * row_bytes + shard_bytes),
        })
    }

    fn weight_bytes(&self, w: &CpuWeight) -> u64 {
        w.size as u64
    }

    fn write_ids(&self, ids: &CpuIds, data: &[u32]) -> Result<(), InferError> {
        ids.borrow_mut()[..data.len()].copy_from_slice(data);
        Ok(())
    }

    fn embed(&self, table: &CpuWeight, ids: &CpuIds, n: usize, scale: f32, out: &CpuBuf) {
        let _p = self.profile.scope("embed", "", 0);
        let ids = ids.borrow();
        let mut out = out.borrow_mut();
        for (i, &id) in ids[..n].iter().enumerate() {
            let row = &mut out[i * table.cols..(i + 1) * table.cols];
            table.row(id as usize, row);
            if scale != 1.0 {
                row.iter_mut().for_each(|v| *v *= scale);
            }
        }
    }

    fn rms_norm(&self, x: &CpuBuf, w: &CpuBuf, rows: usize, dim: usize, eps: f32, out: &CpuBuf) {
        let _p = self.profile.scope("norm", "", 0);
        let (x, w) = (x.borrow(), w.borrow());
        let mut out = out.borrow_mut();
        for i in 0..rows {
            let xi = &x[i * dim..(i + 1) * dim];
            let ss: f32 = xi.iter().map(|v| v * v).sum::<f32>() / dim as f32;
            let inv = 1.0 / (ss + eps).sqrt();
            for j in 0..dim {
                out[i * dim + j] = xi[j] * inv * w[j];
            }
        }
    }

    fn matmul(&self, x: &CpuBuf, w: &CpuWeight, n: usize, out: &CpuBuf) {
        let _p = self.profile.scope(if w.head { "lm head" } else { "matmul" }, w.ty.name(), w.size as u64);
        let x = x.borrow();
        let x = &x[..n * w.cols];
        let mut guard = self.scratch.borrow_mut();
        let Scratch { acts, tmp, row, .. } = &mut *guard;
        if let Some(team) = &self.team
            && team::matmul_split(team, w, x, n, (acts, tmp), &mut out.borrow_mut())
        {
            return;
        }
        // Products land as [row][token]; transposed into out[token][row] afterwards.
        tmp.resize(n * w.rows, 0.0);
        row.resize(w.cols, 0.0);
        let rows = match w.kernel {
            Some(k) if !self.options.exact => {
                acts.quantize(x, n, w.cols);
                Rows::Quant(k, acts)
            }
            _ => Rows::F32(x),
        };
        #[cfg(not(target_arch = "wasm32"))]
        {
            let t = threads_for(n * w.rows * w.cols, self.options.threads);
            if t > 1 {
                let pool = self.pool.get_or_init(|| pool::Pool::new(t));
                let per = w.rows.div_ceil(pool.threads());
                let parts = w.rows.div_ceil(per);
                let base = pool::SendPtr(tmp.as_mut_ptr());
                pool.run(parts, &|k| {
                    let (r0, r1) = (k * per, ((k + 1) * per).min(w.rows));
                    // SAFETY: part k writes only rows r0..r1 of `tmp` (n values each), disjoint
                    // from every other part's, and `tmp` outlives the run.
                    let chunk = unsafe { std::slice::from_raw_parts_mut(base.at(r0 * n), (r1 - r0) * n) };
                    let mut row = match rows {
                        Rows::F32(_) => vec![0f32; w.cols],
                        Rows::Quant(..) => Vec::new(),
                    };
                    matmul_rows(w, rows, n, r0, r1, chunk, &mut row);
                });
            } else {
                matmul_rows(w, rows, n, 0, w.rows, tmp, row);
            }
        }
        #[cfg(target_arch = "wasm32")]
        matmul_rows(w, rows, n, 0, w.rows, tmp, row);
        by_token(tmp, w.rows, n, &mut out.borrow_mut());
    }

    fn add_bias(&self, x: &CpuBuf, b: &CpuBuf, n: usize, dim: usize) {
        let _p = self.profile.scope("misc (bias/add/glu/copy)", "", 0);
        let b = b.borrow();
        let mut x = x.borrow_mut();
        for i in 0..n {
            for j in 0..dim {
                x[i * dim + j] += b[j];
            }
        }
    }

    fn rope(&self, x: &CpuBuf, n: usize, r: Rope<'_>) {
        let _p = self.profile.scope("rope", "", 0);
        let mut x = x.borrow_mut();
        let (hd, half) = (r.head_dim as usize, (r.n_rot / 2) as usize);
        let width = r.n_heads as usize * hd;
        for i in 0..n {
            let pos = (r.pos0 as usize + i) as f32;
            for k in 0..half {
                let mut inv = r.base.powf(-2.0 * k as f32 / r.n_rot as f32);
                if let Some(f) = r.factors {
                    inv /= f[k];
                }
                let theta = pos * r.freq_scale * inv;
                let (sin, cos) = theta.sin_cos();
                for h in 0..r.n_heads as usize {
                    let base = i * width + h * hd;
                    let (a, b) = match r.style {
                        RopeStyle::Normal => (base + 2 * k, base + 2 * k + 1),
                        RopeStyle::Neox => (base + k, base + k + half),
                    };
                    let (x0, x1) = (x[a], x[b]);
                    x[a] = x0 * cos - x1 * sin;
                    x[b] = x0 * sin + x1 * cos;
                }
            }
        }
    }

    fn set_kv_cache(&self, kv: KvCache, _width: usize) -> Result<(), InferError> {
        self.kv.set(kv);
        Ok(())
    }

    fn store_rows(&self, src: &CpuBuf, n: usize, width: usize, pos0: usize, cache: &CpuBuf) {
        let _p = self.profile.scope("kv store", "", 0);
        let src = src.borrow();
        if self.kv.get() == KvCache::F16 {
            return kv::store(&src, n, width, pos0, &mut cache.borrow_mut());
        }
        cache.borrow_mut()[pos0 * width..(pos0 + n) * width].copy_from_slice(&src[..n * width]);
    }

    fn attention(&self, q: &CpuBuf, k: &CpuBuf, v: &CpuBuf, n: usize, a: Attention, out: &CpuBuf) {
        let _p = self.profile.scope("attention", "", 0);
        let (q, k, v) = (q.borrow(), k.borrow(), v.borrow());
        let mut out = out.borrow_mut();
        let s = &mut self.scratch.borrow_mut().kv;
        match self.kv.get() {
            KvCache::F16 => kv::attention(&q, kv::halves(&k), kv::halves(&v), n, a, &mut out, s),
            KvCache::F32 => kv::attention(&q, &k[..], &v[..], n, a, &mut out, s),
        }
    }

    fn glu(&self, gate: &CpuBuf, up: &CpuBuf, len: usize, act: Activation, out: &CpuBuf) {
        let _p = self.profile.scope("misc (bias/add/glu/copy)", "", 0);
        let (gate, up) = (gate.borrow(), up.borrow());
        let mut out = out.borrow_mut();
        for e in 0..len {
            let g = match act {
                Activation::Silu => silu(gate[e]),
                Activation::GeluTanh => gelu_tanh(gate[e]),
            };
            out[e] = g * up[e];
        }
    }

    fn add(&self, dst: &CpuBuf, src: &CpuBuf, len: usize) {
        let _p = self.profile.scope("misc (bias/add/glu/copy)", "", 0);
        let src = src.borrow();
        let mut dst = dst.borrow_mut();
        for e in 0..len {
            dst[e] += src[e];
        }
    }

    fn copy_rows(&self, src: &CpuBuf, src_row: usize, dst: &CpuBuf, dst_row: usize, rows: usize, width: usize) {
        let _p = self.profile.scope("misc (bias/add/glu/copy)", "", 0);
        if Rc::ptr_eq(src, dst) {
            dst.borrow_mut().copy_within(src_row * width..(src_row + rows) * width, dst_row * width);
            return;
        }
        let src = src.borrow();
        dst.borrow_mut()[dst_row * width..(dst_row + rows) * width]
            .copy_from_slice(&src[src_row * width..(src_row + rows) * width]);
    }

    fn softcap(&self, x: &CpuBuf, len: usize, cap: f32) {
        let _p = self.profile.scope("sampling (softcap)", "", 0);
        for v in x.borrow_mut()[..len].iter_mut() {
            *v = cap * (*v / cap).tanh();
        }
    }

    fn argmax(&self, x: &CpuBuf, row: usize, width: usize, ids: &CpuIds, slot: usize) {
        let scope = self.profile.scope("sampling", "", 0);
        let x = x.borrow();
        let xs = &x[row * width..(row + 1) * width];
        let mut best = 0usize;
        for (j, &v) in xs.iter().enumerate() {
            if v > xs[best] || xs[best].is_nan() {
                best = j;
            }
        }
        ids.borrow_mut()[slot] = best as u32;
        drop(scope);
        self.profile.sampled();
    }

    fn penalize(&self, x: &CpuBuf, row: usize, width: usize, ids: &CpuIds, n_ids: usize, penalty: f32) {
        let _p = self.profile.scope("sampling", "", 0);
        let ids = ids.borrow();
        let mut x = x.borrow_mut();
        let xs = &mut x[row * width..(row + 1) * width];
        for &id in &ids[..n_ids] {
            if let Some(v) = xs.get_mut(id as usize) {
                *v = if *v > 0.0 { *v / penalty } else { *v * penalty };
            }
        }
    }

    fn top_k(&self, x: &CpuBuf, row: usize, width: usize, k: usize, vals: &CpuBuf, ids: &CpuIds) {
        let scope = self.profile.scope("sampling", "", 0);
        assert!((1..=MAX_TOP_K.min(width)).contains(&k), "top_k: k = {k} outside 1..={}", MAX_TOP_K.min(width));
        let x = x.borrow();
        // One pass keeping the best k (key, index) in descending order: an element enters only
        // if its key beats the k-th (a later equal key loses the tie), so insertions are rare.
        let mut best: Vec<(u32, u32)> = Vec::with_capacity(k + 1);
        for (j, &v) in x[row * width..(row + 1) * width].iter().enumerate() {
            let key = order_key(v);
            if best.len() == k && key <= best[k - 1].0 {
                continue;
            }
            let at = best.partition_point(|&(b, _)| b >= key);
            best.insert(at, (key, j as u32));
            best.truncate(k);
        }
        let (mut vals, mut ids) = (vals.borrow_mut(), ids.borrow_mut());
        for (s, &(key, j)) in best.iter().enumerate() {
            vals[s] = order_value(key);
            ids[s] = j;
        }
        drop(scope);
        self.profile.sampled();
    }

    async fn read(&self, x: &CpuBuf, offset: usize, len: usize) -> Result<Vec<f32>, InferError> {
        #[cfg(target_arch = "wasm32")]
        yield_to_browser().await;
        self.team_answered()?;
        Ok(x.borrow()[offset..offset + len].to_vec())
    }

    async fn read_ids(&self, ids: &CpuIds, len: usize) -> Result<Vec<u32>, InferError> {
        #[cfg(target_arch = "wasm32")]
        yield_to_browser().await;
        self.team_answered()?;
        Ok(ids.borrow()[..len].to_vec())
    }

    fn resident_bytes(&self) -> u64 {
        self.resident.load(Ordering::Relaxed)
    }

    fn allocated_bytes(&self) -> u64 {
        self.resident.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
