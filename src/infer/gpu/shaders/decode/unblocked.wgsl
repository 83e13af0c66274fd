// The Rows kernels' block form (see rows.wgsl) for the unquantized formats
// (F32, F16): never taken (`BLOCKED` false); these only let it compile.
const BLOCKED: bool = false;
fn bpos(b: u32, k: u32) -> vec2<u32> { return vec2<u32>(0u); }
fn bscale(rl: u32, b: u32) -> vec4<f32> { return vec4<f32>(1.0, 0.0, 1.0, 0.0); }
fn uraw(rl: u32, b: u32, k: u32) -> Unit { return unit(rl, 4u * b + k); }
