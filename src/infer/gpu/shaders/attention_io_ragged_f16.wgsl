// Head rows of attention.wgsl with half-precision caches for any head size (`prm(3)`): element
// `e` of `K` or `V` is half `e & 1` of word `e >> 1`; elements past the row's end read as 0.
fn ldq(off: u32, d: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    for (var k = 0u; k < 4u; k++) { if (4u * d + k < prm(3)) { v[k] = Q[off + 4u * d + k]; } }
    return v;
}
fn half_at(w: u32, e: u32) -> f32 { return half_to_f32((w >> (16u * (e & 1u))) & 0xffffu); }
fn ldk(off: u32, d: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    for (var k = 0u; k < 4u; k++) { let e = off + 4u * d + k; if (4u * d + k < prm(3)) { v[k] = half_at(K[e >> 1u], e); } }
    return v;
}
fn ldv(off: u32, d: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    for (var k = 0u; k < 4u; k++) { let e = off + 4u * d + k; if (4u * d + k < prm(3)) { v[k] = half_at(V[e >> 1u], e); } }
    return v;
}
