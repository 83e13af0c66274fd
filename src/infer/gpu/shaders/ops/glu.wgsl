// `O[g] = act(G[g]) * U[g]`. `prm(0)`: length, `prm(1)`: 0 SiLU, 1 GELU (tanh).
fn op(g: u32) {
    if (g < prm(0)) {
        let x = G[g];
        var a: f32;
        if (prm(1) == 0u) {
            a = x / (1.0 + exp(min(-x, 80.0)));
        } else {
            a = 0.5 * x * (1.0 + tanh_(0.7978845608028654 * (x + 0.044715 * x * x * x)));
        }
        O[g] = a * U[g];
    }
}
