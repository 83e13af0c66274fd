// Stores four outputs of row offset `off` at column `c`, masked at the row's end (`prm(2)`
// columns) for ragged F32/F16 rows.
fn ostore(off: u32, c: u32, v: vec4<f32>) {
    for (var k = 0u; k < 4u; k++) { if (c + k < prm(2)) { O[off + c + k] = v[k]; } }
}
