// The Rows kernels' block form (see rows.wgsl) for the formats without one scale per 4 units
// (F32, F16, the K-quants): every unit already scaled, the block's factor 1.
fn bscale(rl: u32, u: u32) -> vec2<f32> { return vec2<f32>(1.0, 0.0); }
fn uraw(rl: u32, u: u32) -> Unit { return unit(rl, u); }
