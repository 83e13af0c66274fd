// Stores four outputs of row offset `off` at column `c`, as one `vec4` (rows are whole units).
fn ostore(off: u32, c: u32, v: vec4<f32>) { O[(off + c) >> 2u] = v; }
