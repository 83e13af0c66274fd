//! Attention on the GPU: one workgroup per (query row, head) over the whole context, or, for a
//! decoded token with a long context, flash-decoding: the keys split into ranges, one workgroup
//! per (range, head) writing a partial result (unnormalized output, running max and sum), then a
//! merge of the ranges (`shaders/attention.wgsl`, `shaders/attention_reduce.wgsl`). With a few
//! heads and thousands of keys, one workgroup per head leaves most of a GPU idle; the split keeps
//! every head's work spread over up to [`MAX_PARTS`] workgroups.

use std::sync::Mutex;
use std::sync::atomic::Ordering;

use super::kernel::Spec;
use super::{Gpu, GpuBuf, u32_of};
use crate::infer::compute::Attention;

/// Most key ranges flash-decoding splits a (row, head) into.
pub const MAX_PARTS: u32 = 32;

/// When a decoded token's attention is split ([`Gpu::set_flash_decoding`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flash {
    /// Split only from this many keys on (`u32::MAX`: never).
    pub min_keys: u32,
    /// The smallest range of keys one workgroup takes (the ranges made for long contexts are
    /// whole tiles of 128 keys; a smaller minimum is for tests on short contexts).
    pub min_chunk: u32,
}

impl Flash {
    /// The default on a GPU: from 1024 keys, ranges of at least 256.
    pub const GPU: Flash = Flash { min_keys: 1024, min_chunk: 256 };
    /// The default on a CPU adapter, never: its few threads are busy with one workgroup per
    /// head already, and the merge is pure overhead there (measured on lavapipe, see
    /// docs/PERFORMANCE.md).
    pub const CPU: Flash = Flash { min_keys: u32::MAX, min_chunk: 256 };

    /// `(parts, chunk)` for `keys` keys: the ranges and their length, or `None` to not split.
    pub fn split(self, keys: u32) -> Option<(u32, u32)> {
        if keys < self.min_keys.max(2) {
            return None;
        }
        let chunk = keys.div_ceil(MAX_PARTS).max(self.min_chunk.max(1));
        let chunk = if chunk >= 128 { chunk.next_multiple_of(128) } else { chunk };
        let parts = keys.div_ceil(chunk);
        (parts > 1).then_some((parts, chunk))
    }
}

/// The partial results of flash-decoding: `vec4` outputs and (max, sum) pairs, grown to the
/// largest (rows x heads x head `vec4`s) seen, never shrunk.
#[derive(Default)]
pub(super) struct Scratch {
    bufs: Option<(GpuBuf, GpuBuf)>,
}

pub(super) type ScratchSlot = Mutex<Scratch>;

impl Gpu {
    /// Sets when a decoded token's attention is split over the context (flash-decoding; the
    /// default is [`Flash::GPU`] or, on a CPU adapter, [`Flash::CPU`]). For tests and benchmarks:
    /// both ways give the same result.
    pub fn set_flash_decoding(&self, flash: Flash) {
        self.flash_min_keys.store(flash.min_keys, Ordering::Relaxed);
        self.flash_min_chunk.store(flash.min_chunk, Ordering::Relaxed);
    }

    /// When a decoded token's attention is split (see [`Gpu::set_flash_decoding`]).
    pub fn flash_decoding(&self) -> Flash {
        Flash {
            min_keys: self.flash_min_keys.load(Ordering::Relaxed),
            min_chunk: self.flash_min_chunk.load(Ordering::Relaxed),
        }
    }

    /// Whether the KV caches hold half-precision pairs ([`crate::infer::Compute::set_kv_cache`]).
    pub(super) fn half_kv(&self) -> bool {
        self.half_kv.load(Ordering::Relaxed)
    }

