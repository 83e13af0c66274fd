// `O[g] = act(G[g]) * U[g]`. `prm(0)`: length, `prm(1)`: 0 SiLU, 1 GELU (tanh).
fn op(g: u32) {
    if (g < prm(0)) { O[g] = glu_act(G[g], prm(1)) * U[g]; }
}
