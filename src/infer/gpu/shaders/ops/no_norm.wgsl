// No per-head norms: scale 1 and gain 1 leave every value as it is, and the rotated queries
// go back into `Q`.
fn qnorm(base: u32) -> f32 { return 1.0; }
fn knorm(base: u32) -> f32 { return 1.0; }
fn gq(d: u32) -> f32 { return 1.0; }
fn gk(d: u32) -> f32 { return 1.0; }
fn qset(i: u32, v: f32) { Q[i] = v; }
