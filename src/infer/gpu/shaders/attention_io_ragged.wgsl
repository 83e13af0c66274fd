// Head rows of attention.wgsl for any head size (`prm(3)`): `vec4` `d` of the row at element
// offset `off`, elements past the row's end read as 0 and not written.
fn ldq(off: u32, d: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    for (var k = 0u; k < 4u; k++) { if (4u * d + k < prm(3)) { v[k] = Q[off + 4u * d + k]; } }
    return v;
}
fn ldk(off: u32, d: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    for (var k = 0u; k < 4u; k++) { if (4u * d + k < prm(3)) { v[k] = K[off + 4u * d + k]; } }
    return v;
}
fn ldv(off: u32, d: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    for (var k = 0u; k < 4u; k++) { if (4u * d + k < prm(3)) { v[k] = V[off + 4u * d + k]; } }
    return v;
}
