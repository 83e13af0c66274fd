// ops/rope_store.wgsl with gemma3's per-head RMS norms and no biases: each head of `Q` and of
// `K` scaled by its inverse RMS (`prm(10)` eps) and by the gains `GQ` / `GK`, the rotated
// queries written to `OQ` (other invocations still read their heads from `Q`). Each invocation
// sums its own head (`prm(2)` values): no shared memory, no barrier, and the heads are short.
// Only for full rotation (`prm(3)` == head_dim): the unrotated rest of a head is not written.
fn bq(j: u32) -> f32 { return 0.0; }
fn bk(j: u32) -> f32 { return 0.0; }
fn bv(j: u32) -> f32 { return 0.0; }
fn qnorm(base: u32) -> f32 {
    var s = 0.0;
    for (var j = 0u; j < prm(2); j++) { let v = Q[base + j]; s += v * v; }
    return 1.0 / sqrt(s / f32(prm(2)) + prmf(10));
}
fn knorm(base: u32) -> f32 {
    var s = 0.0;
    for (var j = 0u; j < prm(2); j++) { let v = K[base + j]; s += v * v; }
    return 1.0 / sqrt(s / f32(prm(2)) + prmf(10));
}
fn gq(d: u32) -> f32 { return GQ[d]; }
fn gk(d: u32) -> f32 { return GK[d]; }
fn qset(i: u32, v: f32) { OQ[i] = v; }
