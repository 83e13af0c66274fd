// The cache write of ops/rope_store.wgsl into half-precision caches: two elements per
// invocation, packed in one word (kv_f16.wgsl; no `shader-f16` needed). The row width is
// even (checked at load), so a step's elements are whole words.
fn op(g: u32) {
    let qp = qpairs();
    let kw = prm(0) * kv_width() / 2u;
    let at = pos0() * kv_width() / 2u;
    if (g < qp) {
        rope_q(g);
    } else if (g < qp + kw) {
        let e = 2u * (g - qp);
        KC[at + g - qp] = pack_halves(key(e), key(e + 1u));
    } else if (g < qp + 2u * kw) {
        let e = 2u * (g - qp - kw);
        VC[at + g - qp - kw] = pack_halves(value(e), value(e + 1u));
    }
}
