// Repetition penalty, one invocation per id. `prm(0)` offset of the row, `prm(1)` width,
// `prm(2)` ids, `prm(3)` penalty. Ids are distinct, so no two invocations touch one value.
fn op(g: u32) {
    if (g < prm(2)) {
        let id = I[g];
        if (id < prm(1)) {
            let e = prm(0) + id;
            let v = X[e];
            let p = prmf(3);
            X[e] = select(v * p, v / p, v > 0.0);
        }
    }
}
