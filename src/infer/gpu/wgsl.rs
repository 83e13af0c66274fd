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
pub const SOFTCAP: &str =
    "    if (g < prm(0)) { let cap = prmf(1); X[g] = cap * tanh_(X[g] / cap); }\n";

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

/// RMS norm, one workgroup per row. `prm(0)` rows, `prm(1)` dim, `prm(2)` eps.
pub const RMS_NORM: &str = r#"
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let row = wid.x + wid.y * nwg.x;
    if (row < prm(0)) {
        let dim = prm(1);
        let off = row * dim;
        var s = 0.0;
        for (var j = li; j < dim; j += 256u) { let v = X[off + j]; s += v * v; }
        red[li] = s;
        workgroupBarrier();
        for (var k = 128u; k > 0u; k >>= 1u) {
            if (li < k) { red[li] += red[li + k]; }
            workgroupBarrier();
        }
        let inv = 1.0 / sqrt(red[0] / f32(dim) + prmf(2));
        for (var j = li; j < dim; j += 256u) { O[off + j] = X[off + j] * inv * G[j]; }
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

/// Argmax of one row, lowest index on ties: strided scans, then a tree reduction.
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
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (li < s) {
            let ob = bv[li + s];
            let oi = bi[li + s];
            let mb = bv[li];
            let mi = bi[li];
            if (oi != 0xffffffffu && (mi == 0xffffffffu || ob > mb || (ob == mb && oi < mi))) {
                bv[li] = ob;
                bi[li] = oi;
            }
        }
        workgroupBarrier();
    }
    if (li == 0u) { I[prm(2)] = bi[0]; }
}
"#;
