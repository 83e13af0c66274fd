// The lone f16 scale of block `b` of the formats whose scales sit in an array in front of the
// payloads (Q4_0, Q5_0, Q8_0, Q6_K; see layout.rs).

fn wscale(b: u32) -> f32 { return half_to_f32((W[b >> 1u] >> ((b & 1u) << 4u)) & 0xffffu); }
