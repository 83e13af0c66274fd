// Matmul without shared memory or barriers (for CPU-emulated adapters): invocation `g`
// computes `RB` consecutive weight rows for `XB` consecutive rows of `x`, looping over every
// unit of the row; the accumulators are `vec4`s in registers. The `//#for r` / `//#for i` /
// `//#for k` blocks are unrolled when the source is composed (`r` in 0..RB, `i` in 0..XB, `k` in
// 0..4, `{r}` and `{i}` replaced by the index), so there are no private arrays. Rows past the
// end are clamped for the loads and skipped for the stores, so the loop has no divergent branch.
// Same parameters as tiled.wgsl; 64 invocations per workgroup.
//
// The formats with one scale per 32-weight block (`BLOCKED`: Q4_0, Q4_1, Q5_0, Q8_0) go a block
// (4 units) at a time: the decoder gives the block's `bscale` s and each unit's unscaled values
// (`uraw`), with weight = s.x * raw + s.y, so a row's block is sum(raw * x) times s.x plus s.y
// times the block's sum of x, which every row shares: the scales are decoded once per block and
// row, not once per unit, and multiplied once. Its `k` blocks are unrolled (k in 0..4, a
// literal in each copy, so that the decoder's offsets fold). Other formats take the unit loop.
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
        var xs{i} = vec4<f32>(0.0);
//#end
//#for r
        let s{r} = bscale(rr{r}, b);
//#for i
        var q{r}_{i} = vec4<f32>(0.0);
//#end
//#end
//#for k
        {
            let p = bpos(b, {k}u);
//#for i
            let xl{i} = xload4(xv{i} + p.x);
            let xh{i} = xload4(xv{i} + p.y);
            xs{i} += xl{i} + xh{i};
//#end
//#for r
            let w{r} = uraw(rr{r}, b, {k}u);
//#for i
            q{r}_{i} += w{r}.lo * xl{i} + w{r}.hi * xh{i};
//#end
//#end
        }
//#end
//#for r
//#for i
        a{r}_{i} += s{r}.x * q{r}_{i} + s{r}.y * xs{i};
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
