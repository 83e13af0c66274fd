//! Row-sharded matrix products: the CPU engine on several threads in the browser.
//!
//! Threads that share one wasm memory need a `std` rebuilt with atomics (a nightly toolchain),
//! so the browser build splits its work differently: each large matrix's rows are divided into
//! `parts` contiguous ranges ([`part_rows`]); the calling instance keeps range 0 and each of
//! `parts - 1` shard workers (separate wasm instances of the same module, in Web Workers) holds
//! one other range, as the GGUF bytes of those rows. A product then goes:
//!
//! 1. the caller quantizes the activations once (as on one thread) and copies them into a
//!    `SharedArrayBuffer` laid out by [`Layout`], writes the job (matrix, tokens, width) into
//!    the header and bumps the job word, waking the shards;
//! 2. every shard copies the activations into its own memory, computes its rows with the same
//!    kernels ([`Shard::run`]), writes them as `f32` into its slice of the output region and bumps
//!    the done word; the caller computes range 0 meanwhile;
//! 3. the caller waits for the done word to reach `parts - 1` and copies the output region
//!    after its own rows.
//!
//! Each row's dot products are the one-thread kernels' on the same bytes, so the result is bit
//! for bit the one-thread result. The split, the layout and the shard's arithmetic are plain Rust
//! (tested natively, with [`Peers`] played by an in-process fake); only the `SharedArrayBuffer`,
//! `Atomics` and `Worker` glue (`team/web.rs`) is wasm32-only.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;

use crate::gguf::GgmlType;

use super::quant::QuantActs;
use super::{Cpu, CpuWeight, InferError, Rows, by_token, matmul_rows};
use crate::infer::Compute;

#[cfg(target_arch = "wasm32")]
pub mod web;

/// The most threads a load may ask for.
pub const MAX_THREADS: u32 = 16;

/// The default thread count's ceiling (`navigator.hardwareConcurrency` above it is cut to it).
pub const DEFAULT_MAX: u32 = 8;

/// Matrices smaller than this many weights stay whole on the calling side: their product takes
/// about as long as waking the shards.
pub const SHARD_MIN_WEIGHTS: usize = 1 << 18;

/// Rows of part `k` of `parts` of a matrix with `rows` rows: contiguous ranges of
/// `ceil(rows / parts)`, the last one shorter (empty when `k` is past the end).
pub fn part_rows(rows: usize, parts: usize, k: usize) -> Range<usize> {
    let per = rows.div_ceil(parts.max(1));
    (k * per).min(rows)..((k + 1) * per).min(rows)
}

/// Whether a `rows x cols` matrix is split across `parts` (it has a quantized kernel, the
/// engine is not in its exact mode, and it is large enough to pay for the wake-up).
pub fn is_sharded(rows: usize, cols: usize, parts: usize, quantized: bool) -> bool {
    parts > 1 && quantized && rows * cols >= SHARD_MIN_WEIGHTS && rows >= parts
}

/// The shared buffer: a header of `i32` words, the quantized activations of up to `tokens`
/// rows of up to `cols`, and the shards' outputs (`[row][token]`, rows after part 0's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layout {
    /// Most tokens one job carries (longer products are cut into jobs of this many).
    pub tokens: usize,
    /// The widest sharded matrix.
    pub cols: usize,
    /// The most output rows the shards produce for one matrix (its rows after part 0's).
    pub out_rows: usize,
}

impl Layout {
    /// Header word: bumped once per job (the shards wait on it).
    pub const JOB: u32 = 0;
    /// Header word: shards done with the current job.
    pub const DONE: u32 = 1;
    /// Header word: the job's matrix id.
    pub const MATRIX: u32 = 2;
    /// Header word: the job's tokens.
    pub const TOKENS: u32 = 3;
    /// Header word: the job's width (the matrix's columns).
    pub const COLS: u32 = 4;
    const HEADER_BYTES: usize = 64;

    /// Grows the layout to hold a sharded `rows x cols` matrix split in `parts`.
    pub fn include(&mut self, rows: usize, cols: usize, parts: usize) {
        self.cols = self.cols.max(cols);
        self.out_rows = self.out_rows.max(rows - part_rows(rows, parts, 0).end);
    }

    /// Byte offset of the quants (`i8`, `n * cols` of them).
    pub fn qs(&self) -> usize {
        Self::HEADER_BYTES
    }

    /// Byte offset of the block scales (`f32`, one per 32 quants).
    pub fn d(&self) -> usize {
        (Self::HEADER_BYTES + self.tokens * self.cols).next_multiple_of(16)
    }

    /// Byte offset of the block sums (`f32`, one per 32 quants).
    pub fn sum(&self) -> usize {
        self.d() + self.tokens * self.cols / 32 * 4
    }

    /// Byte offset of the outputs (`f32`).
    pub fn out(&self) -> usize {
        (self.sum() + self.tokens * self.cols / 32 * 4).next_multiple_of(16)
    }

    /// Byte offset of part `k`'s outputs for a job of `n` tokens on a `rows`-row matrix.
    pub fn out_of(&self, rows: usize, parts: usize, k: usize, n: usize) -> usize {
        let first = part_rows(rows, parts, 1).start;
        self.out() + (part_rows(rows, parts, k).start - first) * n * 4
    }

    /// Bytes of the whole buffer.
    pub fn bytes(&self) -> usize {
        self.out() + self.tokens * self.out_rows * 4
    }
}

