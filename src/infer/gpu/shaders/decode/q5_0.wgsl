// Q5_0: per block of 32 weights an f16 scale d (in the scale array), a word of the 32 fifth
// bits and 4 words of low nibbles; weight = d * (q - 16). Unit u's fifth bits are bits
// 4(u & 3)..+3 (columns e..e+3) and the same plus 16 (columns e+16..e+19) of that word.
fn unit(rl: u32, u: u32) -> Unit {
    let b = rl * prm(4) + (u >> 2u);
    let d = wscale(b);
    let base = prm(5) + b * 5u;
    let r = q5raw(base, u & 3u);
    let p = unit_pos(u);
    return Unit(d * (r.lo - vec4<f32>(16.0)), d * (r.hi - vec4<f32>(16.0)), p.x, p.y);
}
// The 5-bit values of unit k of the block at word `base`: the nibbles plus each fifth bit
// (bits 4k..4k+3 and the same plus 16 of the first word) masked in place and scaled to 16.
fn q5raw(base: u32, k: u32) -> Unit {
    let qh = vec4<u32>(W[base] >> (k * 4u));
    let q = W[base + 1u + k];
    let hl = vec4<f32>(bitcast<vec4<i32>>(qh & vec4<u32>(1u, 2u, 4u, 8u))) * vec4<f32>(16.0, 8.0, 4.0, 2.0);
    let hh = vec4<f32>(bitcast<vec4<i32>>(qh & vec4<u32>(0x10000u, 0x20000u, 0x40000u, 0x80000u)))
        * vec4<f32>(2.44140625e-4, 1.220703125e-4, 6.103515625e-5, 3.0517578125e-5);
    return Unit(nib_lo(q) + hl, nib_hi(q) + hh, 0u, 0u);
}
// The Rows kernels' block form (see rows.wgsl): block b of row rl has weight = d * raw - 16d in
// both halves, `raw` the 5-bit values of its unit k.
const BLOCKED: bool = true;
fn bscale(rl: u32, b: u32) -> vec4<f32> { let d = wscale(rl * prm(4) + b); return vec4<f32>(d, -16.0 * d, d, -16.0 * d); }
fn uraw(rl: u32, b: u32, k: u32) -> Unit { return q5raw(prm(5) + (rl * prm(4) + b) * 5u, k); }
