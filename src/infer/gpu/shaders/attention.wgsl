// Causal attention, one workgroup (128 threads) per (query row, head), any head size. Rows are
// read as `vec4`s through `ldq`/`ldk`/`ldv` and written through `sto` (attention_io.wgsl,
// or attention_io_ragged.wgsl, masked, when the head size is not a multiple of 4); offsets are
// in elements, `d` counts `vec4`s. Keys come in tiles of 128: thread j scores key t0 + j into
// `sc`, then the threads work as `KG` key groups of `TPV` lanes, lane `dv` of a group holding
// `vec4`s dv, dv + TPV, ... (`DPT` of them) of the head, group g folding keys g, g + KG, ... of
// every tile into its own online softmax (running max `m`, sum `l`, output `acc`). The groups
// are merged at the end, each rescaled to the common max. Two barriers per tile: `sc` is
// written before the first and read only between the two. Set per head size (kernel.rs):
// `TPV` (a power of two, at least the head's `vec4`s up to 128), `KG = 128 / TPV`, `DPT`
// (1 up to 512 dims, more only with `KG == 1`), `QN = TPV * DPT`. The accumulators are
// registers `acc0`, `acc1`, ...: the `//#for e` blocks are unrolled `DPT` times when the source
// is composed (see rows.wgsl). `prm(0)` n, `prm(1)` n_head,
// `prm(2)` n_head_kv, `prm(3)` head_dim, `pos0()` (`prm(4)` or the step buffer), `prm(5)` scale, `prm(6)` window.
// Flash-decoding (the `//#for s` blocks, kept once in that variant; the `//#for o` blocks, kept
// otherwise): the keys of a (row, head) are split into `prm(7)` ranges of `prm(8)` keys (whole
// tiles of 128 on long contexts), one workgroup each, and a workgroup writes its unnormalized output to `PO`
// and its running max and sum to `PML` instead of `O`; attention_reduce.wgsl merges them.
var<workgroup> qs: array<vec4<f32>, QN>;
var<workgroup> sc: array<f32, 128>;
var<workgroup> ro: array<vec4<f32>, 128>;
var<workgroup> rl: array<f32, 128>;
var<workgroup> rm: array<f32, 128>;
@compute @workgroup_size(128)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    var wg = wid.x + wid.y * nwg.x;
    let nh = prm(1);
    var part = 0u;
//#for s
    part = wg % prm(7);
    wg = wg / prm(7);
//#end
    if (wg < prm(0) * nh) {
        let h = wg % nh;
        let i = wg / nh;
        let hd = prm(3);
        let v4 = (hd + 3u) / 4u;
        let kvw = prm(2) * hd;
        let kvoff = (h / (nh / prm(2))) * hd;
        let p = pos0() + i;
        let win = prm(6);
        var tb = select(0u, p + 1u - win, win > 0u && p + 1u > win);
        var te = p + 1u;
//#for s
        tb = min(tb + part * prm(8), te);
        te = min(tb + prm(8), te);
//#end
        let qoff = (i * nh + h) * hd;
        let scale = prmf(5);
        for (var d = li; d < v4; d += 128u) { qs[d] = ldq(qoff, d); }
        workgroupBarrier();
        let dv = li % TPV;
        let kg = li / TPV;
        var m = -3.0e38;
        var l = 0.0;
//#for e
        var acc{e} = vec4<f32>(0.0);
//#end
        for (var t0 = tb; t0 < te; t0 += 128u) {
            let cnt = min(128u, te - t0);
            var s = -3.0e38;
            if (li < cnt) {
                let ko = (t0 + li) * kvw + kvoff;
                var dt = vec4<f32>(0.0);
                for (var d = 0u; d < v4; d++) { dt += qs[d] * ldk(ko, d); }
                s = (dt.x + dt.y + dt.z + dt.w) * scale;
            }
            sc[li] = s;
            workgroupBarrier();
            if (dv < v4) {
                for (var j = kg; j < cnt; j += KG) {
                    let sj = sc[j];
                    if (sj > m) {
                        let c = exp(m - sj);
//#for e
                        acc{e} *= c;
//#end
                        l *= c;
                        m = sj;
                    }
                    let pj = exp(sj - m);
                    l += pj;
                    let vo = (t0 + j) * kvw + kvoff;
//#for e
                    if (DPT == 1u || dv + {e}u * TPV < v4) { acc{e} += pj * ldv(vo, dv + {e}u * TPV); }
//#end
                }
            }
            workgroupBarrier();
        }
        if (KG == 1u) {
            // One group: its softmax is the whole one.
//#for e
//#for o
            if (dv + {e}u * TPV < v4) { sto(qoff, dv + {e}u * TPV, acc{e} / l); }
//#end
//#for s
            if (dv + {e}u * TPV < v4) { PO[(wg * prm(7) + part) * v4 + dv + {e}u * TPV] = acc{e}; }
//#end
//#end
//#for s
            if (li == 0u) { PML[2u * (wg * prm(7) + part)] = m; PML[2u * (wg * prm(7) + part) + 1u] = l; }
//#end
        } else {
            // Several groups (then DPT == 1).
            ro[li] = acc0;
            rl[li] = l;
            rm[li] = m;
            workgroupBarrier();
            if (kg == 0u && dv < v4) {
                var mx = m;
                for (var g = 1u; g < KG; g++) { mx = max(mx, rm[g * TPV + dv]); }
                var a = vec4<f32>(0.0);
                var ls = 0.0;
                for (var g = 0u; g < KG; g++) {
                    let c = exp(rm[g * TPV + dv] - mx);
                    a += c * ro[g * TPV + dv];
                    ls += c * rl[g * TPV + dv];
                }
//#for o
                sto(qoff, dv, a / ls);
//#end
//#for s
                PO[(wg * prm(7) + part) * v4 + dv] = a;
                if (dv == 0u) { PML[2u * (wg * prm(7) + part)] = mx; PML[2u * (wg * prm(7) + part) + 1u] = ls; }
//#end
            }
        }
    }
}
