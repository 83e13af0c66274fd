//! The WGSL of every kernel variant (see [`super::kernel::Spec`]), composed from the files in
//! `shaders/`.
//!
//! A variant's source is its storage buffers and `P` (declared by `Spec::source`), then
//! `common.wgsl`, the variant's numbers as WGSL `const`s (`TPR`, `RB`, `TPV`, ...), and the
//! files of its family, concatenated: each file is a list of WGSL declarations that may use what
//! an earlier one declares. Families share pieces rather than copy them:
//! - the weight kernels (`matvec`, `tiled`, `rows`, `embed`) are a decoder from `decode/` + an
//!   activation load or store from `act/` (whole `vec4`s, or masked for ragged rows) + their
//!   entry point. A decoder defines `unit(rl, u)`, unit `u` (eight weights: two runs of four
//!   columns, see `Unit` in `common.wgsl`) of part-local row `rl`, and `unit_pos(u)`, the columns
//!   of unit `u` without reading the weight; a row has `prm(3)` units. Weight parameters:
//!   `prm(1)` rows in this part, `prm(2)` columns, `prm(3)` units per row, `prm(4)` blocks per
//!   row, `prm(5)` word offset of the payloads;
//! - the element-wise kernels are one `ops/*.wgsl` (`fn op(g)`) + `elementwise.wgsl`;
//! - attention is one kernel for every head size: `attention.wgsl` + the head loads of
//!   `attention_io.wgsl` (`vec4`s) or `attention_io_ragged.wgsl` (masked);
//! - the two top-k passes share `order_key.wgsl`.
//!
//! The one transformation besides concatenation: `rows.wgsl` and `attention.wgsl` mark blocks
//! to unroll with `//#for <v>` ... `//#end` (see [`unroll`]), so that their accumulators are
//! registers (`a0_0`, `acc0`, ...), not a private array that a CPU-emulated adapter may keep in
//! memory.
//!
//! A storage buffer is declared `read` unless the variant writes it ([`super::kernel::writes`]):
//! every buffer is its own device allocation and one bound twice is declared once, so a dispatch
//! never binds one buffer both read-only and writable.

use std::fmt::Write;

use super::kernel::{FUSED_RB, Lanes, RopePre, Spec, TopKPass, replace_ident};
use super::layout::Fmt;

macro_rules! shader {
    ($path:literal) => {
        include_str!(concat!("shaders/", $path))
    };
}

const COMMON: &str = shader!("common.wgsl");

const POS_PLAIN: &str = shader!("decode/pos_plain.wgsl");
const POS_Q32: &str = shader!("decode/pos_q32.wgsl");
const SCALE: &str = shader!("decode/scale.wgsl");
const F32: &str = shader!("decode/f32.wgsl");
const F16: &str = shader!("decode/f16.wgsl");
const ELEM_F32: &str = shader!("decode/elem_f32.wgsl");
const ELEM_F16: &str = shader!("decode/elem_f16.wgsl");
const RAGGED: &str = shader!("decode/ragged.wgsl");
const Q4_0: &str = shader!("decode/q4_0.wgsl");
const Q4_1: &str = shader!("decode/q4_1.wgsl");
const Q5_0: &str = shader!("decode/q5_0.wgsl");
const Q8_0: &str = shader!("decode/q8_0.wgsl");
const UNBLOCKED: &str = shader!("decode/unblocked.wgsl");
const Q4_K: &str = shader!("decode/q4_k.wgsl");
const Q6_K: &str = shader!("decode/q6_k.wgsl");

const LOAD: &str = shader!("act/load.wgsl");
const LOAD_RAGGED: &str = shader!("act/load_ragged.wgsl");
const STORE: &str = shader!("act/store.wgsl");
const STORE_RAGGED: &str = shader!("act/store_ragged.wgsl");

const MATVEC: &str = shader!("matvec.wgsl");
const TILED: &str = shader!("tiled.wgsl");
const TILED_F16: &str = shader!("tiled_f16.wgsl");
const TILE_OUT: &str = shader!("tile_out.wgsl");
const ROWS: &str = shader!("rows.wgsl");
const EMBED: &str = shader!("embed.wgsl");

