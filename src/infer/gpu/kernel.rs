//! Hand-written WGSL kernels as cubecl kernels: a [`Spec`] names a kernel variant, and
//! [`WgslKernel`] hands its text to cubecl as a precompiled source.
//!
//! cubecl caches compiled pipelines by [`KernelId`], never by text, so the id carries the whole
//! variant: the [`Spec`] (kernel, weight format, ragged rows, head size) and the aliasing
//! pattern of the buffers (see [`WgslKernel::new`]). The text is built only on a cache miss.

use burn::cubecl::ir::metadata::Info;
use burn::cubecl::ir::settings::Dim3;
use burn::cubecl::ir::{ElemType, UIntKind};
use burn::cubecl::prelude::{
    AddressType, CubeKernel, ExecutionMode, KernelDefinition, KernelId, KernelMetadata, KernelSettings,
    PrecompiledSource, Scope,
};

use super::layout::Fmt;
use super::wgsl;

/// What [`Spec::RopeStore`] applies to the heads before RoPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RopePre {
    None,
    /// The projections' biases.
    Bias,
    /// gemma3's RMS norm of each query and key head, the queries written to `OQ`.
    Norms,
}

/// A kernel variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spec {
    /// Zero a buffer.
    Fill,
    /// `n == 1` matmul; `tpr` lanes per row.
    Matvec {
        fmt: Fmt,
        ragged: bool,
        tpr: u32,
    },
    /// `n == 1` matmul with subgroup reductions: `rpw` rows per workgroup (see
    /// `shaders/subgroup/slot.wgsl`); needs the `subgroups` feature.
    SgMatvec {
        fmt: Fmt,
        ragged: bool,
        rpw: u32,
    },
    /// `n > 1` matmul; `half` (quantized formats only): the weight tile holds the blocks'
    /// unscaled values in f16 (needs `shader-f16`; see `shaders/tiled_f16.wgsl`).
    Tiled {
        fmt: Fmt,
        ragged: bool,
        half: bool,
    },
    /// Matmul without shared memory: each invocation computes `rb` weight rows by `xb` rows
    /// of `x`, looping over the whole row (for CPU-emulated adapters; see the module docs).
    Rows {
        fmt: Fmt,
        ragged: bool,
        rb: u32,
        xb: u32,
    },
    /// Dequantize table rows.
    Embed {
        fmt: Fmt,
        ragged: bool,
    },
    RmsNorm,
    AddBias,
    Rope,
    Copy,
    /// Packs `f32` rows into a half-precision KV cache (two halves a word).
    PackHalf,
    /// Causal attention, rows read as `vec4`s: `tpv` lanes per key row (a power of two, at
    /// least the head's `ceil(head_dim / 4)` `vec4`s up to 128), `dpt` `vec4`s per lane (1 up to
    /// 512 dims); `ragged` when the head size is not a multiple of 4 (masked `f32` loads).
    /// `split`: flash-decoding, each workgroup one range of the keys, writing a partial result
    /// that [`Spec::AttentionReduce`] merges. `half`: the KV cache holds half-precision pairs.
    /// `pos_buf`: the position comes from the step buffer `POS` (see [`Spec::pos_buf`]).
    Attention {
        ragged: bool,
        tpv: u32,
        dpt: u32,
        split: bool,
        half: bool,
        pos_buf: bool,
    },
    /// The merge of the partial results of a split [`Spec::Attention`].
    AttentionReduce {
        ragged: bool,
    },
    Glu,
    Add,
    Softcap,
    Argmax,
    /// Repetition penalty on one row.
    Penalize,
    /// One pass of the top-k (see [`TopKPass`]).
    TopK(TopKPass),
    /// Embedding rows of a table (whole units) in one buffer, or (`split`) in up to three, then
    /// their RMS norm.
    EmbedNorm {
        fmt: Fmt,
        split: bool,
    },
    /// The per-head norms of the queries and the keys.
    HeadNorms,
    /// Residual add then RMS norm; `pre`: the residual is itself normalized first (a post-norm).
    AddRmsNorm {
        pre: bool,
    },
    /// The biases or the per-head norms (`pre`), RoPE of the queries and keys, and the KV-cache
    /// write of keys and values (`half`: into a half-precision cache). `pos_buf`: as
    /// [`Spec::Attention`]'s.
    RopeStore {
        pre: RopePre,
        half: bool,
        pos_buf: bool,
    },
    /// The three projections of one row (n == 1) in one dispatch; weight `m` in format
    /// `fmts[m]`.
    Qkv {
        fmts: [Fmt; 3],
        lanes: Lanes,
    },
    /// Gate and up projections of one row (n == 1) and the gated activation in one dispatch.
    GluFused {
        fmt: Fmt,
        lanes: Lanes,
    },
}

