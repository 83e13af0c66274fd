// Matmul without shared memory or barriers (for CPU-emulated adapters): invocation `g`
// computes `RB` consecutive weight rows for `XB` consecutive rows of `x`, looping over every
// unit of the row; the accumulators are `vec4`s in registers. The `//#for r` / `//#for i` /
// `//#for k` blocks are unrolled when the source is composed (`r` in 0..RB, `i` in 0..XB, `k` in
// 0..4, `{r}` and `{i}` replaced by the index), so there are no private arrays. Rows past the
// end are clamped for the loads and skipped for the stores, so the loop has no divergent branch.
// Same parameters as tiled.wgsl; 64 invocations per workgroup.
//
// The units go 4 at a time, a 32-weight block of the formats with one scale per block: the
// decoder gives the block's `bscale` (s.x, s.y) and each unit's unscaled values (`uraw`), with
// weight = s.x * raw + s.y, so a row's block is sum(raw * x) times s.x plus s.y times the
// block's sum of x, which every row shares: the scales are decoded once per block and row, not
// once per unit, and multiplied once. (Formats without such blocks give scaled units and s =
// (1, 0); see decode/unblocked.wgsl.) Units past the last whole 4 go one at a time.
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
    let whole = upr & ~3u;
    for (var u0 = 0u; u0 < whole; u0 += 4u) {
//#for i
        var xs{i} = vec4<f32>(0.0);
//#end
//#for r
        let s{r} = bscale(rr{r}, u0);
//#for i
        var q{r}_{i} = vec4<f32>(0.0);
//#end
//#end
//#for k
        {
            let p = unit_pos(u0 + {k}u);
//#for i
            let xl{i} = xload(xo{i}, p.x);
            let xh{i} = xload(xo{i}, p.y);
            xs{i} += xl{i} + xh{i};
//#end
//#for r
            let w{r} = uraw(rr{r}, u0 + {k}u);
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
    for (var u = whole; u < upr; u++) {
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
