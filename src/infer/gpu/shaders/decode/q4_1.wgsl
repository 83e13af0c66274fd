// Q4_1: per block of 32 weights one word (f16 d, f16 m) and 4 payload words of 4-bit values q;
// weight = d * q + m.
fn unit(rl: u32, u: u32) -> Unit {
    let b = rl * prm(4) + (u >> 2u);
    let base = prm(5) + b * 5u;
    let dm = unpack2x16float(W[base]);
    let q = W[base + 1u + (u & 3u)];
    let p = unit_pos(u);
    return Unit(dm.x * nib_lo(q) + vec4<f32>(dm.y), dm.x * nib_hi(q) + vec4<f32>(dm.y), p.x, p.y);
}
// The Rows kernels' block form (see rows.wgsl): block b of row rl has weight = d * raw + m in
// both halves, `raw` the 4-bit values of its unit k.
const BLOCKED: bool = true;
fn bscale(rl: u32, b: u32) -> vec4<f32> { let s = unpack2x16float(W[prm(5) + (rl * prm(4) + b) * 5u]); return vec4<f32>(s, s); }
fn uraw(rl: u32, b: u32, k: u32) -> Unit {
    let q = W[prm(5) + (rl * prm(4) + b) * 5u + 1u + k];
    return Unit(nib_lo(q), nib_hi(q), 0u, 0u);
}
