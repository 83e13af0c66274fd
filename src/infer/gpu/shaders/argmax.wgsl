// Argmax of one row, lowest index on ties: strided scans, one barrier, then thread 0 merges
// the 256 partial results serially (no barrier per tree level; see rms_norm.wgsl).
// `prm(0)` offset of the row, `prm(1)` width, `prm(2)` slot.
var<workgroup> bv: array<f32, 256>;
var<workgroup> bi: array<u32, 256>;
@compute @workgroup_size(256)
fn k_main(@builtin(local_invocation_index) li: u32) {
    let off = prm(0);
    let w = prm(1);
    var best = 0.0;
    var idx = 0xffffffffu;
    for (var j = li; j < w; j += 256u) {
        let v = X[off + j];
        if (idx == 0xffffffffu || v > best) { best = v; idx = j; }
    }
    bv[li] = best;
    bi[li] = idx;
    workgroupBarrier();
    if (li == 0u) {
        for (var s = 1u; s < 256u; s++) {
            let ob = bv[s];
            let oi = bi[s];
            if (oi != 0xffffffffu && (idx == 0xffffffffu || ob > best || (ob == best && oi < idx))) {
                best = ob;
                idx = oi;
            }
        }
        I[prm(2)] = idx;
    }
}
