// First pass of a top-k: the order key of the maximum of every chunk of `2^prm(3)` elements
// of the row (`prm(0)` offset, `prm(1)` width) into `M`, one invocation per chunk (`prm(4)`
// chunks). A streaming pass: no shared memory, no barriers.
// Second pass of a top-k, one workgroup: the `k = prm(2)` best chunks by (maximum, lower
// index), then the `k` best elements of those chunks, sorted into `V` (values, `-inf` for a
// NaN) and `O` (ids). The `k` best elements lie in those chunks: the `k`-th best chunk maximum
// `T` is at most the `k`-th best element, so every one of the `k` best elements is `>= T` and
// sits in a chunk whose maximum is `>= T`; chunks tied at `T` are taken lowest index first,
// and chunks are contiguous, so the lowest-index elements tied at the boundary are in them too.
//
// Both selections are a radix select over 64-bit composites (order key, !id), a total order
// with the lower id first on equal keys: each round histograms the next 8 bits of the elements
// sharing the prefix found so far (shared-memory atomics; two histograms, so one is cleared
// while the other is read: two barriers a round), then one thread walks the bins from the top
// to the one holding the `need`-th element, takes the bins above it whole and appends the bin
// to the prefix. It stops once that bin holds exactly the elements still needed (2 or 3
// rounds for real logits; the id rounds only run for exact ties at the boundary), and the
// selection is "prefix of the composite >= the prefix found", gathered in one more pass. No
// thread does O(k) work per element. Parameters: `prm(0)` offset of the row, `prm(1)` width,
// `prm(2)` k, `prm(3)` log2 of the chunk size, `prm(4)` chunks.
const W: u32 = 256u;
var<workgroup> hist: array<atomic<u32>, 512>;
// 0: prefix of the key, 1: prefix of !id, 2 and 3: their masks, 4: still needed.
var<workgroup> st: array<u32, 5>;
var<workgroup> done: u32;
var<workgroup> nsel: u32;
var<workgroup> cnt: atomic<u32>;
var<workgroup> sk: array<u32, 64>;
var<workgroup> si: array<u32, 64>;
var<workgroup> chunk: array<u32, 64>;

// Element j of the chunk maxima (m == 0) or of the elements of the chosen chunks (m == 1; past
// the row: (0, 0xffffffff), below every element).
fn elem(j: u32, m: u32) -> vec2<u32> {
    if (m == 0u) { return vec2<u32>(M[j], j); }
    let e = (chunk[j >> prm(3)] << prm(3)) | (j & ((1u << prm(3)) - 1u));
    if (e >= prm(1)) { return vec2<u32>(0u, 0xffffffffu); }
    return vec2<u32>(okey(e), e);
}

// Finds the prefix of the k-th best of elements 0..n into `st`; resets `cnt`.
fn radix(n: u32, k: u32, m: u32, li: u32) {
    workgroupBarrier();
    if (li == 0u) {
        st = array<u32, 5>(0u, 0u, 0u, 0u, k);
        done = select(0u, 1u, n <= k);
        atomicStore(&cnt, 0u);
    }
    for (var b = li; b < 256u; b += W) { atomicStore(&hist[b], 0u); }
    for (var r = 0u; r < 8u; r++) {
        if (workgroupUniformLoad(&done) != 0u) { break; }
        let hb = (r & 1u) * 256u;
        let ph = st[0];
        let pl = st[1];
        let mh = st[2];
        let ml = st[3];
        let sh = 24u - 8u * (r & 3u);
        for (var j = li; j < n; j += W) {
            let e = elem(j, m);
            let el = ~e.y;
            if ((e.x & mh) == ph && (el & ml) == pl) {
                atomicAdd(&hist[hb + ((select(el, e.x, r < 4u) >> sh) & 255u)], 1u);
            }
        }
        workgroupBarrier();
        for (var b = li; b < 256u; b += W) { atomicStore(&hist[256u - hb + b], 0u); }
        if (li == 0u) {
            var need = st[4];
            var b = 255u;
            loop {
                let h = atomicLoad(&hist[hb + b]);
                if (h >= need || b == 0u) { break; }
                need -= h;
                b -= 1u;
            }
            if (r < 4u) {
                st[0] = ph | (b << sh);
                st[2] = mh | (255u << sh);
            } else {
                st[1] = pl | (b << sh);
                st[3] = ml | (255u << sh);
            }
            st[4] = need;
            if (atomicLoad(&hist[hb + b]) == need) { done = 1u; }
        }
    }
    workgroupBarrier();
}

// The elements whose composite prefix is >= the one found (exactly min(n, k)) into sk/si.
fn gather(n: u32, m: u32, li: u32) {
    let ph = st[0];
    let pl = st[1];
    let mh = st[2];
    let ml = st[3];
    for (var j = li; j < n; j += W) {
        let e = elem(j, m);
        let eh = e.x & mh;
        let el = ~e.y & ml;
        if (eh > ph || (eh == ph && el >= pl)) {
            let s = atomicAdd(&cnt, 1u);
            if (s < 64u) {
                sk[s] = e.x;
                si[s] = e.y;
            }
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(W)
fn k_main(@builtin(local_invocation_index) li: u32) {
    let k = prm(2);
    radix(prm(4), k, 0u, li);
    gather(prm(4), 0u, li);
    for (var s = li; s < 64u; s += W) { chunk[s] = si[s]; }
    if (li == 0u) { nsel = min(atomicLoad(&cnt), k); }
    let n = workgroupUniformLoad(&nsel) << prm(3);
    radix(n, k, 1u, li);
    gather(n, 1u, li);
    let ns = min(atomicLoad(&cnt), k);
    for (var s = li; s < ns; s += W) {
        let key = sk[s];
        let id = si[s];
        var rank = 0u;
        for (var j = 0u; j < ns; j++) {
            let kj = sk[j];
            if (kj > key || (kj == key && si[j] < id)) { rank += 1u; }
        }
        var v = 0xff800000u;
        if ((key & 0x80000000u) != 0u) { v = key & 0x7fffffffu; } else if (key != 0u) { v = ~key; }
        V[rank] = bitcast<f32>(v);
        O[rank] = id;
    }
}
