//! The fused operations of the GPU backend (the [`Compute`] methods that backends may fuse):
//! one dispatch for the query, key and value projections, one for the gate and up projections
//! with the gated activation, one for the biases or gemma3's per-head norms, RoPE and the
//! KV-cache write, one for a residual add and the norm after it, one for the embedding and the
//! first norm. A decode step is then 8 dispatches per layer plus 3: the embedding with the
//! first norm, the output projection and the argmax.
//!
//! The weight kernels are fused for one row of `x` (a decode step), whole-unit rows and
//! single-buffer weights, in the matmul family the backend uses ([`super::Kernels`]): each
//! weight is read by its own copy of its format's decoder (see `wgsl::decoder_for_weight`), so
//! the three projections may be in different formats (Q4_K_M files keep V in Q6_K). The same
//! kernel reads one weight split over two or three buffers (an output projection over the
//! binding limit) as its three weights. Anything else (a prefill, a weight in more parts)
//! composes the unfused ops; so does a layer whose biases come with per-head norms, or whose
//! norms meet a partial rotation.

use super::kernel::{FUSED_PARAM_WORDS, Lanes, ROPE_PARAM_WORDS, RopePre, Spec};
use super::layout::Part;
use super::{Gpu, GpuBuf, GpuIds, GpuWeight, groups, u32_of};
use crate::infer::compute::{Activation, Compute, HeadNorms, Rope};

/// A weight part in a fused kernel: the part, its rows, its blocks per row, and the output
/// element its first row goes to.
type Slot<'a> = (&'a Part, u32, u32, u32);

/// The parts of a weight in two or three buffers as the three weights of a fused kernel: a
/// missing third is the second again with no rows.
fn three_parts(w: &GpuWeight) -> [(&Part, u32); 3] {
    let last = w.parts.len() - 1;
    std::array::from_fn(|m| {
        let p = &w.parts[m.min(last)];
        (p, if m <= last { p.rows } else { 0 })
    })
}

impl Gpu {
    /// The fused kernel family for `n` rows of `x` by weights of `upr` units per row, or `None`
    /// where only the unfused kernels apply (`n > 1`).
    fn lanes(&self, n: usize, upr: u32) -> Option<Lanes> {
        if n != 1 {
            return None;
        }
        Some(if self.row_kernels() {
            Lanes::Rows
        } else if let Some(rpw) = self.subgroup_matvec_rows(1) {
            Lanes::Subgroup(rpw)
        } else {
            Lanes::Matvec(1 << (upr / 4).clamp(4, 32).ilog2())
        })
    }

    /// Launches a fused weight kernel over `ws` (single-part, whole units, same columns).
    fn launch_fused(&self, spec: Spec, lanes: Lanes, ws: &[&GpuWeight], x: &GpuBuf, outs: &[&GpuBuf]) {
        let slots: Vec<Slot<'_>> = ws.iter().map(|w| (&w.parts[0], w.parts[0].rows, w.geometry().1, 0)).collect();
        self.launch_slots(spec, lanes, ws[0], &slots, x, outs);
    }

