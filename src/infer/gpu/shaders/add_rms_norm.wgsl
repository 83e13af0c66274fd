// Residual add and RMS norm in one pass, one workgroup of 64 per row (as rms_norm.wgsl):
// `X += H` (the variant with a pre-norm adds `rms_norm(H) * PRE` instead, the post-norm of
// gemma3), then `O = rms_norm(X) * G`. Each thread reads and writes only its own strided
// columns, so `O` may be `H`. Composed with `//#for p` (pre-norm) or `//#for q` (plain) once. `prm(0)` rows, `prm(1)` dim, `prm(2)` eps.
var<workgroup> red: array<f32, 64>;
@compute @workgroup_size(64)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let row = wid.x + wid.y * nwg.x;
    if (row < prm(0)) {
        let dim = prm(1);
        let off = row * dim;
//#for p
        var hs = 0.0;
        for (var j = li; j < dim; j += 64u) { let v = H[off + j]; hs += v * v; }
        red[li] = hs;
        workgroupBarrier();
        var ht = 0.0;
        for (var k = 0u; k < 64u; k++) { ht += red[k]; }
        let hinv = 1.0 / sqrt(ht / f32(dim) + prmf(2));
        workgroupBarrier();
//#end
        var s = 0.0;
        for (var j = li; j < dim; j += 64u) {
//#for p
            let v = X[off + j] + H[off + j] * hinv * PRE[j];
//#end
//#for q
            let v = X[off + j] + H[off + j];
//#end
            X[off + j] = v;
            s += v * v;
        }
        red[li] = s;
        workgroupBarrier();
        var t = 0.0;
        for (var k = 0u; k < 64u; k++) { t += red[k]; }
        let inv = 1.0 / sqrt(t / f32(dim) + prmf(2));
        for (var j = li; j < dim; j += 64u) { O[off + j] = X[off + j] * inv * G[j]; }
    }
}
