//! The WGSL text of every kernel, assembled per variant (see [`super::kernel::Spec`]).
//!
//! Every kernel reads its scalar parameters from `P`, a uniform array of `vec4<u32>` bound after
//! its storage buffers, through `prm(i)` (a `u32`) and `prmf(i)` (an `f32` stored as its bits).
//! Storage buffers are all declared `read_write`: that is what cubecl does too, because buffers
//! of one memory page bound twice must agree on their usage.

use super::layout::Fmt;

/// Helpers every kernel gets.
pub const COMMON: &str = r#"
fn prm(i: u32) -> u32 { return P[i >> 2u][i & 3u]; }
fn prmf(i: u32) -> f32 { return bitcast<f32>(prm(i)); }

// IEEE half bits to f32, exactly (subnormals included, unlike a flushing unpack).
fn half_to_f32(h: u32) -> f32 {
    let s = (h & 0x8000u) << 16u;
    let e = (h >> 10u) & 0x1fu;
    let m = h & 0x3ffu;
    if (e == 0u) { return bitcast<f32>(s | bitcast<u32>(f32(m) * 5.9604644775390625e-8)); }
    if (e == 31u) { return bitcast<f32>(s | 0x7f800000u | (m << 13u)); }
    return bitcast<f32>(s | ((e + 112u) << 23u) | (m << 13u));
}

// tanh that is accurate near 0 and never overflows.
fn tanh_(x: f32) -> f32 {
    let a = abs(x);
    if (a < 0.125) {
        let x2 = x * x;
        return x * (1.0 + x2 * (-0.33333333333 + x2 * (0.13333333333 + x2 * -0.05396825397)));
    }
    let t = exp(-2.0 * min(a, 20.0));
    return sign(x) * ((1.0 - t) / (1.0 + t));
}

const SH: vec4<u32> = vec4<u32>(0u, 8u, 16u, 24u);
const SH4: vec4<u32> = vec4<u32>(4u, 12u, 20u, 28u);
const M4: vec4<u32> = vec4<u32>(15u);

// Eight weights of a row and the columns they multiply: `lo` holds columns e0..e0+3, `hi`
// columns e1..e1+3.
struct Unit { lo: vec4<f32>, hi: vec4<f32>, e0: u32, e1: u32 }
"#;

