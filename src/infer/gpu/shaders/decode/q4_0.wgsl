// Q4_0: per block of 32 weights an f16 scale d (in the scale array) and 4 payload words of
// 4-bit values q; weight = d * (q - 8).
fn unit(rl: u32, u: u32) -> Unit {
    let b = rl * prm(4) + (u >> 2u);
    let d = wscale(b);
    let q = W[prm(5) + b * 4u + (u & 3u)];
    let p = unit_pos(u);
    return Unit(d * (nib_lo(q) - vec4<f32>(8.0)), d * (nib_hi(q) - vec4<f32>(8.0)), p.x, p.y);
}
// The Rows kernels' block form (see rows.wgsl): block b of row rl has weight = d * raw - 8d in
// both halves, `raw` the 4-bit values of its unit k.
const BLOCKED: bool = true;
fn bscale(rl: u32, b: u32) -> vec4<f32> { let d = wscale(rl * prm(4) + b); return vec4<f32>(d, -8.0 * d, d, -8.0 * d); }
fn uraw(rl: u32, b: u32, k: u32) -> Unit {
    let q = W[prm(5) + (rl * prm(4) + b) * 4u + k];
    return Unit(nib_lo(q), nib_hi(q), 0u, 0u);
}
