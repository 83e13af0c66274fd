// Bias (where the variant has one: `bq`/`bk`/`bv` from bias*.wgsl), RoPE and the KV-cache
// write of one step in one dispatch (see rope_angle.wgsl): invocations `[0, qp)` rotate a pair
// of `Q` in place, `[qp, qp + ke)` write one element of the rotated `K` row to `KC`, the next
// `ke` one element of `V` to `VC`; `K` and `V` are only read, so no invocation reads what
// another writes. `prm(0)` n, `prm(1)` query heads, `prm(2)` head_dim, `prm(4)` pos0 (the
// cache row of row 0), `prm(9)` KV heads.
fn op(g: u32) {
    let hr = prm(3) / 2u;
    let n = prm(0);
    let hd = prm(2);
    let nh = prm(1);
    let qw = nh * hd;
    let kvd = prm(9) * hd;
    let qp = n * nh * hr;
    let ke = n * kvd;
    if (g < qp) {
        let k = g % hr;
        let t = g / hr;
        let h = t % nh;
        let i = t / nh;
        let cs = rope_cs(prm(4) + i, k);
        let ix = rope_idx((i * nh + h) * hd, k);
        let x0 = Q[ix.x] + bq(ix.x - i * qw);
        let x1 = Q[ix.y] + bq(ix.y - i * qw);
        Q[ix.x] = x0 * cs.x - x1 * cs.y;
        Q[ix.y] = x0 * cs.y + x1 * cs.x;
    } else if (g < qp + ke) {
        let e = g - qp;
        let i = e / kvd;
        let j = e % kvd;
        let d = j % hd;
        var val: f32;
        if (d < prm(3)) {
            var k = d / 2u;
            if (prm(6) != 0u) { k = d % hr; }
            let base = i * kvd + j - d;
            let cs = rope_cs(prm(4) + i, k);
            let ix = rope_idx(base, k);
            let x0 = K[ix.x] + bk(ix.x - i * kvd);
            let x1 = K[ix.y] + bk(ix.y - i * kvd);
            if (base + d == ix.x) { val = x0 * cs.x - x1 * cs.y; } else { val = x0 * cs.y + x1 * cs.x; }
        } else {
            val = K[e] + bk(j);
        }
        KC[(prm(4) + i) * kvd + j] = val;
    } else if (g < qp + 2u * ke) {
        let e = g - qp - ke;
        let i = e / kvd;
        let j = e % kvd;
        VC[(prm(4) + i) * kvd + j] = V[e] + bv(j);
    }
}
