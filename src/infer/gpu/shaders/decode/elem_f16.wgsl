// Element e of an F16 weight.
fn welem(e: u32) -> f32 { let h = unpack2x16float(W[e >> 1u]); return select(h.x, h.y, (e & 1u) == 1u); }
