// Bias or per-head norms (where the variant has them: `bq`/`bk`/`bv`, `qnorm`/`knorm`,
// `gq`/`gk` and `qset` from bias.wgsl, no_bias.wgsl or head_norm.wgsl), RoPE and the KV-cache
// write of one step in one dispatch (see rope_angle.wgsl): invocations `[0, qp)` rotate a pair
// of `Q` (in place, or into `OQ` after the norms: `qset`), the next ones write the rotated `K` rows to `KC` and the `V` rows to `VC`
// (store_f32.wgsl: one element each; store_f16.wgsl: two, packed as halves in a word); `K` and
// `V` are only read, so no invocation reads what another writes. `prm(0)` n, `prm(1)` query
// heads, `prm(2)` head_dim, `pos0()` (wgsl.rs: `prm(4)` or the step buffer) the cache row of row 0, `prm(9)` KV heads.
fn qpairs() -> u32 { return prm(0) * prm(1) * (prm(3) / 2u); }
fn kv_width() -> u32 { return prm(9) * prm(2); }
fn rope_q(g: u32) {
    let hr = prm(3) / 2u;
    let hd = prm(2);
    let nh = prm(1);
    let qw = nh * hd;
    let k = g % hr;
    let t = g / hr;
    let h = t % nh;
    let i = t / nh;
    let cs = rope_cs(pos0() + i, k);
    let base = (i * nh + h) * hd;
    let ix = rope_idx(base, k);
    let s = qnorm(base);
    let x0 = (Q[ix.x] + bq(ix.x - i * qw)) * s * gq(ix.x - base);
    let x1 = (Q[ix.y] + bq(ix.y - i * qw)) * s * gq(ix.y - base);
    qset(ix.x, x0 * cs.x - x1 * cs.y);
    qset(ix.y, x0 * cs.y + x1 * cs.x);
}
// Element `e` of this step's keys (row `e / kv_width()`), biased and rotated.
fn key(e: u32) -> f32 {
    let hr = prm(3) / 2u;
    let hd = prm(2);
    let kvd = kv_width();
    let i = e / kvd;
    let j = e % kvd;
    let d = j % hd;
    let base = i * kvd + j - d;
    let s = knorm(base);
    if (d < prm(3)) {
        var k = d / 2u;
        if (prm(6) != 0u) { k = d % hr; }
        let cs = rope_cs(pos0() + i, k);
        let ix = rope_idx(base, k);
        let x0 = (K[ix.x] + bk(ix.x - i * kvd)) * s * gk(ix.x - base);
        let x1 = (K[ix.y] + bk(ix.y - i * kvd)) * s * gk(ix.y - base);
        if (base + d == ix.x) { return x0 * cs.x - x1 * cs.y; }
        return x0 * cs.y + x1 * cs.x;
    }
    return (K[e] + bk(j)) * s * gk(d);
}
// Element `e` of this step's values, biased.
fn value(e: u32) -> f32 { return V[e] + bv(e % kv_width()); }
