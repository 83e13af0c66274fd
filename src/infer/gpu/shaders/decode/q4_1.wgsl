// Q4_1: per block of 32 weights one word (f16 d, f16 m) and 4 payload words of 4-bit values q;
// weight = d * q + m.
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
