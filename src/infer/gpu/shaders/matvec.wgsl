// Matrix-vector product (n == 1): `TPR` lanes per row (a power of two, fewer for short rows so
// that every lane has a few units), `256 / TPR` rows per workgroup; the lanes stride over the
// row's units, then a shared-memory tree reduction per row. Weight parameters: `prm(1)` rows
// in this part, `prm(2)` columns, `prm(3)` units per row, `prm(6)` first row of the part.
const RPW: u32 = 256u / TPR;
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let wg = wid.x + wid.y * nwg.x;
    let lane = li % TPR;
    let rl = wg * RPW + li / TPR;
    let rows = prm(1);
    let upr = prm(3);
    var acc = 0.0;
    if (rl < rows) {
        for (var u = lane; u < upr; u += TPR) {
            let w = unit(rl, u);
            acc += dot(w.lo, xload(0u, w.e0)) + dot(w.hi, xload(0u, w.e1));
        }
    }
    red[li] = acc;
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (lane < s) { red[li] += red[li + s]; }
        workgroupBarrier();
    }
    if (lane == 0u && rl < rows) { O[prm(6) + rl] = red[li]; }
}
