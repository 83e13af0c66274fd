// Unit positions of the plain formats (F32, F16): unit u is columns 8u..8u+7.
fn unit_pos(u: u32) -> vec2<u32> { return vec2<u32>(8u * u, 8u * u + 4u); }
