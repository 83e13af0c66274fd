// Q8_0: per block of 32 weights an f16 scale d (in the scale array) and 8 words of signed
// bytes q; weight = d * q. Unit u is 8 consecutive columns.
fn unit_pos(u: u32) -> vec2<u32> { let e = (u >> 2u) * 32u + (u & 3u) * 8u; return vec2<u32>(e, e + 4u); }
fn unit(rl: u32, u: u32) -> Unit {
    let b = rl * prm(4) + (u >> 2u);
    let d = wscale(b);
    let base = prm(5) + b * 8u + (u & 3u) * 2u;
    let p = unit_pos(u);
    return Unit(sbytes(W[base]) * d, sbytes(W[base + 1u]) * d, p.x, p.y);
}
// The Rows kernels' block form (see rows.wgsl): block b of row rl has weight = d * raw in both
// halves, `raw` the signed bytes of its unit k.
const BLOCKED: bool = true;
fn bpos(b: u32, k: u32) -> vec2<u32> { return vec2<u32>(b * 8u + 2u * k, b * 8u + 2u * k + 1u); }
fn bscale(rl: u32, b: u32) -> vec4<f32> { let d = wscale(rl * prm(4) + b); return vec4<f32>(d, 0.0, d, 0.0); }
fn uraw(rl: u32, b: u32, k: u32) -> Unit {
    let base = prm(5) + (rl * prm(4) + b) * 8u + 2u * k;
    return Unit(sbytes(W[base]), sbytes(W[base + 1u]), 0u, 0u);
}
