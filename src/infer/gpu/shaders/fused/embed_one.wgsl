// The table of fused/embed_norm.wgsl in one buffer: `prm(1)` rows, `prm(8)` eps. `erow(id)` is
// (part, row in part).
fn erow(id: u32) -> vec2<u32> { return vec2<u32>(0u, min(id, prm(1) - 1u)); }
fn eunit(at: vec2<u32>, u: u32) -> Unit { return unit(at.y, u); }
fn epos(u: u32) -> vec2<u32> { return unit_pos(u); }
fn eeps() -> f32 { return prmf(8); }