const SG_SLOT: &str = shader!("subgroup/slot.wgsl");
const SG_MATVEC: &str = shader!("subgroup/matvec.wgsl");
const SG_QKV: &str = shader!("subgroup/qkv.wgsl");
const SG_GLU: &str = shader!("subgroup/glu.wgsl");

const ELEMENTWISE: &str = shader!("elementwise.wgsl");
const FILL: &str = shader!("ops/fill.wgsl");
const ADD_BIAS: &str = shader!("ops/add_bias.wgsl");
const ADD: &str = shader!("ops/add.wgsl");
const SOFTCAP: &str = shader!("ops/softcap.wgsl");
const COPY: &str = shader!("ops/copy.wgsl");
const PACK_F16: &str = shader!("ops/pack_f16.wgsl");
const KV_F16: &str = shader!("kv_f16.wgsl");
const GLU: &str = shader!("ops/glu.wgsl");
const ROPE: &str = shader!("ops/rope.wgsl");
const PENALIZE: &str = shader!("ops/penalize.wgsl");

const RMS_NORM: &str = shader!("rms_norm.wgsl");
const ATTENTION: &str = shader!("attention.wgsl");
const ATTENTION_IO: &str = shader!("attention_io.wgsl");
const ATTENTION_IO_RAGGED: &str = shader!("attention_io_ragged.wgsl");
const ATTENTION_IO_F16: &str = shader!("attention_io_f16.wgsl");
const ATTENTION_IO_RAGGED_F16: &str = shader!("attention_io_ragged_f16.wgsl");
const ATTENTION_STORE: &str = shader!("attention_store.wgsl");
const ATTENTION_STORE_RAGGED: &str = shader!("attention_store_ragged.wgsl");
const ATTENTION_REDUCE: &str = shader!("attention_reduce.wgsl");
const ADD_RMS_NORM: &str = shader!("add_rms_norm.wgsl");
const GLU_ACT: &str = shader!("glu_act.wgsl");
const ROPE_ANGLE: &str = shader!("rope_angle.wgsl");
const ROPE_STORE: &str = shader!("ops/rope_store.wgsl");
const STORE_F32: &str = shader!("ops/store_f32.wgsl");
const STORE_F16: &str = shader!("ops/store_f16.wgsl");
const BIAS: &str = shader!("ops/bias.wgsl");
const NO_BIAS: &str = shader!("ops/no_bias.wgsl");
const HEAD_NORM: &str = shader!("ops/head_norm.wgsl");
const NO_NORM: &str = shader!("ops/no_norm.wgsl");
const QKV_ROWS: &str = shader!("fused/qkv_rows.wgsl");
const QKV_MATVEC: &str = shader!("fused/qkv_matvec.wgsl");
const GLU_ROWS: &str = shader!("fused/glu_rows.wgsl");
const EMBED_NORM: &str = shader!("fused/embed_norm.wgsl");
const EMBED_ONE: &str = shader!("fused/embed_one.wgsl");
const EMBED_PARTS: &str = shader!("fused/embed_parts.wgsl");
const HEAD_NORMS: &str = shader!("fused/head_norms.wgsl");
const GLU_MATVEC: &str = shader!("fused/glu_matvec.wgsl");
const ARGMAX: &str = shader!("argmax.wgsl");
const ORDER_KEY: &str = shader!("order_key.wgsl");
const TOP_K_CHUNKS: &str = shader!("top_k_chunks.wgsl");
const TOP_K_SELECT: &str = shader!("top_k_select.wgsl");

/// The files of the decoder of `fmt` (`ragged`: rows end mid-unit, F32 and F16 only).
fn decoder(fmt: Fmt, ragged: bool) -> &'static [&'static str] {
    match fmt {
        Fmt::F32 if ragged => &[POS_PLAIN, ELEM_F32, RAGGED, UNBLOCKED],
        Fmt::F16 if ragged => &[POS_PLAIN, ELEM_F16, RAGGED, UNBLOCKED],
        Fmt::F32 => &[POS_PLAIN, F32, UNBLOCKED],
        Fmt::F16 => &[POS_PLAIN, F16, UNBLOCKED],
        Fmt::Q4_0 => &[SCALE, POS_Q32, Q4_0],
        Fmt::Q4_1 => &[POS_Q32, Q4_1],
        Fmt::Q5_0 => &[SCALE, POS_Q32, Q5_0],
        Fmt::Q8_0 => &[SCALE, Q8_0],
        Fmt::Q4K => &[Q4_K],
        Fmt::Q6K => &[SCALE, Q6_K],
    }
}

