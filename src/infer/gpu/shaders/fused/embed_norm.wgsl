// Embedding rows with the RMS norm after them (the first layer's): one workgroup per id, as
// embed.wgsl writing `O` (the residual stream), then `XN = rms_norm(O) * G` of the row as
// rms_norm.wgsl, each thread rereading the columns it wrote. The table's row of an id, its
// units and eps come from embed_one.wgsl (a table in one buffer) or embed_parts.wgsl (in up to
// three). Ids are checked on the host (clamped here all the same). `prm(0)` ids, `prm(2)`
// columns, `prm(3)` units per row, `prm(7)` scale.
var<workgroup> red: array<f32, 64>;
@compute @workgroup_size(64)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let i = wid.x + wid.y * nwg.x;
    if (i < prm(0)) {
        let at = erow(IDS[i]);
        let off = i * prm(2);
        let scale = prmf(7);
        var s = 0.0;
        for (var u = li; u < prm(3); u += 64u) {
            let w = eunit(at, u);
            let lo = scale * w.lo;
            let hi = scale * w.hi;
            ostore(off, w.e0, lo);
            ostore(off, w.e1, hi);
            s += dot(lo, lo) + dot(hi, hi);
        }
        red[li] = s;
        workgroupBarrier();
        var t = 0.0;
        for (var k = 0u; k < 64u; k++) { t += red[k]; }
        let inv = 1.0 / sqrt(t / f32(prm(2)) + eeps());
        for (var u = li; u < prm(3); u += 64u) {
            let p = epos(u);
            for (var h = 0u; h < 2u; h++) {
                let c = p[h];
                let x = O[(off + c) >> 2u];
                for (var k = 0u; k < 4u; k++) { XN[off + c + k] = x[k] * inv * G[c + k]; }
            }
        }
    }
}