/// The family of a fused weight kernel (one row of `x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lanes {
    /// Barrier-free, [`FUSED_RB`] rows per invocation (as [`Spec::Rows`]).
    Rows,
    /// `tpr` lanes per row and a tree reduction (as [`Spec::Matvec`]).
    Matvec(u32),
    /// One subgroup per row, `rpw` rows per workgroup (as [`Spec::SgMatvec`]).
    Subgroup(u32),
}

/// Rows per invocation of the fused Rows kernels (the blocking of [`Spec::Rows`] for n == 1).
pub const FUSED_RB: u32 = 4;

/// The two passes of a top-k (see `shaders/top_k_select.wgsl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopKPass {
    /// The maximum of every chunk of the row, into the scratch buffer.
    Chunks,
    /// The best chunks, then the best elements in them, sorted into the values and ids.
    Select,
}

/// Invocations per workgroup of the subgroup kernels.
pub const SUBGROUP_WORKGROUP: u32 = 128;

/// Words of parameters a kernel reads (`P` is `array<vec4<u32>, WORDS / 4>`).
pub const PARAM_WORDS: usize = 16;
/// The fused weight kernels' parameters: per weight `m` its rows at `8 + m`, blocks per row at
/// `12 + m`, payload offset at `16 + m`, and (`Qkv`) where its rows start in its output at `20 + m`.
pub const FUSED_PARAM_WORDS: usize = 24;
/// [`Spec::Rope`] also carries one frequency per rotated pair.
pub const ROPE_PARAM_WORDS: usize = PARAM_WORDS + ROPE_TABLE;
/// Pairs whose frequencies fit in [`Spec::Rope`]'s parameters.
pub const ROPE_TABLE: usize = 128;

