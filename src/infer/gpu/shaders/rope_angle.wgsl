// The rotation of RoPE pair `k` at position `pos`, as (cos, sin), and where the pair sits in a
// head starting at `base`. Parameters: `prm(3)` n_rot, `prm(5)` freq_scale, `prm(6)` 1 for
// NEOX, `prm(7)` `-2 log2(base) / n_rot`, `prm(8)` 1 when `prm(16 + k)` holds the frequency of
// pair `k` (computed in f64 on the host). The angle is reduced to [-pi, pi] (Cody-Waite, with a
// 2 pi whose high part has 8 significant bits, so `q * hi` is exact) before `cos`/`sin`, which
// WGSL only specifies there.
fn rope_cs(pos: u32, k: u32) -> vec2<f32> {
    var f: f32;
    if (prm(8) != 0u) { f = bitcast<f32>(prm(16u + k)); } else { f = prmf(5) * exp2(f32(k) * prmf(7)); }
    let theta = f32(pos) * f;
    let q = round(theta * 0.15915494309189535);
    let r = (theta - q * 6.28125) - q * 0.0019353071795864769;
    return vec2<f32>(cos(r), sin(r));
}
fn rope_idx(base: u32, k: u32) -> vec2<u32> {
    if (prm(6) != 0u) { return vec2<u32>(base + k, base + k + prm(3) / 2u); }
    return vec2<u32>(base + 2u * k, base + 2u * k + 1u);
}
