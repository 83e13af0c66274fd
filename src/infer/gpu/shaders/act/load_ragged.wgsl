// Four activations of row offset `off` from column `c`, masked at the row's end (`prm(2)`
// columns) for ragged F32/F16 rows.
fn xload(off: u32, c: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    for (var k = 0u; k < 4u; k++) { if (c + k < prm(2)) { v[k] = X[off + c + k]; } }
    return v;
}
// The `i`th `vec4` of `X` (for the block form of rows.wgsl, which ragged rows never take).
fn xload4(i: u32) -> vec4<f32> { return xload(4u * i, 0u); }
