// Four activations of row offset `off` from column `c`, as one `vec4` (rows are whole units).
fn xload(off: u32, c: u32) -> vec4<f32> { return X[(off + c) >> 2u]; }
// The `i`th `vec4` of `X`.
fn xload4(i: u32) -> vec4<f32> { return X[i]; }
