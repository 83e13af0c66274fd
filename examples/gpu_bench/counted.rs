//! [`Counted`]: a [`Compute`] that forwards every op to another backend and counts what a decoded
//! token costs (dispatches, queue writes, readbacks, weight bytes read), without touching the
//! engine.
//!
//! On the GPU backend dispatches are the backend's own count of its launches ([`Gpu::launches`]),
//! fused kernels included; on the CPU engine they are counted at the op level (one per op, as
//! the unfused GPU ops would launch). `write_ids` is a queue write, not a dispatch.
//!
//! Submissions follow cubecl's wgpu stream, which records launches into one command encoder
//! and submits it when `tasks_max` tasks are recorded, before a queue write (`write_ids`) when
//! something is recorded, and at every readback (whose copy is one more task). Not modelled:
//! the empty submission cubecl makes after every 64 queue writes of its own (per-launch
//! parameters it has not cached; a decode step writes a handful, those that hold the position).

use std::cell::Cell;

use futures::executor::block_on;
use hearth::gguf::GgmlType;
use hearth::infer::gpu::{Gpu, KernelTime};
use hearth::infer::{Activation, Attention, Compute, Cpu, HeadNorms, InferError, KvCache, Rope};

/// How many buffers a weight is split into on a backend (one launch of `matmul` per part), and
/// the backend's own count of its dispatches where it keeps one.
pub trait Parts: Compute {
    fn parts(&self, w: &Self::Weight) -> usize;
    fn launches(&self) -> Option<u64>;
    /// Starts or stops timing every dispatch; false where the backend cannot.
    fn profile_kernels(&self, on: bool) -> bool;
    /// What was timed since profiling started, and whether by timestamp queries.
    fn kernel_times(&self) -> (Vec<KernelTime>, bool);
    /// Whether decode steps are recorded and replayed (each then writes its position once).
    fn decode_graphs(&self) -> bool;
}

impl Parts for Gpu {
    fn parts(&self, w: &Self::Weight) -> usize {
        w.parts()
    }

    fn launches(&self) -> Option<u64> {
        Some(Gpu::launches(self))
    }

    fn profile_kernels(&self, on: bool) -> bool {
        Gpu::profile_kernels(self, on);
        true
    }

    fn kernel_times(&self) -> (Vec<KernelTime>, bool) {
        (block_on(Gpu::kernel_times(self)), self.timestamp_queries())
    }

    fn decode_graphs(&self) -> bool {
        Gpu::decode_graphs(self)
    }
}

impl Parts for Cpu {
    fn parts(&self, _: &Self::Weight) -> usize {
        1
    }

    fn launches(&self) -> Option<u64> {
        None
    }

    fn profile_kernels(&self, _: bool) -> bool {
        false
    }

    fn kernel_times(&self) -> (Vec<KernelTime>, bool) {
        (Vec::new(), false)
    }

    fn decode_graphs(&self) -> bool {
        false
    }
}

/// What the counted ops did since the last [`Counted::take`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub dispatches: u64,
    pub submissions: u64,
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
    submissions: Cell<u64>,
    /// cubecl's `tasks_max` on the device.
    tasks_max: u64,
    /// Tasks recorded since the last submission.
    pending: Cell<u64>,
    /// The backend's launch count at the last [`Counted::sync`].
    seen_launches: Cell<u64>,
    /// The weight bytes a decode step reads (counted when it ran, for its replays).
    step_weight_bytes: Cell<u64>,
}

impl<C: Parts> Counted<C> {
    /// `inner` on a device that submits every `tasks_max` launches.
    pub fn new(inner: C, tasks_max: usize) -> Counted<C> {
        let seen = inner.launches().unwrap_or(0);
        Counted {
            inner,
            dispatches: Cell::new(0),
            writes: Cell::new(0),
            readbacks: Cell::new(0),
            weight_bytes: Cell::new(0),
            submissions: Cell::new(0),
            tasks_max: tasks_max.max(1) as u64,
            pending: Cell::new(0),
            seen_launches: Cell::new(seen),
            step_weight_bytes: Cell::new(0),
        }
    }

    /// Takes in the launches the backend recorded since the last call, with the submissions
    /// cubecl makes when `tasks_max` of them are recorded.
    fn sync(&self) {
        let Some(now) = self.inner.launches() else { return };
        let new = now - self.seen_launches.replace(now);
        self.dispatches.set(self.dispatches.get() + new);
        let mut pending = self.pending.get() + new;
        while pending >= self.tasks_max {
            self.submissions.set(self.submissions.get() + 1);
            pending -= self.tasks_max;
        }
        self.pending.set(pending);
    }

    /// A submission of what is recorded, if anything is (`extra` tasks recorded first).
    fn submit(&self, extra: u64) {
        self.sync();
        if self.inner.launches().is_some() && self.pending.get() + extra > 0 {
            self.submissions.set(self.submissions.get() + 1);
            self.pending.set(0);
        }
    }

    /// The counts so far, and zero them.
    pub fn take(&self) -> Counts {
        self.sync();
        Counts {
            submissions: self.submissions.take(),
            dispatches: self.dispatches.take(),
            writes: self.writes.take(),
            readbacks: self.readbacks.take(),
            weight_bytes: self.weight_bytes.take(),
        }
    }

    /// `n` dispatches of an op, on a backend that does not count its own.
    fn dispatch(&self, n: usize) {
        if self.inner.launches().is_none() {
            self.dispatches.set(self.dispatches.get() + n as u64);
        }
    }