/// The files of a weight kernel: the decoder of `fmt`, then `rest`.
fn weights<'a>(fmt: Fmt, ragged: bool, rest: &[&'a str]) -> Vec<&'a str> {
    [decoder(fmt, ragged), rest].concat()
}

/// The functions every decoder may define: renamed with a suffix in the kernels that read
/// several weights.
const DECODER_FNS: [&str; 14] = [
    "unit_pos",
    "unit",
    "bpos",
    "uraw",
    "bscale",
    "BLOCKED",
    "wscale",
    "welem",
    "wval",
    "kbyte",
    "kscale_min",
    "sbyte",
    "q5raw",
    "q6raw",
];

/// The decoder of `fmt` (whole units) for weight `m` of a kernel that reads several: its
/// functions and its buffer `W` renamed with the suffix `m` (`unit0`, `W0`, ...), and its blocks
/// per row and payload offset read from `prm(12 + m)` and `prm(16 + m)` instead of `prm(4)` and
/// `prm(5)`.
pub fn decoder_for_weight(fmt: Fmt, m: u32) -> String {
    let mut s = decoder(fmt, false).concat();
    for name in DECODER_FNS {
        s = replace_ident(&s, name, &format!("{name}{m}"));
    }
    s = replace_ident(&s, "W", &format!("W{m}"));
    s.replace("prm(4)", &format!("prm({}u)", 12 + m)).replace("prm(5)", &format!("prm({}u)", 16 + m))
}

/// The kernel of a fused weight kernel family: `Rows` with `RB` = [`FUSED_RB`] or `Matvec` with `tpr` lanes.
fn lanes_consts(lanes: Lanes) -> Vec<(&'static str, u32)> {
    match lanes {
        Lanes::Rows => vec![("RB", FUSED_RB)],
        Lanes::Matvec(tpr) => vec![("TPR", tpr)],
        Lanes::Subgroup(rpw) => vec![("RPW", rpw)],
    }
}

