// Element e of an F32 weight.
fn welem(e: u32) -> f32 { return bitcast<f32>(W[e]); }
