// The per-head norms of the queries and the keys (gemma3) in one dispatch, one workgroup of 64
// per head row as rms_norm.wgsl: rows `[0, prm(0))` of `Q` normalized with `GQ` into `OQ`, the
// next `prm(3)` rows of `K` with `GK` into `OK`. `prm(1)` head size, `prm(2)` eps.
var<workgroup> red: array<f32, 64>;
@compute @workgroup_size(64)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let g = wid.x + wid.y * nwg.x;
    let dim = prm(1);
    let is_q = g < prm(0);
    if (g < prm(0) + prm(3)) {
        var row = g;
        if (!is_q) { row = g - prm(0); }
        let off = row * dim;
        var s = 0.0;
        for (var j = li; j < dim; j += 64u) {
            var v: f32;
            if (is_q) { v = Q[off + j]; } else { v = K[off + j]; }
            s += v * v;
        }
        red[li] = s;
        workgroupBarrier();
        var t = 0.0;
        for (var k = 0u; k < 64u; k++) { t += red[k]; }
        let inv = 1.0 / sqrt(t / f32(dim) + prmf(2));
        for (var j = li; j < dim; j += 64u) {
            if (is_q) { OQ[off + j] = Q[off + j] * inv * GQ[j]; } else { OK[off + j] = K[off + j] * inv * GK[j]; }
        }
    }
}
