// Rotary embedding, one invocation per rotated pair. `prm(0)` n, `prm(1)` heads, `prm(2)`
// head_dim, `prm(3)` n_rot, `prm(4)` pos0, `prm(5)` freq_scale, `prm(6)` 1 for NEOX,
// `prm(7)` `-2 log2(base) / n_rot`, `prm(8)` 1 when `prm(16 + k)` holds the frequency of pair
// `k` (computed in f64 on the host). The angle is reduced to [-pi, pi] (Cody-Waite, with a
// 2 pi whose high part has 8 significant bits, so `q * hi` is exact) before `cos`/`sin`, which
// WGSL only specifies there.
fn op(g: u32) {
    let hr = prm(3) / 2u;
    let nh = prm(1);
    if (g < prm(0) * nh * hr) {
        let k = g % hr;
        let t = g / hr;
        let h = t % nh;
        let i = t / nh;
        var f: f32;
        if (prm(8) != 0u) { f = bitcast<f32>(prm(16u + k)); } else { f = prmf(5) * exp2(f32(k) * prmf(7)); }
        let theta = f32(prm(4) + i) * f;
        let q = round(theta * 0.15915494309189535);
        let r = (theta - q * 6.28125) - q * 0.0019353071795864769;
        let c = cos(r);
        let s = sin(r);
        let base = (i * nh + h) * prm(2);
        var i0 = base + 2u * k;
        var i1 = i0 + 1u;
        if (prm(6) != 0u) { i0 = base + k; i1 = base + k + hr; }
        let x0 = X[i0];
        let x1 = X[i1];
        X[i0] = x0 * c - x1 * s;
        X[i1] = x0 * s + x1 * c;
    }
}