/// Everything after the binding declarations of `spec`.
pub fn body(spec: Spec) -> String {
    let load = |ragged: bool| if ragged { LOAD_RAGGED } else { LOAD };
    let elementwise = |op: &str| compose(&[], &[op, ELEMENTWISE]);
    match spec {
        Spec::Matvec { fmt, ragged, tpr } => compose(&[("TPR", tpr)], &weights(fmt, ragged, &[load(ragged), MATVEC])),
        Spec::SgMatvec { fmt, ragged, rpw } => {
            compose(&[("RPW", rpw)], &weights(fmt, ragged, &[load(ragged), SG_SLOT, SG_MATVEC]))
        }
        Spec::Tiled { fmt, ragged, half } => {
            compose(&[], &weights(fmt, ragged, &[load(ragged), TILE_OUT, if half { TILED_F16 } else { TILED }]))
        }
        Spec::Rows { fmt, ragged, rb, xb } => {
            let rows = unroll(ROWS, &[('r', rb), ('i', xb), ('k', 4)]);
            compose(&[("RB", rb), ("XB", xb)], &weights(fmt, ragged, &[load(ragged), &rows]))
        }
        Spec::Embed { fmt, ragged } => {
            let store = if ragged { STORE_RAGGED } else { STORE };
            compose(&[], &weights(fmt, ragged, &[store, EMBED]))
        }
        Spec::Fill => elementwise(FILL),
        Spec::AddBias => elementwise(ADD_BIAS),
        Spec::Add => elementwise(ADD),
        Spec::Softcap => elementwise(SOFTCAP),
        Spec::Copy => elementwise(COPY),
        Spec::PackHalf => compose(&[], &[KV_F16, PACK_F16, ELEMENTWISE]),
        Spec::Glu => compose(&[], &[GLU_ACT, GLU, ELEMENTWISE]),
        Spec::Rope => compose(&[], &[ROPE_ANGLE, ROPE, ELEMENTWISE]),
        Spec::RopeStore { pre, half, pos_buf } => {
            let pre: &[&str] = match pre {
                RopePre::None => &[NO_BIAS, NO_NORM],
                RopePre::Bias => &[BIAS, NO_NORM],
                RopePre::Norms => &[HEAD_NORM],
            };
            let store: &[&str] = if half { &[KV_F16, STORE_F16] } else { &[STORE_F32] };
            compose(&[], &[&[pos0(pos_buf), ROPE_ANGLE][..], pre, &[ROPE_STORE], store, &[ELEMENTWISE]].concat())
        }
        Spec::EmbedNorm { fmt, split: false } => compose(&[], &weights(fmt, false, &[STORE, EMBED_ONE, EMBED_NORM])),
        Spec::EmbedNorm { fmt, split: true } => {
            let decoders: Vec<String> = (0..3).map(|m| decoder_for_weight(fmt, m)).collect();
            let mut files: Vec<&str> = decoders.iter().map(String::as_str).collect();
            files.extend([STORE, EMBED_PARTS, EMBED_NORM]);
            compose(&[], &files)
        }
        Spec::HeadNorms => compose(&[], &[HEAD_NORMS]),
        Spec::AddRmsNorm { pre } => {
            let src = unroll(ADD_RMS_NORM, &[('p', u32::from(pre)), ('q', u32::from(!pre))]);
            compose(&[], &[&src])
        }
        Spec::Qkv { fmts, lanes } => {
            let decoders: Vec<String> = (0..3).map(|m| decoder_for_weight(fmts[m as usize], m)).collect();
            let kernel = match lanes {
                Lanes::Rows => unroll(QKV_ROWS, &[('m', 3), ('r', FUSED_RB), ('k', 4)]),
                Lanes::Matvec(_) => unroll(QKV_MATVEC, &[('m', 3)]),
                Lanes::Subgroup(_) => unroll(SG_QKV, &[('m', 3)]),
            };
            let mut files: Vec<&str> = decoders.iter().map(String::as_str).collect();
            if matches!(lanes, Lanes::Subgroup(_)) {
                files.push(SG_SLOT);
            }
            files.extend([LOAD, kernel.as_str()]);
            compose(&lanes_consts(lanes), &files)
        }
        Spec::GluFused { fmt, lanes } => {
            let (d0, d1) = (decoder_for_weight(fmt, 0), decoder_for_weight(fmt, 1));
            let kernel = match lanes {
                Lanes::Rows => unroll(GLU_ROWS, &[('r', FUSED_RB), ('k', 4)]),
                Lanes::Matvec(_) => GLU_MATVEC.to_string(),
                Lanes::Subgroup(_) => format!("{SG_SLOT}{SG_GLU}"),
            };
            compose(&lanes_consts(lanes), &[&d0, &d1, GLU_ACT, LOAD, &kernel])
        }
        Spec::Penalize => elementwise(PENALIZE),
        Spec::RmsNorm => compose(&[], &[RMS_NORM]),
        Spec::Attention { ragged, tpv, dpt, split, half, pos_buf } => {
            let io = match (ragged, half) {
                (false, false) => ATTENTION_IO,
                (true, false) => ATTENTION_IO_RAGGED,
                (false, true) => ATTENTION_IO_F16,
                (true, true) => ATTENTION_IO_RAGGED_F16,
            };
            let halves = if half { KV_F16 } else { "" };
            // The split variant writes partial results, not `O`, and so has no `sto`.
            let store = if split { "" } else { attention_store(ragged) };
            let attention = unroll(ATTENTION, &[('e', dpt), ('s', u32::from(split)), ('o', u32::from(!split))]);
            compose(
                &[("TPV", tpv), ("KG", 128 / tpv), ("DPT", dpt), ("QN", tpv * dpt)],
                &[pos0(pos_buf), halves, io, store, &attention],
            )
        }
        Spec::AttentionReduce { ragged } => compose(&[], &[attention_store(ragged), ATTENTION_REDUCE]),
        Spec::Argmax => compose(&[], &[ARGMAX]),
        Spec::TopK(TopKPass::Chunks) => compose(&[], &[ORDER_KEY, TOP_K_CHUNKS]),
        Spec::TopK(TopKPass::Select) => compose(&[], &[ORDER_KEY, TOP_K_SELECT]),
    }
}