/// The decoder of a weight format: `unit(rl, u)` is unit `u` of part-local row `rl`, and
/// `unit_pos(u)` the columns of unit `u` without reading the weight. A row has `prm(3)` units.
///
/// Weight parameters: `prm(1)` rows in this part, `prm(2)` columns, `prm(3)` units per row,
/// `prm(4)` blocks per row, `prm(5)` word offset of the payloads.
pub fn decoder(fmt: Fmt, ragged: bool) -> String {
    let scale = r#"
fn wscale(b: u32) -> f32 { return half_to_f32((W[b >> 1u] >> ((b & 1u) << 4u)) & 0xffffu); }
"#;
    match fmt {
        Fmt::F32 | Fmt::F16 if ragged => {
            let load = if fmt == Fmt::F32 {
                "bitcast<f32>(W[e])"
            } else {
                "half_to_f32((W[e >> 1u] >> ((e & 1u) << 4u)) & 0xffffu)"
            };
            format!(
                r#"
fn wval(rl: u32, c: u32) -> f32 {{
    if (c >= prm(2)) {{ return 0.0; }}
    let e = rl * prm(2) + c;
    return {load};
}}
fn unit_pos(u: u32) -> vec2<u32> {{ return vec2<u32>(8u * u, 8u * u + 4u); }}
fn unit(rl: u32, u: u32) -> Unit {{
    let c = 8u * u;
    let lo = vec4<f32>(wval(rl, c), wval(rl, c + 1u), wval(rl, c + 2u), wval(rl, c + 3u));
    let hi = vec4<f32>(wval(rl, c + 4u), wval(rl, c + 5u), wval(rl, c + 6u), wval(rl, c + 7u));
    return Unit(lo, hi, c, c + 4u);
}}
"#
            )
        }
        Fmt::F32 => r#"
fn unit_pos(u: u32) -> vec2<u32> { return vec2<u32>(8u * u, 8u * u + 4u); }
fn unit(rl: u32, u: u32) -> Unit {
    let e = rl * prm(2) + 8u * u;
    let lo = bitcast<vec4<f32>>(vec4<u32>(W[e], W[e + 1u], W[e + 2u], W[e + 3u]));
    let hi = bitcast<vec4<f32>>(vec4<u32>(W[e + 4u], W[e + 5u], W[e + 6u], W[e + 7u]));
    return Unit(lo, hi, 8u * u, 8u * u + 4u);
}
"#
        .to_string(),
        Fmt::F16 => r#"
fn h2(w: u32) -> vec2<f32> { return vec2<f32>(half_to_f32(w & 0xffffu), half_to_f32(w >> 16u)); }
fn unit_pos(u: u32) -> vec2<u32> { return vec2<u32>(8u * u, 8u * u + 4u); }
fn unit(rl: u32, u: u32) -> Unit {
    let w = (rl * prm(2) + 8u * u) >> 1u;
    let lo = vec4<f32>(h2(W[w]), h2(W[w + 1u]));
    let hi = vec4<f32>(h2(W[w + 2u]), h2(W[w + 3u]));
    return Unit(lo, hi, 8u * u, 8u * u + 4u);
}
"#
        .to_string(),
        Fmt::Q4_0 => format!(
            r#"{scale}
fn unit_pos(u: u32) -> vec2<u32> {{ let e = (u >> 2u) * 32u + (u & 3u) * 4u; return vec2<u32>(e, e + 16u); }}
fn unit(rl: u32, u: u32) -> Unit {{
    let b = rl * prm(4) + (u >> 2u);
    let d = wscale(b);
    let q = vec4<u32>(W[prm(5) + b * 4u + (u & 3u)]);
    let lo = vec4<f32>((q >> SH) & M4) - vec4<f32>(8.0);
    let hi = vec4<f32>((q >> SH4) & M4) - vec4<f32>(8.0);
    let p = unit_pos(u);
    return Unit(d * lo, d * hi, p.x, p.y);
}}
"#
        ),
        Fmt::Q4_1 => r#"
fn unit_pos(u: u32) -> vec2<u32> { let e = (u >> 2u) * 32u + (u & 3u) * 4u; return vec2<u32>(e, e + 16u); }
fn unit(rl: u32, u: u32) -> Unit {
    let b = rl * prm(4) + (u >> 2u);
    let base = prm(5) + b * 5u;
    let dm = W[base];
    let d = half_to_f32(dm & 0xffffu);
    let m = half_to_f32(dm >> 16u);
    let q = vec4<u32>(W[base + 1u + (u & 3u)]);
    let lo = d * vec4<f32>((q >> SH) & M4) + vec4<f32>(m);
    let hi = d * vec4<f32>((q >> SH4) & M4) + vec4<f32>(m);
    let p = unit_pos(u);
    return Unit(lo, hi, p.x, p.y);
}
"#
        .to_string(),
        Fmt::Q5_0 => format!(
            r#"{scale}
fn unit_pos(u: u32) -> vec2<u32> {{ let e = (u >> 2u) * 32u + (u & 3u) * 4u; return vec2<u32>(e, e + 16u); }}
fn unit(rl: u32, u: u32) -> Unit {{
    let b = rl * prm(4) + (u >> 2u);
    let d = wscale(b);
    let base = prm(5) + b * 5u;
    let qh = vec4<u32>(W[base]);
    let q = vec4<u32>(W[base + 1u + (u & 3u)]);
    let j = vec4<u32>((u & 3u) * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
    let hl = ((qh >> j) & vec4<u32>(1u)) << vec4<u32>(4u);
    let hh = ((qh >> (j + vec4<u32>(16u))) & vec4<u32>(1u)) << vec4<u32>(4u);
    let lo = vec4<f32>(((q >> SH) & M4) | hl) - vec4<f32>(16.0);
    let hi = vec4<f32>(((q >> SH4) & M4) | hh) - vec4<f32>(16.0);
    let p = unit_pos(u);
    return Unit(d * lo, d * hi, p.x, p.y);
}}
"#
        ),
        Fmt::Q8_0 => format!(
            r#"{scale}
fn unit_pos(u: u32) -> vec2<u32> {{ let e = (u >> 2u) * 32u + (u & 3u) * 8u; return vec2<u32>(e, e + 4u); }}
fn unit(rl: u32, u: u32) -> Unit {{
    let b = rl * prm(4) + (u >> 2u);
    let d = wscale(b);
    let base = prm(5) + b * 8u + (u & 3u) * 2u;
    let sl = vec4<u32>(24u, 16u, 8u, 0u);
    let w0 = vec4<i32>(bitcast<i32>(W[base]));
    let w1 = vec4<i32>(bitcast<i32>(W[base + 1u]));
    let lo = vec4<f32>((w0 << sl) >> vec4<u32>(24u));
    let hi = vec4<f32>((w1 << sl) >> vec4<u32>(24u));
    let p = unit_pos(u);
    return Unit(lo * d, hi * d, p.x, p.y);
}}
"#
        ),
        Fmt::Q4K => r#"
fn unit_pos(u: u32) -> vec2<u32> {
    let uu = u & 31u;
    let e = (u >> 5u) * 256u + (uu >> 3u) * 64u + (uu & 7u) * 4u;
    return vec2<u32>(e, e + 32u);
}
fn kbyte(base: u32, i: u32) -> u32 { return (W[base + 1u + (i >> 2u)] >> ((i & 3u) * 8u)) & 0xffu; }
fn kscale_min(base: u32, j: u32) -> vec2<u32> {
    if (j < 4u) { return vec2<u32>(kbyte(base, j) & 63u, kbyte(base, j + 4u) & 63u); }
    return vec2<u32>(
        (kbyte(base, j + 4u) & 15u) | ((kbyte(base, j - 4u) >> 6u) << 4u),
        (kbyte(base, j + 4u) >> 4u) | ((kbyte(base, j) >> 6u) << 4u));
}
fn unit(rl: u32, u: u32) -> Unit {
    let b = rl * prm(4) + (u >> 5u);
    let uu = u & 31u;
    let base = prm(5) + b * 36u;
    let dm = W[base];
    let d = half_to_f32(dm & 0xffffu);
    let dmin = half_to_f32(dm >> 16u);
    let c = uu >> 3u;
    let s0 = kscale_min(base, 2u * c);
    let s1 = kscale_min(base, 2u * c + 1u);
    let q = vec4<u32>(W[base + 4u + uu]);
    let lo = (d * f32(s0.x)) * vec4<f32>((q >> SH) & M4) - vec4<f32>(dmin * f32(s0.y));
    let hi = (d * f32(s1.x)) * vec4<f32>((q >> SH4) & M4) - vec4<f32>(dmin * f32(s1.y));
    let p = unit_pos(u);
    return Unit(lo, hi, p.x, p.y);
}
"#
        .to_string(),
        Fmt::Q6K => format!(
            r#"{scale}
fn unit_pos(u: u32) -> vec2<u32> {{
    let uu = u & 31u;
    let r = uu & 15u;
    let e = (u >> 5u) * 256u + (uu >> 4u) * 128u + (r >> 3u) * 32u + (r & 7u) * 4u;
    return vec2<u32>(e, e + 64u);
}}
fn sbyte(w: u32, i: u32) -> f32 {{ return f32(extractBits(bitcast<i32>(w), (i & 3u) * 8u, 8u)); }}
fn unit(rl: u32, u: u32) -> Unit {{
    let b = rl * prm(4) + (u >> 5u);
    let uu = u & 31u;
    let d = wscale(b);
    let base = prm(5) + b * 52u;
    let h = uu >> 4u;
    let g = (uu >> 3u) & 1u;
    let m = uu & 7u;
    let ql = vec4<u32>(W[base + 16u * h + 8u * g + m]);
    let qh = vec4<u32>(W[base + 32u + 8u * h + m]);
    let qlo = ((ql >> SH) & M4) | (((qh >> (SH + vec4<u32>(2u * g))) & vec4<u32>(3u)) << vec4<u32>(4u));
    let qhi = ((ql >> SH4) & M4) | (((qh >> (SH + vec4<u32>(4u + 2u * g))) & vec4<u32>(3u)) << vec4<u32>(4u));
    let is_lo = 8u * h + 2u * g + (m >> 2u);
    let is_hi = is_lo + 4u;
    let sc_lo = sbyte(W[base + 48u + (is_lo >> 2u)], is_lo);
    let sc_hi = sbyte(W[base + 48u + (is_hi >> 2u)], is_hi);
    let lo = (d * sc_lo) * (vec4<f32>(qlo) - vec4<f32>(32.0));
    let hi = (d * sc_hi) * (vec4<f32>(qhi) - vec4<f32>(32.0));
    let p = unit_pos(u);
    return Unit(lo, hi, p.x, p.y);
}}
"#
        ),
    }
}

/// Loads four activations of row offset `off` from column `c` (X) or stores them (O): as one
/// `vec4` where rows are whole units, masked scalars for ragged F32/F16 rows.
pub fn act_io(ragged: bool, load: bool) -> &'static str {
    match (ragged, load) {
        (false, true) => "fn xload(off: u32, c: u32) -> vec4<f32> { return X[(off + c) >> 2u]; }\n",
        (false, false) => "fn ostore(off: u32, c: u32, v: vec4<f32>) { O[(off + c) >> 2u] = v; }\n",
        (true, true) => {
            r#"
fn xload(off: u32, c: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    for (var k = 0u; k < 4u; k++) { if (c + k < prm(2)) { v[k] = X[off + c + k]; } }
    return v;
}
"#
        }
        (true, false) => {
            r#"
fn ostore(off: u32, c: u32, v: vec4<f32>) {
    for (var k = 0u; k < 4u; k++) { if (c + k < prm(2)) { O[off + c + k] = v[k]; } }
}
"#
        }
    }
}

