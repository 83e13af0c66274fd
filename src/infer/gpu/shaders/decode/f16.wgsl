// F16 rows that are whole units (columns a multiple of 8).
fn h2(w: u32) -> vec2<f32> { return vec2<f32>(half_to_f32(w & 0xffffu), half_to_f32(w >> 16u)); }
fn unit(rl: u32, u: u32) -> Unit {
    let w = (rl * prm(2) + 8u * u) >> 1u;
    let lo = vec4<f32>(h2(W[w]), h2(W[w + 1u]));
    let hi = vec4<f32>(h2(W[w + 2u]), h2(W[w + 3u]));
    return Unit(lo, hi, 8u * u, 8u * u + 4u);
}
