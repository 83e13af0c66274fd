// The gated activation: `kind` 0 SiLU, 1 GELU (tanh).
fn glu_act(x: f32, kind: u32) -> f32 {
    if (kind == 0u) { return x / (1.0 + exp(min(-x, 80.0))); }
    return 0.5 * x * (1.0 + tanh_(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}