/// Matmul without shared memory or barriers (for CPU-emulated adapters): invocation `g`
/// computes `rb` consecutive weight rows for `xb` consecutive rows of `x`, looping over every
/// unit of the row; the accumulators are `vec4`s in registers (the text is unrolled here, so no
/// private arrays). Rows past the end are clamped for the loads and skipped for the stores, so
/// the loop has no divergent branch. Same parameters as [`TILED`]; 64 invocations per workgroup.
pub fn rows(rb: u32, xb: u32) -> String {
    use std::fmt::Write;
    let mut s = String::from(
        r#"
@compute @workgroup_size(64)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let g = (wid.x + wid.y * nwg.x) * 64u + li;
    let n = prm(0);
    let rows = prm(1);
    let cols = prm(2);
    let upr = prm(3);
"#,
    );
    let _ = writeln!(s, "    let rt = (rows + {}u) / {rb}u;", rb - 1);
    let _ = writeln!(s, "    if (g >= rt * ((n + {}u) / {xb}u)) {{ return; }}", xb - 1);
    let _ = writeln!(s, "    let r0 = (g % rt) * {rb}u;\n    let i0 = (g / rt) * {xb}u;");
    for r in 0..rb {
        let _ = writeln!(s, "    let rr{r} = min(r0 + {r}u, rows - 1u);");
        for i in 0..xb {
            let _ = writeln!(s, "    var a{r}_{i} = vec4<f32>(0.0);");
        }
    }
    for i in 0..xb {
        let _ = writeln!(s, "    let xo{i} = min(i0 + {i}u, n - 1u) * cols;");
    }
    s += "    for (var u = 0u; u < upr; u++) {\n        let p = unit_pos(u);\n";
    for i in 0..xb {
        let _ = writeln!(s, "        let xl{i} = xload(xo{i}, p.x);\n        let xh{i} = xload(xo{i}, p.y);");
    }
    for r in 0..rb {
        let _ = writeln!(s, "        let w{r} = unit(rr{r}, u);");
        for i in 0..xb {
            let _ = writeln!(s, "        a{r}_{i} += w{r}.lo * xl{i} + w{r}.hi * xh{i};");
        }
    }
    s += "    }\n";
    for r in 0..rb {
        for i in 0..xb {
            let _ = writeln!(
                s,
                "    if (r0 + {r}u < rows && i0 + {i}u < n) {{ O[(i0 + {i}u) * prm(7) + prm(6) + r0 + {r}u] = dot(a{r}_{i}, vec4<f32>(1.0)); }}"
            );
        }
    }
    s + "}\n"
}