impl Spec {
    /// The storage buffers, in binding order: (name in the WGSL, element type).
    pub fn buffers(self) -> &'static [(&'static str, &'static str)] {
        const ACT4: &str = "vec4<f32>";
        // Four halves of a half-precision KV cache.
        const HALF4: &str = "vec2<u32>";
        match self {
            Spec::Fill => &[("O", "u32")],
            Spec::Matvec { ragged: false, .. }
            | Spec::SgMatvec { ragged: false, .. }
            | Spec::Tiled { ragged: false, .. }
            | Spec::Rows { ragged: false, .. } => &[("W", "u32"), ("X", ACT4), ("O", "f32")],
            Spec::Matvec { ragged: true, .. }
            | Spec::SgMatvec { ragged: true, .. }
            | Spec::Tiled { ragged: true, .. }
            | Spec::Rows { ragged: true, .. } => &[("W", "u32"), ("X", "f32"), ("O", "f32")],
            Spec::Embed { ragged: false, .. } => &[("W", "u32"), ("IDS", "u32"), ("O", ACT4)],
            Spec::Embed { ragged: true, .. } => &[("W", "u32"), ("IDS", "u32"), ("O", "f32")],
            Spec::RmsNorm => &[("X", "f32"), ("G", "f32"), ("O", "f32")],
            Spec::AddBias => &[("X", "f32"), ("B", "f32")],
            Spec::Rope | Spec::Softcap => &[("X", "f32")],
            Spec::Copy => &[("S", "f32"), ("D", "f32")],
            Spec::PackHalf => &[("S", "f32"), ("D", "u32")],
            Spec::Attention { ragged: false, split: false, half: false, .. } => {
                &[("Q", ACT4), ("K", ACT4), ("V", ACT4), ("O", ACT4)]
            }
            Spec::Attention { ragged: true, split: false, half: false, .. } => {
                &[("Q", "f32"), ("K", "f32"), ("V", "f32"), ("O", "f32")]
            }
            Spec::Attention { ragged: false, split: true, half: false, .. } => {
                &[("Q", ACT4), ("K", ACT4), ("V", ACT4), ("PO", ACT4), ("PML", "f32")]
            }
            Spec::Attention { ragged: true, split: true, half: false, .. } => {
                &[("Q", "f32"), ("K", "f32"), ("V", "f32"), ("PO", ACT4), ("PML", "f32")]
            }
            Spec::Attention { ragged: false, split: false, half: true, .. } => {
                &[("Q", ACT4), ("K", HALF4), ("V", HALF4), ("O", ACT4)]
            }
            Spec::Attention { ragged: true, split: false, half: true, .. } => {
                &[("Q", "f32"), ("K", "u32"), ("V", "u32"), ("O", "f32")]
            }
            Spec::Attention { ragged: false, split: true, half: true, .. } => {
                &[("Q", ACT4), ("K", HALF4), ("V", HALF4), ("PO", ACT4), ("PML", "f32")]
            }
            Spec::Attention { ragged: true, split: true, half: true, .. } => {
                &[("Q", "f32"), ("K", "u32"), ("V", "u32"), ("PO", ACT4), ("PML", "f32")]
            }
            Spec::AttentionReduce { ragged: false } => &[("PO", ACT4), ("PML", "f32"), ("O", ACT4)],
            Spec::AttentionReduce { ragged: true } => &[("PO", ACT4), ("PML", "f32"), ("O", "f32")],
            Spec::Glu => &[("G", "f32"), ("U", "f32"), ("O", "f32")],
            Spec::Add => &[("D", "f32"), ("S", "f32")],
            Spec::Argmax | Spec::Penalize => &[("X", "f32"), ("I", "u32")],
            Spec::TopK(TopKPass::Chunks) => &[("X", "f32"), ("M", "u32")],
            Spec::TopK(TopKPass::Select) => &[("X", "f32"), ("M", "u32"), ("V", "f32"), ("O", "u32")],
            Spec::AddRmsNorm { pre: false } => &[("X", "f32"), ("H", "f32"), ("G", "f32"), ("O", "f32")],
            Spec::AddRmsNorm { pre: true } => &[("X", "f32"), ("H", "f32"), ("G", "f32"), ("O", "f32"), ("PRE", "f32")],
            Spec::RopeStore { pre, half, .. } => {
                const F32_CACHE: [(&str, &str); 5] =
                    [("Q", "f32"), ("K", "f32"), ("V", "f32"), ("KC", "f32"), ("VC", "f32")];
                const F16_CACHE: [(&str, &str); 5] =
                    [("Q", "f32"), ("K", "f32"), ("V", "f32"), ("KC", "u32"), ("VC", "u32")];
                const BIAS: [(&str, &str); 3] = [("BQ", "f32"), ("BK", "f32"), ("BV", "f32")];
                const NORMS: [(&str, &str); 3] = [("GQ", "f32"), ("GK", "f32"), ("OQ", "f32")];
                const ALL: [[(&str, &str); 8]; 4] = [
                    concat8(F32_CACHE, BIAS),
                    concat8(F32_CACHE, NORMS),
                    concat8(F16_CACHE, BIAS),
                    concat8(F16_CACHE, NORMS),
                ];
                let cache = usize::from(half);
                match pre {
                    RopePre::None => &ALL[2 * cache][..5],
                    RopePre::Bias => &ALL[2 * cache],
                    RopePre::Norms => &ALL[2 * cache + 1],
                }
            }
            Spec::Qkv { .. } => {
                &[("W0", "u32"), ("W1", "u32"), ("W2", "u32"), ("X", ACT4), ("O0", "f32"), ("O1", "f32"), ("O2", "f32")]
            }
            Spec::GluFused { .. } => &[("W0", "u32"), ("W1", "u32"), ("X", ACT4), ("O", "f32")],
            Spec::HeadNorms => {
                &[("Q", "f32"), ("K", "f32"), ("GQ", "f32"), ("GK", "f32"), ("OQ", "f32"), ("OK", "f32")]
            }
            Spec::EmbedNorm { split: false, .. } => {
                &[("W", "u32"), ("IDS", "u32"), ("O", ACT4), ("G", "f32"), ("XN", "f32")]
            }
            Spec::EmbedNorm { split: true, .. } => {
                &[("W0", "u32"), ("W1", "u32"), ("W2", "u32"), ("IDS", "u32"), ("O", ACT4), ("G", "f32"), ("XN", "f32")]
            }
        }
    }

    /// Threads per workgroup.
    pub fn workgroup(self) -> u32 {
        match self {
            Spec::Embed { .. } | Spec::Rows { .. } | Spec::RmsNorm | Spec::AddRmsNorm { .. } => 64,
            Spec::EmbedNorm { .. } | Spec::HeadNorms | Spec::AttentionReduce { .. } => 64,
            Spec::Qkv { lanes: Lanes::Rows, .. } | Spec::GluFused { lanes: Lanes::Rows, .. } => 64,
            Spec::Attention { .. } => 128,
            Spec::SgMatvec { .. } => SUBGROUP_WORKGROUP,
            Spec::Qkv { lanes: Lanes::Subgroup(_), .. } | Spec::GluFused { lanes: Lanes::Subgroup(_), .. } => {
                SUBGROUP_WORKGROUP
            }
            _ => 256,
        }
    }

    /// Parameter words the kernel declares.
    pub fn param_words(self) -> usize {
        match self {
            Spec::Rope | Spec::RopeStore { .. } => ROPE_PARAM_WORDS,
            Spec::Qkv { .. } | Spec::GluFused { .. } | Spec::EmbedNorm { split: true, .. } => FUSED_PARAM_WORDS,
            _ => PARAM_WORDS,
        }
    }

    /// Whether the variant reads the step's position from a storage buffer `POS` of one word,
    /// bound after [`Spec::buffers`], instead of its parameters: so that a recorded decode step
    /// replays at any position (see `Gpu`'s decode graphs).
    pub fn pos_buf(self) -> bool {
        matches!(self, Spec::Attention { pos_buf: true, .. } | Spec::RopeStore { pos_buf: true, .. })
    }

    /// Whether the variant needs the `subgroups` feature.
    pub fn uses_subgroups(self) -> bool {
        matches!(
            self,
            Spec::SgMatvec { .. }
                | Spec::Qkv { lanes: Lanes::Subgroup(_), .. }
                | Spec::GluFused { lanes: Lanes::Subgroup(_), .. }
        )
    }

    /// The WGSL directives in front of the variant on a WebGPU implementation (`browser`) or
    /// on wgpu's own (naga): the extensions it uses, enabled only there. WGSL requires `enable
    /// subgroups;` and the browsers' compilers enforce it, while naga (30) rejects the directive
    /// and gates subgroup operations by the device's features instead. The subgroup kernels hand
    /// rows to subgroups by a subgroup-uniform index that WGSL's uniformity analysis cannot see,
    /// so in the browser they also turn its subgroup rule off.
    ///
    /// The f16 variants say `enable f16;` everywhere (naga requires it too).
    pub fn directives(self, browser: bool) -> &'static str {
        if self.uses_f16() {
            "enable f16;\n"
        } else if self.uses_subgroups() && browser {
            "enable subgroups;\ndiagnostic(off, subgroup_uniformity);\n"
        } else {
            ""
        }
    }

    /// Whether the variant uses f16 values (the `shader-f16` feature).
    pub fn uses_f16(self) -> bool {
        matches!(self, Spec::Tiled { half: true, .. })
    }

    /// The complete WGSL for this variant, where buffer `i` is bound as buffer `alias[i]`
    /// (`alias[i] == i` for a buffer bound on its own; `alias[i] < i` for one that is the same
    /// buffer as an earlier one, which is then declared once and named by the earlier name).
    pub fn source(self, alias: &[u8]) -> String {
        self.source_for(alias, cfg!(target_arch = "wasm32"))
    }

    /// [`Spec::source`] for a browser's WebGPU (`browser`) or for wgpu's own (see
    /// [`Spec::directives`]).
    pub fn source_for(self, alias: &[u8], browser: bool) -> String {
        let bufs = self.buffers();
        let mut head = String::from(self.directives(browser));
        let mut body = wgsl::body(self);
        let alias_of = |i: usize| alias.get(i).map_or(i, |&a| a as usize);
        for (i, &(name, _)) in bufs.iter().enumerate() {
            if alias_of(i) != i {
                body = replace_ident(&body, name, bufs[alias_of(i)].0);
            }
        }
        let mut binding = 0;
        for (i, &(name, ty)) in bufs.iter().enumerate() {
            if alias_of(i) == i {
                let access = if writes(&body, name) { "read_write" } else { "read" };
                head += &format!("@group(0) @binding({binding}) var<storage, {access}> {name}: array<{ty}>;\n");
                binding += 1;
            }
        }
        if self.pos_buf() {
            head += &format!("@group(0) @binding({binding}) var<storage, read> POS: array<u32>;\n");
            binding += 1;
        }
        head +=
            &format!("@group(0) @binding({binding}) var<uniform> P: array<vec4<u32>, {}>;\n", self.param_words() / 4);
        head + &body
    }
}

