// Head rows of attention.wgsl when the head size is a multiple of 4: `vec4` `d` of the row at
// element offset `off` (a multiple of 4).
fn ldq(off: u32, d: u32) -> vec4<f32> { return Q[(off >> 2u) + d]; }
fn ldk(off: u32, d: u32) -> vec4<f32> { return K[(off >> 2u) + d]; }
fn ldv(off: u32, d: u32) -> vec4<f32> { return V[(off >> 2u) + d]; }