/// The other parts of a split product, as the calling side sees them: the shard workers in the
/// browser, an in-process fake in the native tests.
pub trait Peers {
    /// Parts a sharded matrix is split into, the caller's included.
    fn parts(&self) -> usize;
    /// Hands part `part` (`1..parts`) its rows of sharded matrix `id` (their GGUF bytes).
    fn add_weight(&self, part: usize, id: u32, ty: GgmlType, rows: usize, cols: usize, bytes: &[u8]);
    /// Sizes the shared buffer for `layout` and lets the shards serve (after the last weight).
    fn serve(&self, layout: Layout) -> Pin<Box<dyn Future<Output = Result<(), String>> + '_>>;
    /// Starts the product of matrix `id` (`rows` rows) with the `n` rows of `acts` on every shard.
    fn start(&self, id: u32, rows: usize, n: usize, acts: &QuantActs);
    /// Waits for the shards and copies their outputs (`[row][token]`, the rows after part 0's)
    /// into `out`.
    fn finish(&self, out: &mut [f32]);
    /// Whether a shard stopped answering: `finish` then gave zeros for its rows rather than
    /// hang the page, and the engine's next read reports the failure.
    fn broken(&self) -> bool {
        false
    }
}

/// A [`Cpu`]'s shard team: the peers and what the shared buffer must hold.
pub(super) struct Team {
    pub peers: Box<dyn Peers>,
    pub layout: std::cell::Cell<Layout>,
    pub next_id: std::cell::Cell<u32>,
}

impl std::fmt::Debug for Team {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Team").field("parts", &self.peers.parts()).field("layout", &self.layout.get()).finish()
    }
}

/// A sharded weight's place in its team.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sharded {
    pub id: u32,
    /// Rows the calling side computes (part 0's).
    pub own: usize,
}

/// One shard worker's side: its rows of every sharded matrix, and their products.
#[derive(Debug, Default)]
pub struct Shard {
    cpu: Cpu,
    weights: Vec<Option<CpuWeight>>,
    acts: QuantActs,
}

impl Shard {
    pub fn new() -> Shard {
        Shard::default()
    }

    /// Takes this shard's `rows x cols` rows of matrix `id` (`bytes`: their GGUF blocks).
    ///
    /// # Errors
    /// [`InferError::UnsupportedType`] / [`InferError::BadWeight`] as [`Cpu::upload_weight`].
    pub fn add(&mut self, id: u32, ty: GgmlType, rows: usize, cols: usize, bytes: &[u8]) -> Result<(), InferError> {
        let w = self.cpu.upload_weight(&format!("shard matrix {id}"), ty, rows, cols, bytes)?;
        let id = id as usize;
        if self.weights.len() <= id {
            self.weights.resize_with(id + 1, || None);
        }
        self.weights[id] = Some(w);
        Ok(())
    }

    /// Room for the activations of a job of `n` tokens of width `cols` (filled by the caller
    /// from the shared buffer before [`Self::run`]).
    pub fn acts_mut(&mut self, n: usize, cols: usize) -> (&mut [i8], &mut [f32], &mut [f32]) {
        self.acts.parts_mut(n, cols)
    }

    /// Rows of matrix `id` this shard holds (0 for an unknown id).
    pub fn rows(&self, id: u32) -> usize {
        self.weight(id).map_or(0, |w| w.rows)
    }

    fn weight(&self, id: u32) -> Option<&CpuWeight> {
        self.weights.get(id as usize).and_then(Option::as_ref)
    }

    /// Its rows of matrix `id` times the `n` activation rows given through [`Self::acts_mut`],
    /// into `out` (`[row][token]`, `rows(id) * n`). Does nothing for an unknown matrix or a
    /// width that is not the matrix's.
    pub fn run(&self, id: u32, n: usize, out: &mut [f32]) {
        let Some(w) = self.weight(id) else { return };
        let Some(k) = w.kernel else { return };
        if self.acts.parts().0.len() != n * w.cols || out.len() < w.rows * n {
            return;
        }
        matmul_rows(w, Rows::Quant(k, &self.acts), n, 0, w.rows, &mut out[..w.rows * n], &mut []);
    }
}

/// The calling side's part of a sharded product: `x` (`n x cols`) times matrix `w` into `out`
/// (`n x rows`), in jobs of at most `layout.tokens` tokens. `tmp` and `acts` are scratch.
/// Returns `false`, doing nothing, for a matrix that is not sharded.
pub(super) fn matmul_split(
    team: &Team,
    w: &CpuWeight,
    x: &[f32],
    n: usize,
    (acts, tmp): (&mut QuantActs, &mut Vec<f32>),
    out: &mut [f32],
) -> bool {
    let (Some(s), Some(k)) = (w.sharded, w.kernel) else { return false };
    let (rows, cols) = (w.rows, w.cols);
    let step = team.layout.get().tokens.max(1);
    let mut t0 = 0;
    while t0 < n {
        let m = step.min(n - t0);
        acts.quantize(&x[t0 * cols..(t0 + m) * cols], m, cols);
        team.peers.start(s.id, rows, m, acts);
        tmp.resize(rows * m, 0.0);
        matmul_rows(w, Rows::Quant(k, acts), m, 0, s.own, &mut tmp[..s.own * m], &mut []);
        team.peers.finish(&mut tmp[s.own * m..rows * m]);
        by_token(tmp, rows, m, &mut out[t0 * rows..(t0 + m) * rows]);
        t0 += m;
    }
    true
}

#[cfg(test)]
mod tests;
