//! [`Counted`]: a [`Compute`] that forwards every op to another backend and counts what a decoded
//! token costs (dispatches, queue writes, readbacks, weight bytes read), without touching the
//! engine.
//!
//! Dispatches are counted at the op level, with the launches each op of the GPU backend makes:
//! one per op, one per weight part for `matmul` and `embed` (a weight larger than the binding
//! limit is split by rows), two for `top_k`. `write_ids` is a queue write, not a dispatch.

use std::cell::Cell;

use hearth::gguf::GgmlType;
use hearth::infer::gpu::Gpu;
use hearth::infer::{Activation, Attention, Compute, Cpu, InferError, Rope};

/// How many buffers a weight is split into on a backend (one launch of `matmul` per part).
pub trait Parts: Compute {
    fn parts(&self, w: &Self::Weight) -> usize;
}

impl Parts for Gpu {
    fn parts(&self, w: &Self::Weight) -> usize {
        w.parts()
    }
}

impl Parts for Cpu {
    fn parts(&self, _: &Self::Weight) -> usize {
        1
    }
}

/// What the counted ops did since the last [`Counted::take`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub dispatches: u64,
    pub writes: u64,
    pub readbacks: u64,
    /// Bytes of weights the matmuls and the embedding lookups read.
    pub weight_bytes: u64,
}

/// A backend whose ops are counted (see the module docs).
pub struct Counted<C: Parts> {
    pub inner: C,
    dispatches: Cell<u64>,
    writes: Cell<u64>,
    readbacks: Cell<u64>,
    weight_bytes: Cell<u64>,
}

impl<C: Parts> Counted<C> {
    pub fn new(inner: C) -> Counted<C> {
        Counted {
            inner,
            dispatches: Cell::new(0),
            writes: Cell::new(0),
            readbacks: Cell::new(0),
            weight_bytes: Cell::new(0),
        }
    }

    /// The counts so far, and zero them.
    pub fn take(&self) -> Counts {
        Counts {
            dispatches: self.dispatches.take(),
            writes: self.writes.take(),
            readbacks: self.readbacks.take(),
            weight_bytes: self.weight_bytes.take(),
        }
    }

    fn dispatch(&self, n: usize) {
        self.dispatches.set(self.dispatches.get() + n as u64);
    }

    fn read_weight(&self, bytes: u64) {
        self.weight_bytes.set(self.weight_bytes.get() + bytes);
    }
}

impl<C: Parts> Compute for Counted<C> {
    type Buf = C::Buf;
    type Ids = C::Ids;
    type Weight = (C::Weight, usize, usize);

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn max_binding_bytes(&self) -> u64 {
        self.inner.max_binding_bytes()
    }

    fn alloc(&self, len: usize) -> Result<C::Buf, InferError> {
        self.inner.alloc(len)
    }

    fn alloc_ids(&self, len: usize) -> Result<C::Ids, InferError> {
        self.inner.alloc_ids(len)
    }

    fn upload_f32(&self, data: &[f32]) -> Result<C::Buf, InferError> {
        self.inner.upload_f32(data)
    }

    /// The weight with its row count and its parts.
    fn upload_weight(
        &self,
        name: &str,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        bytes: &[u8],
    ) -> Result<Self::Weight, InferError> {
        let w = self.inner.upload_weight(name, ty, rows, cols, bytes)?;
        let parts = self.inner.parts(&w);
        Ok((w, rows, parts))
    }

    fn weight_bytes(&self, w: &Self::Weight) -> u64 {
        self.inner.weight_bytes(&w.0)
    }

    fn write_ids(&self, ids: &C::Ids, data: &[u32]) -> Result<(), InferError> {
        self.writes.set(self.writes.get() + 1);
        self.inner.write_ids(ids, data)
    }

    fn embed(&self, table: &Self::Weight, ids: &C::Ids, n: usize, scale: f32, out: &C::Buf) {
        self.dispatch(table.2);
        self.read_weight(self.inner.weight_bytes(&table.0) / table.1 as u64 * n as u64);
        self.inner.embed(&table.0, ids, n, scale, out)
    }

    fn rms_norm(&self, x: &C::Buf, w: &C::Buf, rows: usize, dim: usize, eps: f32, out: &C::Buf) {
        self.dispatch(1);
        self.inner.rms_norm(x, w, rows, dim, eps, out)
    }

    fn matmul(&self, x: &C::Buf, w: &Self::Weight, n: usize, out: &C::Buf) {
        self.dispatch(w.2);
        self.read_weight(self.inner.weight_bytes(&w.0));
        self.inner.matmul(x, &w.0, n, out)
    }

    fn add_bias(&self, x: &C::Buf, b: &C::Buf, n: usize, dim: usize) {
        self.dispatch(1);
        self.inner.add_bias(x, b, n, dim)
    }

    fn rope(&self, x: &C::Buf, n: usize, rope: Rope<'_>) {
        self.dispatch(1);
        self.inner.rope(x, n, rope)
    }

    fn store_rows(&self, src: &C::Buf, n: usize, width: usize, pos0: usize, cache: &C::Buf) {
        self.dispatch(1);
        self.inner.store_rows(src, n, width, pos0, cache)
    }

    fn attention(&self, q: &C::Buf, k: &C::Buf, v: &C::Buf, n: usize, a: Attention, out: &C::Buf) {
        self.dispatch(1);
        self.inner.attention(q, k, v, n, a, out)
    }

    fn glu(&self, gate: &C::Buf, up: &C::Buf, len: usize, act: Activation, out: &C::Buf) {
        self.dispatch(1);
        self.inner.glu(gate, up, len, act, out)
    }

    fn add(&self, dst: &C::Buf, src: &C::Buf, len: usize) {
        self.dispatch(1);
        self.inner.add(dst, src, len)
    }

    fn copy_rows(&self, src: &C::Buf, src_row: usize, dst: &C::Buf, dst_row: usize, rows: usize, width: usize) {
        self.dispatch(1);
        self.inner.copy_rows(src, src_row, dst, dst_row, rows, width)
    }

    fn softcap(&self, x: &C::Buf, len: usize, cap: f32) {
        self.dispatch(1);
        self.inner.softcap(x, len, cap)
    }

    fn argmax(&self, x: &C::Buf, row: usize, width: usize, ids: &C::Ids, slot: usize) {
        self.dispatch(1);
        self.inner.argmax(x, row, width, ids, slot)
    }

    fn penalize(&self, x: &C::Buf, row: usize, width: usize, ids: &C::Ids, n_ids: usize, penalty: f32) {
        self.dispatch(1);
        self.inner.penalize(x, row, width, ids, n_ids, penalty)
    }

    fn top_k(&self, x: &C::Buf, row: usize, width: usize, k: usize, vals: &C::Buf, ids: &C::Ids) {
        self.dispatch(2);
        self.inner.top_k(x, row, width, k, vals, ids)
    }

    async fn read(&self, x: &C::Buf, offset: usize, len: usize) -> Result<Vec<f32>, InferError> {
        self.readbacks.set(self.readbacks.get() + 1);
        self.inner.read(x, offset, len).await
    }

    async fn read_ids(&self, ids: &C::Ids, len: usize) -> Result<Vec<u32>, InferError> {
        self.readbacks.set(self.readbacks.get() + 1);
        self.inner.read_ids(ids, len).await
    }

    fn resident_bytes(&self) -> u64 {
        self.inner.resident_bytes()
    }

    fn allocated_bytes(&self) -> u64 {
        self.inner.allocated_bytes()
    }
}