/// Matrix-vector product (n == 1): `TPR` lanes per row (a power of two, fewer for short rows so
/// that every lane has a few units), `256 / TPR` rows per workgroup; the lanes stride over the
/// row's units, then a shared-memory tree reduction per row.
pub const MATVEC: &str = r#"
const RPW: u32 = 256u / TPR;
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let wg = wid.x + wid.y * nwg.x;
    let lane = li % TPR;
    let rl = wg * RPW + li / TPR;
    let rows = prm(1);
    let upr = prm(3);
    var acc = 0.0;
    if (rl < rows) {
        for (var u = lane; u < upr; u += TPR) {
            let w = unit(rl, u);
            acc += dot(w.lo, xload(0u, w.e0)) + dot(w.hi, xload(0u, w.e1));
        }
    }
    red[li] = acc;
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (lane < s) { red[li] += red[li + s]; }
        workgroupBarrier();
    }
    if (lane == 0u && rl < rows) { O[prm(6) + rl] = red[li]; }
}
"#;

/// Matrix-matrix product (n > 1): a workgroup computes a 32 (x rows) by 64 (weight rows) tile
/// of the output. Each step dequantizes 4 units (32 columns) of 64 weight rows into shared
/// memory once, gathers the matching 32 columns of 32 x rows (in the units' column order, which
/// the dot product does not care about) and every thread accumulates 2 x 4 outputs.
pub const TILED: &str = r#"
var<workgroup> ws: array<vec4<f32>, 512>;
var<workgroup> xs: array<vec2<f32>, 512>;
@compute @workgroup_size(256)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let wg = wid.x + wid.y * nwg.x;
    let n = prm(0);
    let rows = prm(1);
    let cols = prm(2);
    let upr = prm(3);
    let tiles_r = (rows + 63u) / 64u;
    let rbase = (wg % tiles_r) * 64u;
    let ibase = (wg / tiles_r) * 32u;
    let tw = li & 15u;
    let tx = li >> 4u;
    let lr = li >> 2u;
    let lk = li & 3u;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    for (var ku = 0u; ku < upr; ku += 4u) {
        let u = ku + lk;
        var un = Unit(vec4<f32>(0.0), vec4<f32>(0.0), 0u, 0u);
        if (rbase + lr < rows && u < upr) { un = unit(rbase + lr, u); }
        for (var j = 0u; j < 4u; j++) {
            ws[(lk * 8u + j) * 16u + (lr >> 2u)][lr & 3u] = un.lo[j];
            ws[(lk * 8u + 4u + j) * 16u + (lr >> 2u)][lr & 3u] = un.hi[j];
        }
        if (li < 128u) {
            let i = ibase + lr;
            var lo = vec4<f32>(0.0);
            var hi = vec4<f32>(0.0);
            if (i < n && u < upr) {
                let p = unit_pos(u);
                lo = xload(i * cols, p.x);
                hi = xload(i * cols, p.y);
            }
            for (var j = 0u; j < 4u; j++) {
                xs[(lk * 8u + j) * 16u + (lr >> 1u)][lr & 1u] = lo[j];
                xs[(lk * 8u + 4u + j) * 16u + (lr >> 1u)][lr & 1u] = hi[j];
            }
        }
        workgroupBarrier();
        for (var k = 0u; k < 32u; k++) {
            let w = ws[k * 16u + tw];
            let xv = xs[k * 16u + tx];
            acc0 += xv.x * w;
            acc1 += xv.y * w;
        }
        workgroupBarrier();
    }
    let os = prm(7);
    let i0 = ibase + tx * 2u;
    for (var j = 0u; j < 4u; j++) {
        let r = rbase + tw * 4u + j;
        if (r < rows) {
            if (i0 < n) { O[i0 * os + prm(6) + r] = acc0[j]; }
            if (i0 + 1u < n) { O[(i0 + 1u) * os + prm(6) + r] = acc1[j]; }
        }
    }
}
"#;

