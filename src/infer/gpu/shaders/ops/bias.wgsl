// The biases of ops/rope_store.wgsl.
fn bq(j: u32) -> f32 { return BQ[j]; }
fn bk(j: u32) -> f32 { return BK[j]; }
fn bv(j: u32) -> f32 { return BV[j]; }
