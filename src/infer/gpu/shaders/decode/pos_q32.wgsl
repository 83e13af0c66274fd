// Unit positions of the 32-weight blocks that store weight j and j + 16 in one byte (Q4_0,
// Q4_1, Q5_0): unit u is columns e..e+3 and e+16..e+19 of its block.
fn unit_pos(u: u32) -> vec2<u32> { let e = (u >> 2u) * 32u + (u & 3u) * 4u; return vec2<u32>(e, e + 16u); }
// Unit k of block b in vec4s of the row (the Rows kernels' block form, see rows.wgsl).
fn bpos(b: u32, k: u32) -> vec2<u32> { return vec2<u32>(b * 8u + k, b * 8u + k + 4u); }