/// Embedding rows: one workgroup per id; parts that do not hold the id skip it.
pub const EMBED: &str = r#"
@compute @workgroup_size(64)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let i = wid.x + wid.y * nwg.x;
    if (i >= prm(0)) { return; }
    let id = IDS[i];
    if (id < prm(6) || id - prm(6) >= prm(1)) { return; }
    let rl = id - prm(6);
    let off = i * prm(2);
    let scale = prmf(7);
    for (var u = li; u < prm(3); u += 64u) {
        let w = unit(rl, u);
        ostore(off, w.e0, scale * w.lo);
        ostore(off, w.e1, scale * w.hi);
    }
}
"#;

/// The entry point of the element-wise kernels: `g` is the global element index.
const ELEMWISE_HEAD: &str = r#"
@compute @workgroup_size(256)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let g = (wid.x + wid.y * nwg.x) * 256u + li;
"#;

/// An element-wise kernel whose body follows [`ELEMWISE_HEAD`].
pub fn elementwise(body: &str) -> String {
    format!("{ELEMWISE_HEAD}{body}}}\n")
}

/// `O[g] = 0` (u32 view, so it zeroes f32 and id buffers alike). `prm(0)`: length.
pub const FILL: &str = "    if (g < prm(0)) { O[g] = 0u; }\n";

/// `X[g] += B[g % dim]`. `prm(0)`: n * dim, `prm(1)`: dim.
pub const ADD_BIAS: &str = "    if (g < prm(0)) { X[g] = X[g] + B[g % prm(1)]; }\n";

/// `D[g] += S[g]`. `prm(0)`: length.
pub const ADD: &str = "    if (g < prm(0)) { D[g] = D[g] + S[g]; }\n";

/// `X[g] = cap * tanh(X[g] / cap)`. `prm(0)`: length, `prm(1)`: cap.
pub const SOFTCAP: &str = "    if (g < prm(0)) { let cap = prmf(1); X[g] = cap * tanh_(X[g] / cap); }\n";

/// `D[doff + g] = S[soff + g]`. `prm(0)`: length, `prm(1)`: soff, `prm(2)`: doff.
pub const COPY: &str = "    if (g < prm(0)) { D[prm(2) + g] = S[prm(1) + g]; }\n";

/// `O[g] = act(G[g]) * U[g]`. `prm(0)`: length, `prm(1)`: 0 SiLU, 1 GELU (tanh).
pub const GLU: &str = r#"
    if (g < prm(0)) {
        let x = G[g];
        var a: f32;
        if (prm(1) == 0u) {
            a = x / (1.0 + exp(min(-x, 80.0)));
        } else {
            a = 0.5 * x * (1.0 + tanh_(0.7978845608028654 * (x + 0.044715 * x * x * x)));
        }
        O[g] = a * U[g];
    }
"#;

/// Rotary embedding, one invocation per rotated pair. `prm(0)` n, `prm(1)` heads, `prm(2)`
/// head_dim, `prm(3)` n_rot, `prm(4)` pos0, `prm(5)` freq_scale, `prm(6)` 1 for NEOX,
/// `prm(7)` `-2 log2(base) / n_rot`, `prm(8)` 1 when `prm(16 + k)` holds the frequency of pair
/// `k` (computed in f64 on the host). The angle is reduced to [-pi, pi] (Cody-Waite, with a
/// 2 pi whose high part has 8 significant bits, so `q * hi` is exact) before `cos`/`sin`, which
/// WGSL only specifies there.
pub const ROPE: &str = r#"
    let hr = prm(3) / 2u;
    let nh = prm(1);
    if (g < prm(0) * nh * hr) {
        let k = g % hr;
        let t = g / hr;
        let h = t % nh;
        let i = t / nh;
        var f: f32;
        if (prm(8) != 0u) { f = bitcast<f32>(prm(16u + k)); } else { f = prmf(5) * exp2(f32(k) * prmf(7)); }
        let theta = f32(prm(4) + i) * f;
        let q = round(theta * 0.15915494309189535);
        let r = (theta - q * 6.28125) - q * 0.0019353071795864769;
        let c = cos(r);
        let s = sin(r);
        let base = (i * nh + h) * prm(2);
        var i0 = base + 2u * k;
        var i1 = i0 + 1u;
        if (prm(6) != 0u) { i0 = base + k; i1 = base + k + hr; }
        let x0 = X[i0];
        let x1 = X[i1];
        X[i0] = x0 * c - x1 * s;
        X[i1] = x0 * s + x1 * c;
    }
"#;

/// RMS norm, one workgroup of 64 per row: strided sums of squares, one barrier, then every
/// thread adds the 64 partial sums itself (a serial pass instead of a barrier per tree level:
/// on CPU-emulated adapters every barrier switches between all the invocations). In place when
/// `O` is `X`: each thread rewrites only what it read. `prm(0)` rows, `prm(1)` dim, `prm(2)` eps.
pub const RMS_NORM: &str = r#"
var<workgroup> red: array<f32, 64>;
@compute @workgroup_size(64)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let row = wid.x + wid.y * nwg.x;
    if (row < prm(0)) {
        let dim = prm(1);
        let off = row * dim;
        var s = 0.0;
        for (var j = li; j < dim; j += 64u) { let v = X[off + j]; s += v * v; }
        red[li] = s;
        workgroupBarrier();
        var t = 0.0;
        for (var k = 0u; k < 64u; k++) { t += red[k]; }
        let inv = 1.0 / sqrt(t / f32(dim) + prmf(2));
        for (var j = li; j < dim; j += 64u) { O[off + j] = X[off + j] * inv * G[j]; }
    }
}
"#;

