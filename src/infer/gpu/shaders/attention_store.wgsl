// The output rows of attention when the head size is a multiple of 4: `vec4` `d` of the row at
// element offset `off` (a multiple of 4).
fn sto(off: u32, d: u32, v: vec4<f32>) { O[(off >> 2u) + d] = v; }
