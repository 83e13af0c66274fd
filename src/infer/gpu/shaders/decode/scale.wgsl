// The lone f16 scale of block `b` of the formats whose scales sit in an array in front of the
// payloads (Q4_0, Q5_0, Q8_0, Q6_K; see layout.rs).
fn wscale(b: u32) -> f32 { let h = unpack2x16float(W[b >> 1u]); return select(h.x, h.y, (b & 1u) == 1u); }