    /// [`crate::infer::Compute::attention`].
    pub(super) fn launch_attention(&self, q: &GpuBuf, k: &GpuBuf, v: &GpuBuf, n: usize, a: Attention, out: &GpuBuf) {
        // Lanes per key row: one per `vec4` of the head, rounded up to a power of two, up to 128;
        // past 512 dims every lane holds several.
        let vecs = a.head_dim.div_ceil(4).max(1);
        let (tpv, dpt) = if vecs <= 128 { (vecs.next_power_of_two(), 1) } else { (128, vecs.div_ceil(128)) };
        let ragged = !a.head_dim.is_multiple_of(4);
        // A recorded step reads its position from the step buffer, not its parameters.
        let pos_buf = self.pos_from_buffer();
        let pos0 = if pos_buf { 0 } else { a.pos0 };
        let mut params = vec![u32_of(n), a.n_head, a.n_head_kv, a.head_dim, pos0, a.scale.to_bits(), a.window];
        let split = if n == 1 { self.flash_decoding().split(decode_keys(a.pos0, a.window)) } else { None };
        self.record_split(a.window, split);
        let qkv = [(&q.handle, q.id), (&k.handle, k.id), (&v.handle, v.id)];
        let Some((parts, chunk)) = split else {
            let spec = Spec::Attention { ragged, tpv, dpt, split: false, half: self.half_kv(), pos_buf };
            let bufs = [qkv[0], qkv[1], qkv[2], (&out.handle, out.id)];
            self.launch(spec, &bufs, &params, u32_of(n) * a.n_head);
            return;
        };
        let (po, pml) = self.attention_scratch(a.n_head as usize * MAX_PARTS as usize, vecs as usize);
        params.extend([parts, chunk]);
        let spec = Spec::Attention { ragged, tpv, dpt, split: true, half: self.half_kv(), pos_buf };
        let bufs = [qkv[0], qkv[1], qkv[2], (&po.handle, po.id), (&pml.handle, pml.id)];
        self.launch(spec, &bufs, &params, a.n_head * parts);
        let bufs = [(&po.handle, po.id), (&pml.handle, pml.id), (&out.handle, out.id)];
        self.launch(Spec::AttentionReduce { ragged }, &bufs, &params, (a.n_head * vecs).div_ceil(64));
    }

    /// The partial-result buffers for `slots` (row, head, range) triples of `vecs` `vec4`s each.
    /// A recorded step keeps them ([`Gpu::record_launch`]), so growing them here never frees
    /// what a recording binds.
    fn attention_scratch(&self, slots: usize, vecs: usize) -> (GpuBuf, GpuBuf) {
        let mut scratch = self.attn_scratch.lock().unwrap_or_else(|e| e.into_inner());
        let fits = scratch.bufs.as_ref().is_some_and(|(po, pml)| po.len >= slots * vecs * 4 && pml.len >= slots * 2);
        if !fits {
            let (old_po, old_pml) = scratch.bufs.as_ref().map_or((0, 0), |(po, pml)| (po.len, pml.len));
            let po_len = (slots * vecs * 4).max(old_po);
            let pml_len = (slots * 2).max(old_pml);
            let buf = |len: usize| GpuBuf { handle: self.empty(len * 4), len, id: self.id() };
            scratch.bufs = Some((buf(po_len), buf(pml_len)));
        }
        scratch.bufs.clone().expect("allocated above")
    }
}

/// The keys a decoded token at `pos` sees: its position and those before, within `window`
/// (0: no window).
pub(super) fn decode_keys(pos: u32, window: u32) -> u32 {
    if window > 0 { (pos + 1).min(window) } else { pos + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_is_split_into_whole_tiles_only_past_the_threshold() {
        let f = Flash { min_keys: 1024, min_chunk: 256 };
        assert_eq!(f.split(1023), None);
        assert_eq!(f.split(1024), Some((4, 256)));
        assert_eq!(f.split(1025), Some((5, 256)));
        // Long contexts: at most MAX_PARTS ranges, each a multiple of 128 keys.
        let (parts, chunk) = f.split(100_000).unwrap();
        assert!(parts <= MAX_PARTS && chunk.is_multiple_of(128) && parts * chunk >= 100_000);
        assert_eq!(Flash::CPU.split(u32::MAX - 1), None);
        // Ranges are whole tiles unless the minimum says less; one range is no split.
        assert_eq!(Flash { min_keys: 1, min_chunk: 8 }.split(40), Some((5, 8)));
        assert_eq!(Flash { min_keys: 1, min_chunk: 1 }.split(129), Some((26, 5)));
        assert_eq!(Flash { min_keys: 1, min_chunk: 128 }.split(129), Some((2, 128)));
        assert_eq!(Flash { min_keys: 1, min_chunk: 100 }.split(100), None);
    }
}
