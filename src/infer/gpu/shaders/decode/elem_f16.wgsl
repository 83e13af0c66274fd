// Element e of an F16 weight.
fn welem(e: u32) -> f32 { return half_to_f32((W[e >> 1u] >> ((e & 1u) << 4u)) & 0xffffu); }