/// Causal attention, one workgroup (128 threads) per (query row, head), for head sizes that
/// are a multiple of 4 (up to 512): rows are read as `vec4`s. Keys come in tiles of 128: thread
/// j scores key t0 + j into `sc`, then the threads work as `KG` key groups of `TPV` lanes (one
/// lane per `vec4` of the head), group g folding keys g, g + KG, ... of every tile into its own
/// online softmax (running max `m`, sum `l`, output `acc`). The groups are merged at the end,
/// each rescaled to the common max. Two barriers per tile: `sc` is written before the first and
/// read only between the two. `TPV` (a power of two >= head_dim / 4) and `KG = 128 / TPV` are
/// set per head size. `prm(0)` n, `prm(1)` n_head, `prm(2)` n_head_kv, `prm(3)` head_dim,
/// `prm(4)` pos0, `prm(5)` scale, `prm(6)` window.
pub const ATTENTION: &str = r#"
var<workgroup> qs: array<vec4<f32>, TPV>;
var<workgroup> sc: array<f32, 128>;
var<workgroup> ro: array<vec4<f32>, 128>;
var<workgroup> rl: array<f32, 128>;
var<workgroup> rm: array<f32, 128>;
@compute @workgroup_size(128)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let wg = wid.x + wid.y * nwg.x;
    let nh = prm(1);
    if (wg < prm(0) * nh) {
        let h = wg % nh;
        let i = wg / nh;
        let v4 = prm(3) / 4u;
        let kvw = prm(2) * v4;
        let kvoff = (h / (nh / prm(2))) * v4;
        let p = prm(4) + i;
        let win = prm(6);
        let t_lo = select(0u, p + 1u - win, win > 0u && p + 1u > win);
        let qoff = (i * nh + h) * v4;
        let scale = prmf(5);
        if (li < v4) { qs[li] = Q[qoff + li]; }
        workgroupBarrier();
        let dv = li % TPV;
        let kg = li / TPV;
        var m = -3.0e38;
        var l = 0.0;
        var acc = vec4<f32>(0.0);
        for (var t0 = t_lo; t0 <= p; t0 += 128u) {
            let cnt = min(128u, p + 1u - t0);
            var s = -3.0e38;
            if (li < cnt) {
                let ko = (t0 + li) * kvw + kvoff;
                var dt = vec4<f32>(0.0);
                for (var d = 0u; d < v4; d++) { dt += qs[d] * K[ko + d]; }
                s = (dt.x + dt.y + dt.z + dt.w) * scale;
            }
            sc[li] = s;
            workgroupBarrier();
            if (dv < v4) {
                for (var j = kg; j < cnt; j += KG) {
                    let sj = sc[j];
                    if (sj > m) {
                        let c = exp(m - sj);
                        acc *= c;
                        l *= c;
                        m = sj;
                    }
                    let pj = exp(sj - m);
                    l += pj;
                    acc += pj * V[(t0 + j) * kvw + kvoff + dv];
                }
            }
            workgroupBarrier();
        }
        ro[li] = acc;
        rl[li] = l;
        rm[li] = m;
        workgroupBarrier();
        if (kg == 0u && dv < v4) {
            var mx = m;
            for (var g = 1u; g < KG; g++) { mx = max(mx, rm[g * TPV + dv]); }
            var a = vec4<f32>(0.0);
            var ls = 0.0;
            for (var g = 0u; g < KG; g++) {
                let c = exp(rm[g * TPV + dv] - mx);
                a += c * ro[g * TPV + dv];
                ls += c * rl[g * TPV + dv];
            }
            O[qoff + dv] = a / ls;
        }
    }
}
"#;

/// [`ATTENTION`] for any head size, one `f32` at a time: thread j accumulates output dims
/// j, j + 128, ... (`DPT` of them).
pub const ATTENTION_SCALAR: &str = r#"
var<workgroup> qs: array<f32, QN>;
var<workgroup> sc: array<f32, 128>;
var<workgroup> pr: array<f32, 128>;
@compute @workgroup_size(128)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let wg = wid.x + wid.y * nwg.x;
    let nh = prm(1);
    if (wg < prm(0) * nh) {
        let h = wg % nh;
        let i = wg / nh;
        let hd = prm(3);
        let kvw = prm(2) * hd;
        let kvoff = (h / (nh / prm(2))) * hd;
        let p = prm(4) + i;
        let win = prm(6);
        let t_lo = select(0u, p + 1u - win, win > 0u && p + 1u > win);
        let qoff = (i * nh + h) * hd;
        let scale = prmf(5);
        for (var d = li; d < hd; d += 128u) { qs[d] = Q[qoff + d]; }
        workgroupBarrier();
        var m = -3.0e38;
        var l = 0.0;
        var acc: array<f32, DPT>;
        for (var t0 = t_lo; t0 <= p; t0 += 128u) {
            let cnt = min(128u, p + 1u - t0);
            var s = -3.0e38;
            if (li < cnt) {
                let ko = (t0 + li) * kvw + kvoff;
                var dt = 0.0;
                for (var d = 0u; d < hd; d++) { dt += qs[d] * K[ko + d]; }
                s = dt * scale;
            }
            sc[li] = s;
            workgroupBarrier();
            var mx = m;
            for (var j = 0u; j < cnt; j++) { mx = max(mx, sc[j]); }
            pr[li] = exp(s - mx);
            let corr = exp(m - mx);
            workgroupBarrier();
            l *= corr;
            for (var dd = 0u; dd < DPT; dd++) { acc[dd] *= corr; }
            for (var j = 0u; j < cnt; j++) {
                let pj = pr[j];
                l += pj;
                let vo = (t0 + j) * kvw + kvoff;
                for (var dd = 0u; dd < DPT; dd++) {
                    let d = li + dd * 128u;
                    if (d < hd) { acc[dd] += pj * V[vo + d]; }
                }
            }
            m = mx;
        }
        for (var dd = 0u; dd < DPT; dd++) {
            let d = li + dd * 128u;
            if (d < hd) { O[qoff + d] = acc[dd] / l; }
        }
    }
}
"#;

