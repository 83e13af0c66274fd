// The table of fused/embed_norm.wgsl in up to three buffers, part `m` read through its own
// decoder `unit{m}` (see wgsl.rs) and holding the next `prm(8 + m)` rows (0 for a missing
// third); `prm(20)` eps. `erow(id)` is (part, row in part).
fn erow(id: u32) -> vec2<u32> {
    let r0 = prm(8u);
    let r1 = prm(9u);
    let c = min(id, r0 + r1 + prm(10u) - 1u);
    if (c < r0) { return vec2<u32>(0u, c); }
    if (c < r0 + r1) { return vec2<u32>(1u, c - r0); }
    return vec2<u32>(2u, c - r0 - r1);
}
fn eunit(at: vec2<u32>, u: u32) -> Unit {
    if (at.x == 0u) { return unit0(at.y, u); }
    if (at.x == 1u) { return unit1(at.y, u); }
    return unit2(at.y, u);
}
fn epos(u: u32) -> vec2<u32> { return unit_pos0(u); }
fn eeps() -> f32 { return prmf(20u); }