/// Five buffers then three, as one list (for the static buffer lists of [`Spec::RopeStore`]).
const fn concat8(
    a: [(&'static str, &'static str); 5],
    b: [(&'static str, &'static str); 3],
) -> [(&'static str, &'static str); 8] {
    [a[0], a[1], a[2], a[3], a[4], b[0], b[1], b[2]]
}

/// Whether WGSL `src` may write to the storage array `name`: an element of it (or a part of one,
/// `name[i].x`, `name[i][j]`) is assigned, compound-assigned, incremented or decremented, or its
/// address is taken (for an atomic, say). [`Spec::source`] declares the others `read`.
pub fn writes(src: &str, name: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(found) = src[from..].find(name) {
        let start = from + found;
        let mut at = start + name.len();
        from = at;
        if src[..start].chars().next_back().is_some_and(is_ident) || src[at..].chars().next().is_some_and(is_ident) {
            continue;
        }
        if src[..start].trim_end().ends_with('&') {
            return true;
        }
        // Past the indices and members that follow the name.
        loop {
            let rest = src[at..].trim_start();
            at = src.len() - rest.len();
            if rest.starts_with('[') {
                let mut depth = 0;
                let close = rest.char_indices().find(|&(_, c)| {
                    depth += i32::from(c == '[') - i32::from(c == ']');
                    depth == 0
                });
                match close {
                    Some((i, _)) => at += i + 1,
                    None => return true,
                }
            } else if let Some(member) = rest.strip_prefix('.') {
                at += 1 + member.find(|c: char| !is_ident(c)).unwrap_or(member.len());
            } else {
                break;
            }
        }
        let assigned = match src[at..].trim_start().as_bytes() {
            [b'=', b'=', ..] => false,
            [b'=', ..] => true,
            [a @ (b'+' | b'-'), b, ..] if a == b => true,
            [a @ (b'<' | b'>'), b, b'=', ..] if a == b => true,
            [b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'|' | b'^', b'=', ..] => true,
            _ => false,
        };
        if assigned {
            return true;
        }
    }
    false
}