/// Argmax of one row, lowest index on ties: strided scans, one barrier, then thread 0 merges
/// the 256 partial results serially (no barrier per tree level; see [`RMS_NORM`]).
/// `prm(0)` offset of the row, `prm(1)` width, `prm(2)` slot.
pub const ARGMAX: &str = r#"
var<workgroup> bv: array<f32, 256>;
var<workgroup> bi: array<u32, 256>;
@compute @workgroup_size(256)
fn k_main(@builtin(local_invocation_index) li: u32) {
    let off = prm(0);
    let w = prm(1);
    var best = 0.0;
    var idx = 0xffffffffu;
    for (var j = li; j < w; j += 256u) {
        let v = X[off + j];
        if (idx == 0xffffffffu || v > best) { best = v; idx = j; }
    }
    bv[li] = best;
    bi[li] = idx;
    workgroupBarrier();
    if (li == 0u) {
        for (var s = 1u; s < 256u; s++) {
            let ob = bv[s];
            let oi = bi[s];
            if (oi != 0xffffffffu && (idx == 0xffffffffu || ob > best || (ob == best && oi < idx))) {
                best = ob;
                idx = oi;
            }
        }
        I[prm(2)] = idx;
    }
}
"#;

/// Repetition penalty, one invocation per id. `prm(0)` offset of the row, `prm(1)` width,
/// `prm(2)` ids, `prm(3)` penalty. Ids are distinct, so no two invocations touch one value.
pub const PENALIZE: &str = r#"
    if (g < prm(2)) {
        let id = I[g];
        if (id < prm(1)) {
            let e = prm(0) + id;
            let v = X[e];
            let p = prmf(3);
            X[e] = select(v * p, v / p, v > 0.0);
        }
    }
"#;

/// The order key of row element `e` (`X[prm(0) + e]`): larger key, larger value; `-0.0` as
/// `+0.0`; every NaN 0, below `-inf` (`crate::infer::compute::order_key`). Branch-free.
const ORDER_KEY: &str = r#"
fn okey(e: u32) -> u32 {
    var b = bitcast<u32>(X[prm(0) + e]);
    b = select(b, 0u, b == 0x80000000u);
    let key = select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
    return select(key, 0u, (b & 0x7fffffffu) > 0x7f800000u);
}
"#;

/// First pass of a top-k: the order key of the maximum of every chunk of `2^prm(3)` elements
/// of the row (`prm(0)` offset, `prm(1)` width) into `M`, one invocation per chunk (`prm(4)`
/// chunks). A streaming pass: no shared memory, no barriers.
pub fn top_k_chunks() -> String {
    format!(
        "{ORDER_KEY}{}",
        r#"
@compute @workgroup_size(64)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let t = (wid.x + wid.y * nwg.x) * 64u + li;
    if (t < prm(4)) {
        let lo = t << prm(3);
        let hi = min(lo + (1u << prm(3)), prm(1));
        var mx = 0u;
        for (var e = lo; e < hi; e++) { mx = max(mx, okey(e)); }
        M[t] = mx;
    }
}
"#
    )
}

/// Second pass of a top-k, one workgroup: the `k = prm(2)` best chunks by (maximum, lower
/// index), then the `k` best elements of those chunks, sorted into `V` (values, `-inf` for a
/// NaN) and `O` (ids). The `k` best elements lie in those chunks: the `k`-th best chunk maximum
/// `T` is at most the `k`-th best element, so every one of the `k` best elements is `>= T` and
/// sits in a chunk whose maximum is `>= T`; chunks tied at `T` are taken lowest index first,
/// and chunks are contiguous, so the lowest-index elements tied at the boundary are in them too.
///
/// Both selections are a radix select over 64-bit composites (order key, !id), a total order
/// with the lower id first on equal keys: each round histograms the next 8 bits of the elements
/// sharing the prefix found so far (shared-memory atomics; two histograms, so one is cleared
/// while the other is read: two barriers a round), then one thread walks the bins from the top
/// to the one holding the `need`-th element, takes the bins above it whole and appends the bin
/// to the prefix. It stops once that bin holds exactly the elements still needed (2 or 3
/// rounds for real logits; the id rounds only run for exact ties at the boundary), and the
/// selection is "prefix of the composite >= the prefix found", gathered in one more pass. No
/// thread does O(k) work per element. Parameters: `prm(0)` offset of the row, `prm(1)` width,
/// `prm(2)` k, `prm(3)` log2 of the chunk size, `prm(4)` chunks.
pub fn top_k_select() -> String {
    format!("{ORDER_KEY}{TOP_K_SELECT}")
}

