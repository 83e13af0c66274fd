// The cache write of ops/rope_store.wgsl into `f32` caches: one element per invocation.
fn op(g: u32) {
    let qp = qpairs();
    let ke = prm(0) * kv_width();
    let at = pos0() * kv_width();
    if (g < qp) {
        rope_q(g);
    } else if (g < qp + ke) {
        KC[at + g - qp] = key(g - qp);
    } else if (g < qp + 2u * ke) {
        VC[at + g - qp - ke] = value(g - qp - ke);
    }
}
