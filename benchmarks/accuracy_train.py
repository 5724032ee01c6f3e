"""Measured errors of the training kernels against mpmath (not a test).

    PYTHONPATH=. python benchmarks/accuracy_train.py

Rows of 3, 17, 64 and 300 at logit scales 1 and 10 (4 rows each), the
active ISA; prints the max error in ULP of the exact result (the gradient of
cross_entropy: in ULP of max(softmax, q)).
"""
import numpy as np, mpmath, csoftmax
mpmath.mp.dps = 50
rng = np.random.default_rng(42)
res = {}
for dt in (np.float32, np.float64):
    for name in ("softmax_backward", "log_softmax_backward"):
        worst = 0.0
        for n in (3, 17, 64, 300):
            for scale in (1.0, 10.0):
                x = rng.standard_normal((4, n)) * scale
                dy = rng.standard_normal((4, n)).astype(dt)
                a = (csoftmax.softmax if name == "softmax_backward" else csoftmax.log_softmax)(x.astype(dt))
                got = getattr(csoftmax, name)(a, dy)
                for r in range(4):
                    A = [mpmath.mpf(float(v)) for v in a[r]]; D = [mpmath.mpf(float(v)) for v in dy[r]]
                    if name == "softmax_backward":
                        s = mpmath.fsum(p*q for p, q in zip(A, D)); ref = [p*(q - s) for p, q in zip(A, D)]
                    else:
                        s = mpmath.fsum(D); ref = [q - mpmath.exp(p)*s for p, q in zip(A, D)]
                    for g, e in zip(got[r], ref):
                        fe = float(e)
                        if fe == 0: continue
                        ulp = float(np.spacing(np.abs(np.asarray(fe, dt))))
                        worst = max(worst, float(abs(mpmath.mpf(float(g)) - e)) / ulp)
        res[(name, np.dtype(dt).name)] = worst
    # cross-entropy: loss and grad (class targets, mean)
    wl = wg = 0.0
    for n in (3, 17, 64, 300):
        for scale in (1.0, 10.0):
            x = (rng.standard_normal((4, n)) * scale).astype(dt)
            t = rng.integers(0, n, 4)
            rows = csoftmax.cross_entropy(x, t, reduction="none")
            _, g = csoftmax.cross_entropy(x, t, reduction="sum", return_grad=True)
            for r in range(4):
                X = [mpmath.mpf(float(v)) for v in x[r]]
                m = max(X); lse = m + mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in X))
                e = lse - X[t[r]]
                ulp = float(np.spacing(np.abs(np.asarray(float(e), dt))))
                wl = max(wl, float(abs(mpmath.mpf(float(rows[r])) - e)) / ulp)
                for c in range(n):
                    p = mpmath.exp(X[c] - lse); q = 1 if c == t[r] else 0
                    ref = p - q
                    ulp = float(np.spacing(np.asarray(float(max(p, q)), dt)))
                    wg = max(wg, float(abs(mpmath.mpf(float(g[r, c])) - ref)) / ulp)
    res[("cross_entropy loss", np.dtype(dt).name)] = wl
    res[("cross_entropy grad (ULP of max(p,q))", np.dtype(dt).name)] = wg
for k, v in res.items():
    print(k, round(v, 3))