const TOP_K_SELECT: &str = r#"
const W: u32 = 256u;
var<workgroup> hist: array<atomic<u32>, 512>;
// 0: prefix of the key, 1: prefix of !id, 2 and 3: their masks, 4: still needed.
var<workgroup> st: array<u32, 5>;
var<workgroup> done: u32;
var<workgroup> nsel: u32;
var<workgroup> cnt: atomic<u32>;
var<workgroup> sk: array<u32, 64>;
var<workgroup> si: array<u32, 64>;
var<workgroup> chunk: array<u32, 64>;

// Element j of the chunk maxima (m == 0) or of the elements of the chosen chunks (m == 1; past
// the row: (0, 0xffffffff), below every element).
fn elem(j: u32, m: u32) -> vec2<u32> {
    if (m == 0u) { return vec2<u32>(M[j], j); }
    let e = (chunk[j >> prm(3)] << prm(3)) | (j & ((1u << prm(3)) - 1u));
    if (e >= prm(1)) { return vec2<u32>(0u, 0xffffffffu); }
    return vec2<u32>(okey(e), e);
}

// Finds the prefix of the k-th best of elements 0..n into `st`; resets `cnt`.
fn radix(n: u32, k: u32, m: u32, li: u32) {
    workgroupBarrier();
    if (li == 0u) {
        st = array<u32, 5>(0u, 0u, 0u, 0u, k);
        done = select(0u, 1u, n <= k);
        atomicStore(&cnt, 0u);
    }
    for (var b = li; b < 256u; b += W) { atomicStore(&hist[b], 0u); }
    for (var r = 0u; r < 8u; r++) {
        if (workgroupUniformLoad(&done) != 0u) { break; }
        let hb = (r & 1u) * 256u;
        let ph = st[0];
        let pl = st[1];
        let mh = st[2];
        let ml = st[3];
        let sh = 24u - 8u * (r & 3u);
        for (var j = li; j < n; j += W) {
            let e = elem(j, m);
            let el = ~e.y;
            if ((e.x & mh) == ph && (el & ml) == pl) {
                atomicAdd(&hist[hb + ((select(el, e.x, r < 4u) >> sh) & 255u)], 1u);
            }
        }
        workgroupBarrier();
        for (var b = li; b < 256u; b += W) { atomicStore(&hist[256u - hb + b], 0u); }
        if (li == 0u) {
            var need = st[4];
            var b = 255u;
            loop {
                let h = atomicLoad(&hist[hb + b]);
                if (h >= need || b == 0u) { break; }
                need -= h;
                b -= 1u;
            }
            if (r < 4u) {
                st[0] = ph | (b << sh);
                st[2] = mh | (255u << sh);
            } else {
                st[1] = pl | (b << sh);
                st[3] = ml | (255u << sh);
            }
            st[4] = need;
            if (atomicLoad(&hist[hb + b]) == need) { done = 1u; }
        }
    }
    workgroupBarrier();
}

// The elements whose composite prefix is >= the one found (exactly min(n, k)) into sk/si.
fn gather(n: u32, m: u32, li: u32) {
    let ph = st[0];
    let pl = st[1];
    let mh = st[2];
    let ml = st[3];
    for (var j = li; j < n; j += W) {
        let e = elem(j, m);
        let eh = e.x & mh;
        let el = ~e.y & ml;
        if (eh > ph || (eh == ph && el >= pl)) {
            let s = atomicAdd(&cnt, 1u);
            if (s < 64u) {
                sk[s] = e.x;
                si[s] = e.y;
            }
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(W)
fn k_main(@builtin(local_invocation_index) li: u32) {
    let k = prm(2);
    radix(prm(4), k, 0u, li);
    gather(prm(4), 0u, li);
    for (var s = li; s < 64u; s += W) { chunk[s] = si[s]; }
    if (li == 0u) { nsel = min(atomicLoad(&cnt), k); }
    let n = workgroupUniformLoad(&nsel) << prm(3);
    radix(n, k, 1u, li);
    gather(n, 1u, li);
    let ns = min(atomicLoad(&cnt), k);
    for (var s = li; s < ns; s += W) {
        let key = sk[s];
        let id = si[s];
        var rank = 0u;
        for (var j = 0u; j < ns; j++) {
            let kj = sk[j];
            if (kj > key || (kj == key && si[j] < id)) { rank += 1u; }
        }
        var v = 0xff800000u;
        if ((key & 0x80000000u) != 0u) { v = key & 0x7fffffffu; } else if (key != 0u) { v = ~key; }
        V[rank] = bitcast<f32>(v);
        O[rank] = id;
    }
}
"#;