/// `pos0()`, the position of a step's first row: from the step buffer `POS` (`pos_buf`), or
/// parameter word 4.
fn pos0(pos_buf: bool) -> &'static str {
    if pos_buf { "fn pos0() -> u32 { return POS[0]; }\n" } else { "fn pos0() -> u32 { return prm(4); }\n" }
}

/// The output store of the attention kernels (whole `vec4`s, or masked for a ragged head size).
fn attention_store(ragged: bool) -> &'static str {
    if ragged { ATTENTION_STORE_RAGGED } else { ATTENTION_STORE }
}

/// `common.wgsl`, then `consts` as WGSL `const`s, then `files`.
fn compose(consts: &[(&str, u32)], files: &[&str]) -> String {
    let mut s = String::from(COMMON);
    for (name, value) in consts {
        let _ = writeln!(s, "const {name}: u32 = {value}u;");
    }
    for f in files {
        s += f;
    }
    s
}

/// `src` with its `//#for <v>` ... `//#end` blocks (nested at will) repeated `n` times, where
/// `(v, n)` is in `counts`, and `{v}` in each copy replaced by its index. A variable missing
/// from `counts` repeats its block 0 times.
pub fn unroll(src: &str, counts: &[(char, u32)]) -> String {
    let lines: Vec<&str> = src.lines().collect();
    let mut out = String::new();
    block(&lines, counts, &mut Vec::new(), &mut out);
    out
}

/// Renders `lines` up to the `//#end` that closes the enclosing block (or the end) into `out`;
/// returns the lines consumed, that `//#end` included.
fn block(lines: &[&str], counts: &[(char, u32)], env: &mut Vec<(char, u32)>, out: &mut String) -> usize {
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line == "//#end" {
            return i + 1;
        }
        if let Some(var) = line.strip_prefix("//#for ").and_then(|v| v.trim().chars().next()) {
            let n = counts.iter().find(|(v, _)| *v == var).map_or(0, |&(_, n)| n);
            let body = &lines[i + 1..];
            // Where the block ends, whether or not it is repeated at all.
            let len = block(body, counts, env, &mut String::new());
            for k in 0..n {
                env.push((var, k));
                block(body, counts, env, out);
                env.pop();
            }
            i += 1 + len;
            continue;
        }
        let mut text = lines[i].to_string();
        for (var, k) in env.iter() {
            text = text.replace(&format!("{{{var}}}"), &k.to_string());
        }
        *out += &text;
        out.push('\n');
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_unrolled_nested_and_in_order() {
        let src = "a\n//#for r\nr{r}\n    //#for i\n  x{r}{i}\n    //#end\n//#end\nb\n";
        assert_eq!(unroll(src, &[('r', 2), ('i', 2)]), "a\nr0\n  x00\n  x01\nr1\n  x10\n  x11\nb\n");
        assert_eq!(unroll(src, &[('r', 1)]), "a\nr0\nb\n");
        assert_eq!(unroll(src, &[]), "a\nb\n");
    }

    #[test]
    fn the_row_kernel_is_unrolled_for_its_blocking() {
        let src = body(Spec::Rows { fmt: Fmt::Q8_0, ragged: false, rb: 4, xb: 3 });
        assert!(src.contains("var a3_2 = vec4<f32>(0.0);"));
        assert!(src.contains("a0_2 += w0.lo * xl2 + w0.hi * xh2;"));
        assert!(!src.contains("a4_") && !src.contains("xl3"));
        for line in src.lines().map(str::trim_start) {
            assert!(!line.starts_with("//#"), "{line}");
            assert!(line.starts_with("//") || !(line.contains("{r}") || line.contains("{i}")), "{line}");
        }
    }
}
