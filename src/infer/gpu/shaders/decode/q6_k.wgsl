// Q6_K: super-blocks of 256 weights, f16 d in the scale array, then 52 words: 32 of low
// nibbles, 16 of high bit pairs, 4 of signed 8-bit scales for 16 groups of 16;
// weight = d * sc * (q - 32).
fn unit_pos(u: u32) -> vec2<u32> {
    let uu = u & 31u;
    let r = uu & 15u;
    let e = (u >> 5u) * 256u + (uu >> 4u) * 128u + (r >> 3u) * 32u + (r & 7u) * 4u;
    return vec2<u32>(e, e + 64u);
}
fn sbyte(w: u32, i: u32) -> f32 { return f32(extractBits(bitcast<i32>(w), (i & 3u) * 8u, 8u)); }
fn unit(rl: u32, u: u32) -> Unit {
    let b = rl * prm(4) + (u >> 5u);
    let uu = u & 31u;
    let d = wscale(b);
    let base = prm(5) + b * 52u;
    let h = uu >> 4u;
    let g = (uu >> 3u) & 1u;
    let m = uu & 7u;
    let q = q6raw(base, h, g, m);
    let is_lo = 8u * h + 2u * g + (m >> 2u);
    let is_hi = is_lo + 4u;
    let sc_lo = sbyte(W[base + 48u + (is_lo >> 2u)], is_lo);
    let sc_hi = sbyte(W[base + 48u + (is_hi >> 2u)], is_hi);
    let lo = (d * sc_lo) * (q.lo - vec4<f32>(32.0));
    let hi = (d * sc_hi) * (q.hi - vec4<f32>(32.0));
    let p = unit_pos(u);
    return Unit(lo, hi, p.x, p.y);
}
// The 6-bit values of the unit at (h, g, m) of the super-block at word `base`: the low nibbles
// plus the two high bits of each weight, times 16 (bits 2g..2g+1 of each byte of its `qh` word
// for `lo`, bits 2g+4..2g+5 for `hi`).
fn q6raw(base: u32, h: u32, g: u32, m: u32) -> Unit {
    let ql = W[base + 16u * h + 8u * g + m];
    let qh = W[base + 32u + 8u * h + m] >> (2u * g);
    let lo = nib_lo(ql) + b4(qh, vec4<u32>(0x3u, 0x300u, 0x30000u, 0x3000000u)) * 16.0;
    let hi = nib_hi(ql) + b4(qh, vec4<u32>(0x30u, 0x3000u, 0x300000u, 0x30000000u));
    return Unit(lo, hi, 0u, 0u);
}
// The Rows kernels' block form (see rows.wgsl): block b of a row is units 4b..4b+3 (unit u as
// above: h, g and the group of 16 columns, m / 4, are the block's); weight = d * sc * raw -
// 32 d * sc with the scales of the block's two groups.
const BLOCKED: bool = true;
fn bpos(b: u32, k: u32) -> vec2<u32> {
    let e = (b >> 3u) * 64u + ((b >> 2u) & 1u) * 32u + ((b >> 1u) & 1u) * 8u + (b & 1u) * 4u + k;
    return vec2<u32>(e, e + 16u);
}
fn bscale(rl: u32, b: u32) -> vec4<f32> {
    let sb = rl * prm(4) + (b >> 3u);
    let d = wscale(sb);
    let base = prm(5) + sb * 52u;
    let j = b & 7u;
    let is_lo = 8u * (j >> 2u) + 2u * ((j >> 1u) & 1u) + (j & 1u);
    let is_hi = is_lo + 4u;
    let lo = d * sbyte(W[base + 48u + (is_lo >> 2u)], is_lo);
    let hi = d * sbyte(W[base + 48u + (is_hi >> 2u)], is_hi);
    return vec4<f32>(lo, -32.0 * lo, hi, -32.0 * hi);
}
fn uraw(rl: u32, b: u32, k: u32) -> Unit {
    let j = b & 7u;
    return q6raw(prm(5) + (rl * prm(4) + (b >> 3u)) * 52u, j >> 2u, (j >> 1u) & 1u, (j & 1u) * 4u + k);
}