/// `src` with every whole-identifier occurrence of `from` replaced by `to`.
pub fn replace_ident(src: &str, from: &str, to: &str) -> String {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(pos) = rest.find(from) {
        let before = rest[..pos].chars().next_back();
        let after = rest[pos + from.len()..].chars().next();
        out += &rest[..pos];
        if before.is_some_and(is_ident) || after.is_some_and(is_ident) {
            out += from;
        } else {
            out += to;
        }
        rest = &rest[pos + from.len()..];
    }
    out + rest
}

/// Most storage buffers a kernel binds (8 of its own, and the position buffer of a recorded
/// decode step's; see [`Spec::pos_buf`]).
pub const MAX_BUFFERS: usize = 9;

/// A [`Spec`] launched through cubecl with its own WGSL.
#[derive(Debug)]
pub struct WgslKernel {
    spec: Spec,
    alias: [u8; MAX_BUFFERS],
}

impl WgslKernel {
    /// The kernel for `spec` with buffer `i` bound as buffer `alias[i]`.
    pub fn new(spec: Spec, alias: [u8; MAX_BUFFERS]) -> WgslKernel {
        WgslKernel { spec, alias }
    }

    fn settings(&self) -> KernelSettings {
        KernelSettings::new(Dim3::new_1d(self.spec.workgroup()), ExecutionMode::Checked, AddressType::U32)
    }
}

