// F32 rows that are whole units (columns a multiple of 8).
fn unit(rl: u32, u: u32) -> Unit {
    let e = rl * prm(2) + 8u * u;
    let lo = bitcast<vec4<f32>>(vec4<u32>(W[e], W[e + 1u], W[e + 2u], W[e + 3u]));
    let hi = bitcast<vec4<f32>>(vec4<u32>(W[e + 4u], W[e + 5u], W[e + 6u], W[e + 7u]));
    return Unit(lo, hi, 8u * u, 8u * u + 4u);
}
