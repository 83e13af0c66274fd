// Rotary embedding in place, one invocation per rotated pair (see rope_angle.wgsl). `prm(0)` n,
// `prm(1)` heads, `prm(2)` head_dim, `prm(4)` pos0.
fn op(g: u32) {
    let hr = prm(3) / 2u;
    let nh = prm(1);
    if (g < prm(0) * nh * hr) {
        let k = g % hr;
        let t = g / hr;
        let h = t % nh;
        let i = t / nh;
        let cs = rope_cs(prm(4) + i, k);
        let ix = rope_idx((i * nh + h) * prm(2), k);
        let x0 = X[ix.x];
        let x1 = X[ix.y];
        X[ix.x] = x0 * cs.x - x1 * cs.y;
        X[ix.y] = x0 * cs.y + x1 * cs.x;
    }
}