    /// Launches a fused weight kernel over up to three weight parts `slots` with the columns and
    /// units per row of `like`, part `m` written to `outs[m]` from element `slots[m].2`.
    fn launch_slots(
        &self,
        spec: Spec,
        lanes: Lanes,
        like: &GpuWeight,
        slots: &[Slot<'_>],
        x: &GpuBuf,
        outs: &[&GpuBuf],
    ) {
        let (upr, _, _) = like.geometry();
        let mut params = vec![0u32; FUSED_PARAM_WORDS];
        params[..4].copy_from_slice(&[1, 0, u32_of(like.cols), upr]);
        for (m, &(p, rows, bpr, out0)) in slots.iter().enumerate() {
            params[8 + m] = rows;
            params[12 + m] = bpr;
            params[16 + m] = p.qoff;
            params[20 + m] = out0;
        }
        let mut bufs: Vec<(&burn::cubecl::server::Handle, u64)> =
            slots.iter().map(|(p, ..)| (&p.handle, p.id)).collect();
        bufs.push((&x.handle, x.id));
        bufs.extend(outs.iter().map(|o| (&o.handle, o.id)));
        let rows: u32 = slots.iter().map(|s| s.1).sum();
        let groups = match lanes {
            Lanes::Rows => {
                let inv: u32 = slots.iter().map(|s| s.1.div_ceil(super::kernel::FUSED_RB)).sum();
                inv.div_ceil(64)
            }
            Lanes::Matvec(tpr) => rows.div_ceil(256 / tpr),
            Lanes::Subgroup(rpw) => rows.div_ceil(rpw),
        };
        self.launch_words(spec, &bufs, &params, groups);
    }

    /// One row of `x` by a weight split over two or three buffers (an output projection larger
    /// than a binding may be) in one dispatch: the parts as the three weights of [`Spec::Qkv`],
    /// each writing its rows of `out`; a missing third is the second again with no rows.
    /// `false` (nothing launched) where that does not apply.
    pub(super) fn matmul_parts(&self, x: &GpuBuf, w: &GpuWeight, n: usize, out: &GpuBuf) -> bool {
        let (upr, bpr, ragged) = w.geometry();
        let Some(lanes) = self.lanes(n, upr) else { return false };
        if ragged || !(2..=3).contains(&w.parts.len()) {
            return false;
        }
        let slots = three_parts(w).map(|(p, rows)| (p, rows, bpr, p.row0));
        self.launch_slots(Spec::Qkv { fmts: [w.fmt; 3], lanes }, lanes, w, &slots, x, &[out, out, out]);
        true
    }

    /// Whether `ws` can be read by one fused kernel: one buffer each, whole units, same columns.
    fn fusable(ws: &[&GpuWeight]) -> bool {
        ws.iter().all(|w| w.parts.len() == 1 && !w.geometry().2 && w.cols == ws[0].cols)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn fused_qkv(
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
        let ws = [wq, wk, wv];
        match self.lanes(n, wq.geometry().0) {
            Some(lanes) if Gpu::fusable(&ws) => {
                let spec = Spec::Qkv { fmts: [wq.fmt, wk.fmt, wv.fmt], lanes };
                self.launch_fused(spec, lanes, &ws, x, &[q, k, v]);
            }
            _ => {
                self.matmul(x, wq, n, q);
                self.matmul(x, wk, n, k);
                self.matmul(x, wv, n, v);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn fused_ffn(
        &self,
        x: &GpuBuf,
        wg: &GpuWeight,
        wu: &GpuWeight,
        n: usize,
        ff: usize,
        act: Activation,
        scratch: (&GpuBuf, &GpuBuf),
        out: &GpuBuf,
    ) {
        match self.lanes(n, wg.geometry().0) {
            Some(lanes) if Gpu::fusable(&[wg, wu]) && wg.fmt == wu.fmt && wg.rows == wu.rows => {
                let spec = Spec::GluFused { fmt: wg.fmt, lanes };
                let (upr, _, _) = wg.geometry();
                let mut params = vec![0u32; FUSED_PARAM_WORDS];
                params[..4].copy_from_slice(&[1, 0, u32_of(wg.cols), upr]);
                params[7] = act_code(act);
                for (m, w) in [wg, wu].iter().enumerate() {
                    params[8 + m] = u32_of(w.rows);
                    params[12 + m] = w.geometry().1;
                    params[16 + m] = w.parts[0].qoff;
                }
                let (pg, pu) = (&wg.parts[0], &wu.parts[0]);
                let bufs = [(&pg.handle, pg.id), (&pu.handle, pu.id), (&x.handle, x.id), (&out.handle, out.id)];
                let groups = match lanes {
                    Lanes::Rows => u32_of(wg.rows).div_ceil(super::kernel::FUSED_RB).div_ceil(64),
                    Lanes::Matvec(tpr) => u32_of(wg.rows).div_ceil(256 / tpr),
                    Lanes::Subgroup(rpw) => u32_of(wg.rows).div_ceil(rpw),
                };
                self.launch_words(spec, &bufs, &params, groups);
            }
            _ => {
                self.matmul(x, wg, n, scratch.0);
                self.matmul(x, wu, n, scratch.1);
                self.glu(scratch.0, scratch.1, n * ff, act, out);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn fused_rope_store(
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
        // The fused norms write whole heads only where RoPE rotates all of them (gemma3 does).
        let (q, k, norms) = match norms {
            Some(hn) if rope_q.n_rot != rope_q.head_dim || bias.is_some() => {
                let (q, k) = hn.apply(self, (q, k), n, rope_q, rope_k);
                (q, k, None)
            }
            other => (q, k, other),
        };
        let mut params = rope_params(n, rope_q);
        params[9] = rope_k.n_heads;
        // A recorded step reads its position from the step buffer, not its parameters.
        let pos_buf = self.pos_from_buffer();
        if pos_buf {
            params[4] = 0;
        }
        let half = (rope_q.n_rot / 2) as usize;
        // One cache element per invocation, or a word of two halves.
        let half_kv = self.half_kv();
        let per_cache = if half_kv { n * kv_width / 2 } else { n * kv_width };
        let work = n * rope_q.n_heads as usize * half + 2 * per_cache;
        let mut bufs = vec![
            (&q.handle, q.id),
            (&k.handle, k.id),
            (&v.handle, v.id),
            (&k_cache.handle, k_cache.id),
            (&v_cache.handle, v_cache.id),
        ];
        let pre = if let Some((bq, bk, bv)) = bias {
            bufs.extend([(&bq.handle, bq.id), (&bk.handle, bk.id), (&bv.handle, bv.id)]);
            RopePre::Bias
        } else if let Some(hn) = norms {
            bufs.extend([(&hn.wq.handle, hn.wq.id), (&hn.wk.handle, hn.wk.id), (&hn.q_out.handle, hn.q_out.id)]);
            params[10] = hn.eps.to_bits();
            RopePre::Norms
        } else {
            RopePre::None
        };
        self.launch_words(Spec::RopeStore { pre, half: half_kv, pos_buf }, &bufs, &params, groups(work, 256));
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn fused_embed_norm(
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
        let (upr, bpr, ragged) = table.geometry();
        let parts = table.parts.len();
        if parts > 3 || ragged || dim != table.cols {
            self.embed(table, ids, n, scale, x);
            self.rms_norm(x, w, n, dim, eps, xn);
            return;
        }
        let rest = [(&ids.handle, ids.id), (&x.handle, x.id), (&w.handle, w.id), (&xn.handle, xn.id)];
        if parts == 1 {
            let p = &table.parts[0];
            let params =
                [u32_of(n), p.rows, u32_of(table.cols), upr, bpr, p.qoff, p.row0, scale.to_bits(), eps.to_bits()];
            let bufs = [&[(&p.handle, p.id)][..], &rest].concat();
            self.launch_words(Spec::EmbedNorm { fmt: table.fmt, split: false }, &bufs, &params, u32_of(n));
            return;
        }
        let mut params = vec![0u32; FUSED_PARAM_WORDS];
        params[..4].copy_from_slice(&[u32_of(n), 0, u32_of(table.cols), upr]);
        params[7] = scale.to_bits();
        params[20] = eps.to_bits();
        let mut bufs = Vec::new();
        for (m, (p, rows)) in three_parts(table).into_iter().enumerate() {
            params[8 + m] = rows;
            params[12 + m] = bpr;
            params[16 + m] = p.qoff;
            bufs.push((&p.handle, p.id));
        }
        bufs.extend(rest);
        self.launch_words(Spec::EmbedNorm { fmt: table.fmt, split: true }, &bufs, &params, u32_of(n));
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn fused_head_norms(
        &self,
        (q, wq, q_rows): (&GpuBuf, &GpuBuf, usize),
        (k, wk, k_rows): (&GpuBuf, &GpuBuf, usize),
        dim: usize,
        eps: f32,
        q_out: &GpuBuf,
        k_out: &GpuBuf,
    ) {
        let bufs = [
            (&q.handle, q.id),
            (&k.handle, k.id),
            (&wq.handle, wq.id),
            (&wk.handle, wk.id),
            (&q_out.handle, q_out.id),
            (&k_out.handle, k_out.id),
        ];
        let params = [u32_of(q_rows), u32_of(dim), eps.to_bits(), u32_of(k_rows)];
        self.launch_words(Spec::HeadNorms, &bufs, &params, u32_of(q_rows + k_rows));
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn fused_add_rms_norm(
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
        let mut bufs = vec![(&x.handle, x.id), (&h.handle, h.id), (&w.handle, w.id), (&out.handle, out.id)];
        if let Some(p) = pre {
            bufs.push((&p.handle, p.id));
        }
        let params = [u32_of(rows), u32_of(dim), eps.to_bits()];
        self.launch_words(Spec::AddRmsNorm { pre: pre.is_some() }, &bufs, &params, u32_of(rows));
    }
}

/// The kernels' code of an activation (see `glu_act.wgsl`).
pub(super) fn act_code(act: Activation) -> u32 {
    match act {
        Activation::Silu => 0,
        Activation::GeluTanh => 1,
    }
}

/// The parameters of the RoPE kernels (see `rope_angle.wgsl`): `n` rows of `rope.n_heads` heads; the
/// frequencies in the table from word 16 where the pairs fit.
pub(super) fn rope_params(n: usize, rope: Rope<'_>) -> Vec<u32> {
    let half = (rope.n_rot / 2) as usize;
    // Frequency factors need the per-pair table (the loader refuses more than
    // `ROPE_TABLE` pairs with factors).
    let table = super::kernel::ROPE_TABLE;
    assert!(rope.factors.is_none() || half <= table, "rope: factors for {half} pairs");
    let mut params = vec![0u32; ROPE_PARAM_WORDS];
    let log2_scale = -2.0 * f64::from(rope.base).log2() / f64::from(rope.n_rot);
    params[..9].copy_from_slice(&[
        u32_of(n),
        rope.n_heads,
        rope.head_dim,
        rope.n_rot,
        rope.pos0,
        rope.freq_scale.to_bits(),
        u32::from(rope.style == crate::infer::compute::RopeStyle::Neox),
        (log2_scale as f32).to_bits(),
        u32::from(half <= table),
    ]);
    if half <= table {
        for k in 0..half {
            let mut f = f64::from(rope.freq_scale) * (log2_scale * k as f64).exp2();
            if let Some(factors) = rope.factors {
                f /= f64::from(factors[k]);
            }
            params[super::kernel::PARAM_WORDS + k] = (f as f32).to_bits();
        }
    }
    params
}
