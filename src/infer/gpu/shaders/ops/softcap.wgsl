// `X[g] = cap * tanh(X[g] / cap)`. `prm(0)`: length, `prm(1)`: cap.
fn op(g: u32) {
    if (g < prm(0)) { let cap = prmf(1); X[g] = cap * tanh_(X[g] / cap); }
}