impl KernelMetadata for WgslKernel {
    fn id(&self) -> KernelId {
        KernelId::new::<Self>().info((self.spec, self.alias)).cube_dim(Dim3::new_1d(self.spec.workgroup()))
    }

    fn address_type(&self) -> ElemType {
        ElemType::UInt(UIntKind::U32)
    }
}

impl CubeKernel for WgslKernel {
    fn define(&self) -> KernelDefinition {
        let settings = self.settings();
        KernelDefinition { body: Scope::root(settings.clone()), settings, info: Info::default() }
    }

    fn source(&self) -> Option<PrecompiledSource> {
        Some(PrecompiledSource {
            source: self.spec.source(&self.alias),
            entrypoint_name: "k_main".to_string(),
            lang: "wgsl",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_replaced_whole() {
        assert_eq!(replace_ident("O[i] = X[i] + OX + O_ + mO;", "O", "X"), "X[i] = X[i] + OX + O_ + mO;");
    }

    #[test]
    fn a_buffer_is_written_where_an_element_is_assigned_or_its_address_taken() {
        for src in
            ["O[i] = 1.0;", "O[i].x += v;", "O [ i ] [j]++;", "O[a[b]] >>= 1u;", "atomicAdd(&O[0], 1u);", "O[i]--;"]
        {
            assert!(writes(src, "O"), "{src}");
        }
        for src in
            ["let a = O[i] == b;", "if O[i] <= a {}", "x = O[i] - -1.0;", "FO[i] = 1.0;", "O_[i] = 1.0;", "y = O[i].x;"]
        {
            assert!(!writes(src, "O"), "{src}");
        }
    }

    #[test]
    fn a_buffer_only_read_is_declared_read() {
        let src = Spec::RmsNorm.source(&[0, 1, 2]);
        assert!(src.contains("var<storage, read> X"), "{src}");
        assert!(src.contains("var<storage, read> G"), "{src}");
        assert!(src.contains("var<storage, read_write> O"), "{src}");
        // In place, X is O, written.
        assert!(Spec::RmsNorm.source(&[0, 1, 0]).contains("var<storage, read_write> X"));
    }

    #[test]
    fn an_aliased_buffer_is_declared_once() {
        let src = Spec::RmsNorm.source(&[0, 1, 0, 3]);
        assert_eq!(src.matches("var<storage").count(), 2);
        assert!(src.contains("@binding(2) var<uniform> P"));
        assert!(!src.contains("O[off"));
    }

    /// Every variant the engine can launch (bounded where a parameter is open-ended).
    #[cfg(not(target_arch = "wasm32"))]
    fn all_specs() -> Vec<Spec> {
        let fmts = [Fmt::F32, Fmt::F16, Fmt::Q4_0, Fmt::Q4_1, Fmt::Q5_0, Fmt::Q8_0, Fmt::Q4K, Fmt::Q6K];
        let mut v = vec![
            Spec::Fill,
            Spec::RmsNorm,
            Spec::AddBias,
            Spec::Rope,
            Spec::Copy,
            Spec::PackHalf,
            Spec::Glu,
            Spec::Add,
            Spec::Softcap,
            Spec::Argmax,
            Spec::Penalize,
            Spec::TopK(TopKPass::Chunks),
            Spec::TopK(TopKPass::Select),
            Spec::AddRmsNorm { pre: false },
            Spec::AddRmsNorm { pre: true },
            Spec::HeadNorms,
        ];
        for pos_buf in [false, true] {
            for half in [false, true] {
                for pre in [RopePre::None, RopePre::Bias, RopePre::Norms] {
                    v.push(Spec::RopeStore { pre, half, pos_buf });
                }
            }
        }
        let lanes = [
            Lanes::Rows,
            Lanes::Matvec(4),
            Lanes::Matvec(8),
            Lanes::Matvec(16),
            Lanes::Matvec(32),
            Lanes::Subgroup(1),
            Lanes::Subgroup(4),
            Lanes::Subgroup(32),
        ];
        for lanes in lanes {
            for fmt in fmts {
                v.push(Spec::Qkv { fmts: [fmt; 3], lanes });
                v.push(Spec::GluFused { fmt, lanes });
            }
            v.extend(fmts.map(|fmt| Spec::EmbedNorm { fmt, split: false }));
            v.extend(fmts.map(|fmt| Spec::EmbedNorm { fmt, split: true }));
            // Mixed formats, as in the Q4_K_M and Q5_0 files.
            v.push(Spec::Qkv { fmts: [Fmt::Q4K, Fmt::Q4K, Fmt::Q6K], lanes });
            v.push(Spec::Qkv { fmts: [Fmt::Q5_0, Fmt::Q5_0, Fmt::Q8_0], lanes });
            v.push(Spec::Qkv { fmts: [Fmt::Q8_0, Fmt::F16, Fmt::Q4_1], lanes });
        }
        for fmt in fmts {
            for ragged in [false, true] {
                if ragged && !fmt.is_plain() {
                    continue;
                }
                for tpr in [4, 8, 16, 32] {
                    v.push(Spec::Matvec { fmt, ragged, tpr });
                }
                for rpw in [1, 4, 16, 32] {
                    v.push(Spec::SgMatvec { fmt, ragged, rpw });
                }
                v.push(Spec::Tiled { fmt, ragged, half: false });
                if !fmt.is_plain() {
                    v.push(Spec::Tiled { fmt, ragged, half: true });
                }
                for (rb, xb) in [(4, 1), (4, 2), (4, 3), (4, 4)] {
                    v.push(Spec::Rows { fmt, ragged, rb, xb });
                }
                v.push(Spec::Embed { fmt, ragged });
            }
        }
        for ragged in [false, true] {
            for (split, half) in [(false, false), (true, false), (false, true), (true, true)] {
                for pos_buf in [false, true] {
                    for tpv in [1, 2, 4, 8, 16, 32, 64, 128] {
                        v.push(Spec::Attention { ragged, tpv, dpt: 1, split, half, pos_buf });
                    }
                    for dpt in 2..=4 {
                        v.push(Spec::Attention { ragged, tpv: 128, dpt, split, half, pos_buf });
                    }
                }
            }
            v.push(Spec::AttentionReduce { ragged });
        }
        v
    }

    /// Every aliasing pattern of `spec`'s buffers (a later buffer may be an earlier one of the
    /// same element type).
    #[cfg(not(target_arch = "wasm32"))]
    fn all_aliases(spec: Spec) -> Vec<[u8; MAX_BUFFERS]> {
        let bufs = spec.buffers();
        let mut out = vec![[0, 1, 2, 3, 4, 5, 6, 7, 8]];
        // The engine never passes one buffer twice to these (distinct weights, activations
        // and caches); `launch` would still compose the aliased source if it did.
        if matches!(
            spec,
            Spec::Qkv { .. }
                | Spec::GluFused { .. }
                | Spec::RopeStore { .. }
                | Spec::EmbedNorm { .. }
                | Spec::HeadNorms
        ) {
            return out;
        }
        for i in 1..bufs.len() {
            let mut next = Vec::new();
            for a in &out {
                for j in 0..i {
                    if a[j] as usize == j && bufs[j].1 == bufs[i].1 {
                        let mut b = *a;
                        b[i] = j as u8;
                        next.push(b);
                    }
                }
            }
            out.extend(next);
        }
        out
    }

    /// Every source the engine can launch is valid WGSL that needs no extension but the one
    /// its family is for (`subgroups` for the subgroup kernels, enabled in their source only).
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn every_variant_parses_and_validates() {
        use burn_wgpu::wgpu::naga;
        use naga::valid::{Capabilities, ShaderStages, SubgroupOperationSet};
        let mut n = 0;
        let mut subgroup = 0;
        for spec in all_specs() {
            // `unpack2x16float` (core WGSL) is a capability to naga: wgpu grants it on every
            // adapter the backend accepts (see `Backend::webgpu`).
            let f16_in_f32 = Capabilities::SHADER_FLOAT16_IN_FLOAT32;
            let mut caps = if spec.uses_subgroups() { Capabilities::SUBGROUP | f16_in_f32 } else { f16_in_f32 };
            if spec.uses_f16() {
                caps |= Capabilities::SHADER_FLOAT16;
            }
            subgroup += usize::from(spec.uses_subgroups());
            for alias in all_aliases(spec) {
                let src = spec.source(&alias);
                assert_eq!(src.contains("enable "), spec.uses_f16(), "{spec:?}: naga takes only `enable f16;`");
                assert_eq!(spec.directives(true).contains("enable subgroups;"), spec.uses_subgroups(), "{spec:?}");
                let module = naga::front::wgsl::parse_str(&src)
                    .unwrap_or_else(|e| panic!("{spec:?} {alias:?}: {}\n{src}", e.emit_to_string(&src)));
                let validate = |module: &naga::Module, src: &str| {
                    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
                        .subgroup_stages(ShaderStages::COMPUTE)
                        .subgroup_operations(SubgroupOperationSet::all())
                        .validate(module)
                        .map(drop)
                        .map_err(|e| e.emit_to_string(src))
                };
                validate(&module, &src).unwrap_or_else(|e| panic!("{spec:?} {alias:?}: {e}\n{src}"));
                // No buffer is writable that the kernel only reads: declared `read`, each
                // `read_write` one fails validation.
                for (at, _) in src.match_indices("read_write>") {
                    let read = format!("{}read{}", &src[..at], &src[at + "read_write".len()..]);
                    let module = naga::front::wgsl::parse_str(&read).expect("parses");
                    assert!(validate(&module, &read).is_err(), "{spec:?} {alias:?}: only reads {}", &src[at..at + 16]);
                }
                n += 1;
            }
        }
        assert!(n > 200, "{n} sources");
        assert!(subgroup > 50, "{subgroup} subgroup variants");
        // For the browser's compiler (tests/js/wgsl.test.mjs): every variant as a browser gets it.
        if let Some(dir) = std::env::var_os("HEARTH_DUMP_WGSL") {
            let dir = std::path::PathBuf::from(dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (i, spec) in all_specs().into_iter().enumerate() {
                let src = format!("// {spec:?}\n{}", spec.source_for(&[0, 1, 2, 3, 4, 5, 6, 7, 8], true));
                std::fs::write(dir.join(format!("{i:04}.wgsl")), src).unwrap();
            }
        }
    }
}
