// RMS norm, one workgroup of 64 per row: strided sums of squares, one barrier, then every
// thread adds the 64 partial sums itself (a serial pass instead of a barrier per tree level:
// on CPU-emulated adapters every barrier switches between all the invocations). In place when
// `O` is `X`: each thread rewrites only what it read. `prm(0)` rows, `prm(1)` dim, `prm(2)` eps.
var<workgroup> red: array<f32, 64>;
@compute @workgroup_size(64)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let row = wid.x + wid.y * nwg.x;
    if (row < prm(0)) {
        let dim = prm(1);
        let off = row * dim;
        var s = 0.0;
        for (var j = li; j < dim; j += 64u) { let v = X[off + j]; s += v * v; }
        red[li] = s;
        workgroupBarrier();
        var t = 0.0;
        for (var k = 0u; k < 64u; k++) { t += red[k]; }
        let inv = 1.0 / sqrt(t / f32(dim) + prmf(2));
        for (var j = li; j < dim; j += 64u) { O[off + j] = X[off + j] * inv * G[j]; }
    }
}
