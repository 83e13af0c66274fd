// Matmul without shared memory or barriers (for CPU-emulated adapters): invocation `g`
// computes `RB` consecutive weight rows for `XB` consecutive rows of `x`, looping over every
// unit of the row; the accumulators are `vec4`s in registers. The `//#for r` / `//#for i` /
// `//#for k` blocks are unrolled when the source is composed (`r` in 0..RB, `i` in 0..XB, `k` in
// 0..4, `{r}` and `{i}` replaced by the index), so there are no private arrays. Rows past the
// end are clamped for the loads and skipped for the stores, so the loop has no divergent branch.
// Same parameters as tiled.wgsl; 64 invocations per workgroup.
//
// The quantized formats go a block of 4 units at a time (`BLOCKED`; F32 and F16 take the unit
// loop, see decode/unblocked.wgsl): the decoder gives the block's scales `bscale` s and each
// unit's unscaled values (`uraw`), with weight = s.x * raw + s.y for the unit's `lo` columns and
// s.z * raw + s.w for its `hi` ones, so a row's block is sum(raw * x) times the scale plus the
// offset times the block's sum of x, which every row shares: the scales are decoded once per
// block and row, not once per unit, and multiplied once. Its `k` copies are unrolled (`{k}` a
// literal in each, so that the decoder's offsets fold).
@compute @workgroup_size(64)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let g = (wid.x + wid.y * nwg.x) * 64u + li;
    let n = prm(0);
    let rows = prm(1);
    let cols = prm(2);
    let upr = prm(3);
    let rt = (rows + RB - 1u) / RB;
    if (g >= rt * ((n + XB - 1u) / XB)) { return; }
    let r0 = (g % rt) * RB;
    let i0 = (g / rt) * XB;
//#for r
    let rr{r} = min(r0 + {r}u, rows - 1u);
//#for i
    var a{r}_{i} = vec4<f32>(0.0);
//#end
//#end
//#for i
    let xo{i} = min(i0 + {i}u, n - 1u) * cols;
//#end
    let whole = select(0u, upr >> 2u, BLOCKED);
//#for i
    let xv{i} = xo{i} >> 2u;
//#end
    for (var b = 0u; b < whole; b++) {
//#for i
        var xsl{i} = vec4<f32>(0.0);
        var xsh{i} = vec4<f32>(0.0);
//#end
//#for r
        let s{r} = bscale(rr{r}, b);
//#for i
        var ql{r}_{i} = vec4<f32>(0.0);
        var qh{r}_{i} = vec4<f32>(0.0);
//#end
//#end
//#for k
        {
            let p = bpos(b, {k}u);
//#for i
            let xl{i} = xload4(xv{i} + p.x);
            let xh{i} = xload4(xv{i} + p.y);
            xsl{i} += xl{i};
            xsh{i} += xh{i};
//#end
//#for r
            let w{r} = uraw(rr{r}, b, {k}u);
//#for i
            ql{r}_{i} += w{r}.lo * xl{i};
            qh{r}_{i} += w{r}.hi * xh{i};
//#end
//#end
        }
//#end
//#for r
//#for i
        a{r}_{i} += s{r}.x * ql{r}_{i} + s{r}.y * xsl{i} + s{r}.z * qh{r}_{i} + s{r}.w * xsh{i};
//#end
//#end
    }
    for (var u = whole * 4u; u < upr; u++) {
        let p = unit_pos(u);
//#for i
        let xl{i} = xload(xo{i}, p.x);
        let xh{i} = xload(xo{i}, p.y);
//#end
//#for r
        let w{r} = unit(rr{r}, u);
//#for i
        a{r}_{i} += w{r}.lo * xl{i} + w{r}.hi * xh{i};
//#end
//#end
    }
//#for r
//#for i
    if (r0 + {r}u < rows && i0 + {i}u < n) { O[(i0 + {i}u) * prm(7) + prm(6) + r0 + {r}u] = dot(a{r}_{i}, vec4<f32>(1.0)); }
//#end
//#end
}
