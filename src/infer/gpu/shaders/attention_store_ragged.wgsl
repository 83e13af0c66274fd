// The output rows of attention for any head size (`prm(3)`): `vec4` `d` of the row at element
// offset `off`, elements past the row's end not written.
fn sto(off: u32, d: u32, v: vec4<f32>) {
    for (var k = 0u; k < 4u; k++) { if (4u * d + k < prm(3)) { O[off + 4u * d + k] = v[k]; } }
}
