// The query, key and value projections of one row of `x` (n == 1) in one dispatch, without
// shared memory (the Rows family, see rows.wgsl with RB rows per invocation and XB = 1): the
// invocations cover the rows of weight 0, then 1, then 2, `RB` rows each; weight `m` is read
// through its own decoder `unit{m}` (see wgsl.rs) and written to `O{m}`. `prm(3)` units per row
// (the three share their columns), `prm(8 + m)` rows of weight `m`.
@compute @workgroup_size(64)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    var g = (wid.x + wid.y * nwg.x) * 64u + li;
    let upr = prm(3);
//#for m
    let rt{m} = (prm(8u + {m}u) + RB - 1u) / RB;
//#end
    var sel = 0u;
    if (g >= rt0) { g -= rt0; sel = 1u; if (g >= rt1) { g -= rt1; sel = 2u; if (g >= rt2) { return; } } }
    let r0 = g * RB;
//#for m
    if (sel == {m}u) {
        let rows = prm(8u + {m}u);
//#for r
        let rr{r} = min(r0 + {r}u, rows - 1u);
        var a{r} = vec4<f32>(0.0);
//#end
        // Whole blocks with their scales applied once where the format has them (see rows.wgsl).
        let whole = select(0u, upr >> 2u, BLOCKED{m});
        for (var b = 0u; b < whole; b++) {
            var xsl = vec4<f32>(0.0);
            var xsh = vec4<f32>(0.0);
//#for r
            let s{r} = bscale{m}(rr{r}, b);
            var ql{r} = vec4<f32>(0.0);
            var qh{r} = vec4<f32>(0.0);
//#end
//#for k
            {
                let p = bpos{m}(b, {k}u);
                let xl = xload4(p.x);
                let xh = xload4(p.y);
                xsl += xl;
                xsh += xh;
//#for r
                let w{r} = uraw{m}(rr{r}, b, {k}u);
                ql{r} += w{r}.lo * xl;
                qh{r} += w{r}.hi * xh;
//#end
            }
//#end
//#for r
            a{r} += s{r}.x * ql{r} + s{r}.y * xsl + s{r}.z * qh{r} + s{r}.w * xsh;
//#end
        }
        for (var u = whole * 4u; u < upr; u++) {
            let p = unit_pos{m}(u);
            let xl = xload(0u, p.x);
            let xh = xload(0u, p.y);
//#for r
            let w{r} = unit{m}(rr{r}, u);
            a{r} += w{r}.lo * xl + w{r}.hi * xh;
//#end
        }
//#for r
        if (r0 + {r}u < rows) { O{m}[prm(20u + {m}u) + r0 + {r}u] = dot(a{r}, vec4<f32>(1.0)); }
//#end
    }
//#end
}
