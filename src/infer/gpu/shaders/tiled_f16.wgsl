// tiled.wgsl's product for the quantized formats with f16 tiles (the `f16` family; needs
// `shader-f16`): the same 32 (x rows) by 64 (weight rows) output tile and 256 invocations, a
// block of 4 units (32 columns) per step, but the weight tile holds the block's unscaled values
// (`uraw`: 4- to 8-bit integers, exact in f16) in half the shared memory, and the block's scales
// (`bscale`, as in rows.wgsl: weight = s.x * raw + s.y in a unit's `lo` columns, s.z * raw + s.w
// in its `hi` ones) are applied once per block and row: sum(raw * x) times the scale plus the
// offset times the block's sum of x. x, the products and the sums stay f32 (rounding x to f16
// moves a model's logits past what the families are held to; see docs/PERFORMANCE.md), so the
// result differs from the f32 tiles' only in the order of the additions. Same parameters as
// tiled.wgsl.
var<workgroup> ws: array<vec4<f16>, 512>;
var<workgroup> xs: array<vec2<f32>, 512>;
var<workgroup> sc: array<vec4<f32>, 64>;
@compute @workgroup_size(256)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let wg = wid.x + wid.y * nwg.x;
    let n = prm(0);
    let rows = prm(1);
    let cols = prm(2);
    let blocks = prm(3) >> 2u;
    let base = tile_base(wg);
    let rbase = base.x;
    let ibase = base.y;
    let tw = li & 15u;
    let tx = li >> 4u;
    let lr = li >> 2u;
    let lk = li & 3u;
    let rl = min(rbase + lr, rows - 1u);
    let xi = min(ibase + (lr & 31u), n - 1u) * (cols >> 2u);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    for (var b = 0u; b < blocks; b++) {
        // Rows past the end are clamped for the loads (their sums are never stored).
        let un = uraw(rl, b, lk);
        for (var j = 0u; j < 4u; j++) {
            ws[(lk * 8u + j) * 16u + (lr >> 2u)][lr & 3u] = f16(un.lo[j]);
            ws[(lk * 8u + 4u + j) * 16u + (lr >> 2u)][lr & 3u] = f16(un.hi[j]);
        }
        if (lk == 0u) { sc[lr] = bscale(rl, b); }
        if (li < 128u) {
            let p = bpos(b, lk);
            let lo = xload4(xi + p.x);
            let hi = xload4(xi + p.y);
            for (var j = 0u; j < 4u; j++) {
                xs[(lk * 8u + j) * 16u + (lr >> 1u)][lr & 1u] = lo[j];
                xs[(lk * 8u + 4u + j) * 16u + (lr >> 1u)][lr & 1u] = hi[j];
            }
        }
        workgroupBarrier();
        var ql0 = vec4<f32>(0.0);
        var ql1 = vec4<f32>(0.0);
        var qh0 = vec4<f32>(0.0);
        var qh1 = vec4<f32>(0.0);
        var xl = vec2<f32>(0.0);
        var xh = vec2<f32>(0.0);
        for (var g = 0u; g < 32u; g += 8u) {
            for (var j = 0u; j < 4u; j++) {
                let k = g + j;
                let wl = vec4<f32>(ws[k * 16u + tw]);
                let vl = xs[k * 16u + tx];
                ql0 += vl.x * wl;
                ql1 += vl.y * wl;
                xl += vl;
                let wh = vec4<f32>(ws[(k + 4u) * 16u + tw]);
                let vh = xs[(k + 4u) * 16u + tx];
                qh0 += vh.x * wh;
                qh1 += vh.y * wh;
                xh += vh;
            }
        }
        let s0 = sc[tw * 4u];
        let s1 = sc[tw * 4u + 1u];
        let s2 = sc[tw * 4u + 2u];
        let s3 = sc[tw * 4u + 3u];
        let sl = vec4<f32>(s0.x, s1.x, s2.x, s3.x);
        let ml = vec4<f32>(s0.y, s1.y, s2.y, s3.y);
        let sh = vec4<f32>(s0.z, s1.z, s2.z, s3.z);
        let mh = vec4<f32>(s0.w, s1.w, s2.w, s3.w);
        acc0 += sl * ql0 + ml * xl.x + sh * qh0 + mh * xh.x;
        acc1 += sl * ql1 + ml * xl.y + sh * qh1 + mh * xh.y;
        workgroupBarrier();
    }
    tile_store(base, li, acc0, acc1);
}
