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

const SH: vec4<u32> = vec4<u32>(0u, 8u, 16u, 24u);
const SH4: vec4<u32> = vec4<u32>(4u, 12u, 20u, 28u);
const M4: vec4<u32> = vec4<u32>(15u);

// Eight weights of a row and the columns they multiply: `lo` holds columns e0..e0+3, `hi`
// columns e1..e1+3.
struct Unit { lo: vec4<f32>, hi: vec4<f32>, e0: u32, e1: u32 }
