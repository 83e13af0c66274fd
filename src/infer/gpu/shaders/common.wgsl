// Declarations every kernel gets. Every kernel reads its scalar parameters from `P`, a uniform
// array of `vec4<u32>` bound after its storage buffers, through `prm(i)` (a `u32`) and `prmf(i)`
// (an `f32` stored as its bits).

fn prm(i: u32) -> u32 { return P[i >> 2u][i & 3u]; }
fn prmf(i: u32) -> f32 { return bitcast<f32>(prm(i)); }

// IEEE half bits to f32, exactly (subnormals included, unlike a flushing unpack). Branch-free:
// on a CPU adapter a branch that lanes take differently runs both ways anyway.
fn half_to_f32(h: u32) -> f32 {
    let s = (h & 0x8000u) << 16u;
    let e = (h >> 10u) & 0x1fu;
    let m = h & 0x3ffu;
    let sub = s | bitcast<u32>(f32(m) * 5.9604644775390625e-8);
    let special = s | 0x7f800000u | (m << 13u);
    let normal = s | ((e + 112u) << 23u) | (m << 13u);
    return bitcast<f32>(select(select(normal, special, e == 31u), sub, e == 0u));
}

// tanh that is accurate near 0 and never overflows.
fn tanh_(x: f32) -> f32 {
    let a = abs(x);
    if (a < 0.125) {
        let x2 = x * x;
        return x * (1.0 + x2 * (-0.33333333333 + x2 * (0.13333333333 + x2 * -0.05396825397)));
    }
    let t = exp(-2.0 * min(a, 20.0));
    return sign(x) * ((1.0 - t) / (1.0 + t));
}

// Fields of a word as exact f32s without shifting by a vector: a CPU adapter runs a shift by a
// per-lane amount one lane at a time (SwiftShader: 8x an AND), while a mask, an integer
// multiply, an i32-to-f32 conversion and a multiply by a power of two are one vector
// instruction each. `b4(w, MK)` is field k of `MK` (k = 0..3, one per byte) divided by 256^k,
// so a field at bit 8k + s reads as its value times 2^s; fields must not reach bit 31.
const SC8: vec4<f32> = vec4<f32>(1.0, 0.00390625, 1.52587890625e-05, 5.9604644775390625e-08);
const NIB: vec4<u32> = vec4<u32>(0xfu, 0xf00u, 0xf0000u, 0xf000000u);
fn b4(w: u32, mk: vec4<u32>) -> vec4<f32> { return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(w) & mk)) * SC8; }
// The low and the high nibbles of the four bytes of `w`.
fn nib_lo(w: u32) -> vec4<f32> { return b4(w, NIB); }
fn nib_hi(w: u32) -> vec4<f32> { return b4(w >> 4u, NIB); }
// The four signed bytes of `w`: each multiplied to the top byte, where i32 reads its sign.
fn sbytes(w: u32) -> vec4<f32> {
    let t = (vec4<u32>(w) * vec4<u32>(16777216u, 65536u, 256u, 1u)) & vec4<u32>(0xff000000u);
    return vec4<f32>(bitcast<vec4<i32>>(t)) * 5.9604644775390625e-08;
}

// Eight weights of a row and the columns they multiply: `lo` holds columns e0..e0+3, `hi`
// columns e1..e1+3.
struct Unit { lo: vec4<f32>, hi: vec4<f32>, e0: u32, e1: u32 }
