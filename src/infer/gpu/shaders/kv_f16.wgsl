// The half-precision KV cache's conversions: f32 to IEEE half bits rounded to nearest even, in
// integer arithmetic, so that every adapter stores the bits the CPU engine stores whatever its
// `pack2x16float` does (WGSL leaves out-of-range values to the implementation); `half_to_f32`
// (common.wgsl) reads them back exactly, subnormals included.
fn f32_to_half(x: f32) -> u32 {
    let bits = bitcast<u32>(x);
    let sign = (bits >> 16u) & 0x8000u;
    let a = bits & 0x7fffffffu;
    if (a >= 0x47800000u) {
        // 65536 and above: infinity; NaN stays a (quiet) NaN.
        return sign | select(0x7c00u, 0x7e00u, a > 0x7f800000u);
    }
    if (a < 0x38800000u) {
        // Below the smallest normal half: the mantissa shifted into a subnormal, rounded.
        let s = 126u - (a >> 23u);
        if (s > 24u) { return sign; }
        let m = (a & 0x7fffffu) | 0x800000u;
        let q = m >> s;
        let rem = m & ((1u << s) - 1u);
        let halfway = 1u << (s - 1u);
        return sign | (q + select(0u, 1u, rem > halfway || (rem == halfway && (q & 1u) == 1u)));
    }
    // Rebias the exponent (wrapping), round the 13 dropped bits to nearest even.
    return sign | ((a + 0xc8000fffu + ((a >> 13u) & 1u)) >> 13u);
}
// Two values as one word: `lo` in the low half (the lower element index).
fn pack_halves(lo: f32, hi: f32) -> u32 { return f32_to_half(lo) | (f32_to_half(hi) << 16u); }
fn half_lo(w: u32) -> f32 { return half_to_f32(w & 0xffffu); }
fn half_hi(w: u32) -> f32 { return half_to_f32(w >> 16u); }
