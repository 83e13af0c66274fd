// Matrix-matrix product (n > 1): a workgroup computes a 32 (x rows) by 64 (weight rows) tile
// of the output. Each step dequantizes 4 units (32 columns) of 64 weight rows into shared
// memory once, gathers the matching 32 columns of 32 x rows (in the units' column order, which
// the dot product does not care about) and every thread accumulates 2 x 4 outputs. `prm(0)` n,
// `prm(1)` rows in this part, `prm(2)` columns, `prm(3)` units per row, `prm(6)` first row of
// the part, `prm(7)` the output's row stride.
var<workgroup> ws: array<vec4<f32>, 512>;
var<workgroup> xs: array<vec2<f32>, 512>;
@compute @workgroup_size(256)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let wg = wid.x + wid.y * nwg.x;
    let n = prm(0);
    let rows = prm(1);
    let cols = prm(2);
    let upr = prm(3);
    let base = tile_base(wg);
    let rbase = base.x;
    let ibase = base.y;
    let tw = li & 15u;
    let tx = li >> 4u;
    let lr = li >> 2u;
    let lk = li & 3u;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    for (var ku = 0u; ku < upr; ku += 4u) {
        let u = ku + lk;
        var un = Unit(vec4<f32>(0.0), vec4<f32>(0.0), 0u, 0u);
        if (rbase + lr < rows && u < upr) { un = unit(rbase + lr, u); }
        for (var j = 0u; j < 4u; j++) {
            ws[(lk * 8u + j) * 16u + (lr >> 2u)][lr & 3u] = un.lo[j];
            ws[(lk * 8u + 4u + j) * 16u + (lr >> 2u)][lr & 3u] = un.hi[j];
        }
        if (li < 128u) {
            let i = ibase + lr;
            var lo = vec4<f32>(0.0);
            var hi = vec4<f32>(0.0);
            if (i < n && u < upr) {
                let p = unit_pos(u);
                lo = xload(i * cols, p.x);
                hi = xload(i * cols, p.y);
            }
            for (var j = 0u; j < 4u; j++) {
                xs[(lk * 8u + j) * 16u + (lr >> 1u)][lr & 1u] = lo[j];
                xs[(lk * 8u + 4u + j) * 16u + (lr >> 1u)][lr & 1u] = hi[j];
            }
        }
        workgroupBarrier();
        for (var k = 0u; k < 32u; k++) {
            let w = ws[k * 16u + tw];
            let xv = xs[k * 16u + tx];
            acc0 += xv.x * w;
            acc1 += xv.y * w;
        }
        workgroupBarrier();
    }
    tile_store(base, li, acc0, acc1);
}