    fn read_weight(&self, bytes: u64) {
        self.weight_bytes.set(self.weight_bytes.get() + bytes);
    }
}

impl<C: Parts> Compute for Counted<C> {
    type Buf = C::Buf;
    type Ids = C::Ids;
    type Weight = (C::Weight, usize, usize);
    type Steps = C::Steps;

    /// The backend's own dispatch count covers replays; the op-level counts are the step's
    /// once however often the backend ran `step` (twice when it records it, never on a replay),
    /// and a recorded step writes its position.
    fn decode_step(&self, steps: &mut C::Steps, key: u32, pos: usize, step: &mut dyn FnMut()) {
        if self.inner.decode_graphs() {
            self.writes.set(self.writes.get() + 1);
            self.submit(0);
        }
        let mut runs = 0;
        self.inner.decode_step(steps, key, pos, &mut || {
            let before = self.weight_bytes.get();
            step();
            runs += 1;
            if runs == 1 {
                self.step_weight_bytes.set(self.weight_bytes.get() - before);
            } else {
                self.weight_bytes.set(before);
            }
        });
        if runs == 0 {
            self.read_weight(self.step_weight_bytes.get());
        }
    }

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
        self.submit(0);
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

    fn set_kv_cache(&self, kv: KvCache, width: usize) -> Result<(), InferError> {
        self.inner.set_kv_cache(kv, width)
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

    #[allow(clippy::too_many_arguments)]
    fn add_rms_norm(
        &self,
        x: &C::Buf,
        h: &C::Buf,
        pre: Option<&C::Buf>,
        w: &C::Buf,
        rows: usize,
        dim: usize,
        eps: f32,
        out: &C::Buf,
    ) {
        self.dispatch(2 + usize::from(pre.is_some()));
        self.inner.add_rms_norm(x, h, pre, w, rows, dim, eps, out)
    }

    #[allow(clippy::too_many_arguments)]
    fn embed_norm(
        &self,
        table: &Self::Weight,
        ids: &C::Ids,
        n: usize,
        scale: f32,
        x: &C::Buf,
        w: &C::Buf,
        dim: usize,
        eps: f32,
        xn: &C::Buf,
    ) {
        self.dispatch(table.2 + 1);
        self.read_weight(self.inner.weight_bytes(&table.0) / table.1 as u64 * n as u64);
        self.inner.embed_norm(&table.0, ids, n, scale, x, w, dim, eps, xn)
    }

    fn head_norms(
        &self,
        q: (&C::Buf, &C::Buf, usize),
        k: (&C::Buf, &C::Buf, usize),
        dim: usize,
        eps: f32,
        q_out: &C::Buf,
        k_out: &C::Buf,
    ) {
        self.dispatch(2);
        self.inner.head_norms(q, k, dim, eps, q_out, k_out)
    }

    #[allow(clippy::too_many_arguments)]
    fn qkv(
        &self,
        x: &C::Buf,
        wq: &Self::Weight,
        wk: &Self::Weight,
        wv: &Self::Weight,
        n: usize,
        q: &C::Buf,
        k: &C::Buf,
        v: &C::Buf,
    ) {
        for w in [wq, wk, wv] {
            self.dispatch(w.2);
            self.read_weight(self.inner.weight_bytes(&w.0));
        }
        self.inner.qkv(x, &wq.0, &wk.0, &wv.0, n, q, k, v)
    }

    #[allow(clippy::too_many_arguments)]
    fn gated_ffn(
        &self,
        x: &C::Buf,
        w_gate: &Self::Weight,
        w_up: &Self::Weight,
        n: usize,
        ff: usize,
        act: Activation,
        scratch: (&C::Buf, &C::Buf),
        out: &C::Buf,
    ) {
        for w in [w_gate, w_up] {
            self.dispatch(w.2);
            self.read_weight(self.inner.weight_bytes(&w.0));
        }
        self.dispatch(1);
        self.inner.gated_ffn(x, &w_gate.0, &w_up.0, n, ff, act, scratch, out)
    }

    #[allow(clippy::too_many_arguments)]
    fn rope_store(
        &self,
        q: &C::Buf,
        k: &C::Buf,
        v: &C::Buf,
        bias: Option<(&C::Buf, &C::Buf, &C::Buf)>,
        norms: Option<HeadNorms<'_, C::Buf>>,
        n: usize,
        rope_q: Rope<'_>,
        rope_k: Rope<'_>,
        kv_width: usize,
        k_cache: &C::Buf,
        v_cache: &C::Buf,
    ) {
        self.dispatch(4 + 3 * usize::from(bias.is_some()) + 2 * usize::from(norms.is_some()));
        self.inner.rope_store(q, k, v, bias, norms, n, rope_q, rope_k, kv_width, k_cache, v_cache)
    }

    async fn read(&self, x: &C::Buf, offset: usize, len: usize) -> Result<Vec<f32>, InferError> {
        self.readbacks.set(self.readbacks.get() + 1);
        self.submit(1);
        self.inner.read(x, offset, len).await
    }

    async fn read_ids(&self, ids: &C::Ids, len: usize) -> Result<Vec<u32>, InferError> {
        self.readbacks.set(self.readbacks.get() + 1);
        self.submit(1);
        self.inner.read_ids(ids, len).await
    }

    fn resident_bytes(&self) -> u64 {
        self.inner.resident_bytes()
    }

    fn allocated_bytes(&self) -> u64 {
        self.inner.allocated_bytes()
    }
}
