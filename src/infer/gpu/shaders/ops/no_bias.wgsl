// ops/rope_store.wgsl without biases: adding 0.0 leaves every value as it is.
fn bq(j: u32) -> f32 { return 0.0; }
fn bk(j: u32) -> f32 { return 0.0; }
fn bv(j: u32) -> f32 { return 0.0; }
