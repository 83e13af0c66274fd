// Q5_0: per block of 32 weights an f16 scale d (in the scale array), a word of the 32 fifth
// bits and 4 words of low nibbles; weight = d * (q - 16).
fn unit(rl: u32, u: u32) -> Unit {
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
}
