// Head rows of attention.wgsl with half-precision caches, when the head size is a multiple of
// 4: `K` and `V` hold 4 elements in a `vec2<u32>` (two words of halves, kv_f16.wgsl); `Q` as in
// attention_io.wgsl.
fn ldq(off: u32, d: u32) -> vec4<f32> { return Q[(off >> 2u) + d]; }
fn unpack4(w: vec2<u32>) -> vec4<f32> { return vec4<f32>(half_lo(w.x), half_hi(w.x), half_lo(w.y), half_hi(w.y)); }
fn ldk(off: u32, d: u32) -> vec4<f32> { return unpack4(K[(off >> 2u) + d]); }
fn ldv(off: u32, d: u32) -> vec4<f32> { return unpack4(V[(off >> 2u) + d]); }
