// Unit positions of the 32-weight blocks that store weight j and j + 16 in one byte (Q4_0,
// Q4_1, Q5_0): unit u is columns e..e+3 and e+16..e+19 of its block.
fn unit_pos(u: u32) -> vec2<u32> { let e = (u >> 2u) * 32u + (u & 3u) * 4u; return vec2<u32>(e, e + 16u); }
