// Q4_0: per block of 32 weights an f16 scale d (in the scale array) and 4 payload words of
// 4-bit values q; weight = d * (q - 8).
fn unit(rl: u32, u: u32) -> Unit {
    let b = rl * prm(4) + (u >> 2u);
    let d = wscale(b);
    let q = W[prm(5) + b * 4u + (u & 3u)];
    let p = unit_pos(u);
    return Unit(d * (nib_lo(q) - vec4<f32>(8.0)), d * (nib_hi(q) - vec4<f32>(8.0)), p.x, p.y);
}
