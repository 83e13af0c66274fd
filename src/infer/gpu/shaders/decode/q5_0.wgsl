// Q5_0: per block of 32 weights an f16 scale d (in the scale array), a word of the 32 fifth
// bits and 4 words of low nibbles; weight = d * (q - 16). Unit u's fifth bits are bits
// 4(u & 3)..+3 (columns e..e+3) and the same plus 16 (columns e+16..e+19) of that word.
fn unit(rl: u32, u: u32) -> Unit {
    let b = rl * prm(4) + (u >> 2u);
    let d = wscale(b);
    let base = prm(5) + b * 5u;
    let qh = W[base] >> ((u & 3u) * 4u);
    let q = W[base + 1u + (u & 3u)];
    let hl = vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(qh) & vec4<u32>(1u, 2u, 4u, 8u))) * vec4<f32>(16.0, 8.0, 4.0, 2.0);
    let hh = vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(qh) & vec4<u32>(0x10000u, 0x20000u, 0x40000u, 0x80000u)))
        * vec4<f32>(2.44140625e-4, 1.220703125e-4, 6.103515625e-5, 3.0517578125e-5);
    let p = unit_pos(u);
    return Unit(d * (nib_lo(q) + hl - vec4<f32>(16.0)), d * (nib_hi(q) + hh - vec4<f32>(16.0)), p.x, p.y);
}
