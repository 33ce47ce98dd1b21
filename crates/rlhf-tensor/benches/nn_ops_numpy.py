#!/usr/bin/env python3
"""Baseline for benches/nn_ops.rs: the same ops written the usual way in numpy (f32), timed at the
same shapes, reporting the same figures (GB/s of the bytes each op must read and write; GFLOP/s of
the dense attention products). Medians. numpy's elementwise work is single-threaded; its BLAS
(OpenBLAS, used by attention's matmuls) is pinned to 1 and then 2 threads with threadpoolctl.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 crates/rlhf-tensor/benches/nn_ops_numpy.py

Needs numpy and threadpoolctl (pip install numpy threadpoolctl), in a venv outside the repo.
"""
import math
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

MODELS = {"gpt2": (4, 64, 768, 12, 50257), "tiny": (16, 128, 128, 4, 512)}
K = math.sqrt(2.0 / math.pi)


def median_seconds(fn, min_time=1.0, max_reps=200):
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start < min_time and len(times) < max_reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    e /= e.sum(-1, keepdims=True)
    return e


def cases(name, b, t, c, h, v):
    rng = np.random.default_rng(0)
    f = lambda *shape, s=1.0: (s * rng.standard_normal(shape)).astype(np.float32)
    rows = b * t
    x, g, beta, dout = f(rows, c), f(c), f(c), f(rows, c)

    def ln_fwd():
        m = x.mean(-1, keepdims=True)
        xc = x - m
        rstd = 1.0 / np.sqrt((xc * xc).mean(-1, keepdims=True) + 1e-5)
        return xc * rstd * g + beta, m, rstd

    _, m, rstd = ln_fwd()

    def ln_bwd():
        norm = (x - m) * rstd
        dnorm = dout * g
        dx = (dnorm - dnorm.mean(-1, keepdims=True)
              - norm * (dnorm * norm).mean(-1, keepdims=True)) * rstd
        return dx, (dout * norm).sum(0), dout.sum(0)

    hid, dhid = f(rows, 4 * c, s=2.0), f(rows, 4 * c)

    def gelu_fwd():
        return 0.5 * hid * (1.0 + np.tanh(K * (hid + 0.044715 * hid * hid * hid)))

    def gelu_bwd():
        th = np.tanh(K * (hid + 0.044715 * hid * hid * hid))
        return dhid * (0.5 * (1 + th) + 0.5 * hid * (1 - th * th) * K * (1 + 3 * 0.044715 * hid * hid))

    logits, dl = f(rows, v, s=3.0), f(rows, v)
    probs = softmax(logits)
    targets = (np.arange(rows) * 7919) % v
    idx = np.arange(rows)

    def sm_bwd():
        return probs * (dl - (dl * probs).sum(-1, keepdims=True))

    def ce_fused():
        p = softmax(logits)
        losses = -np.log(p[idx, targets])
        p[idx, targets] -= 1.0
        p /= rows
        return losses.mean(), p

    inv_t = np.float32(1 / 0.7)
    g_logp, g_ent = f(rows), f(rows)

    def lp_fwd():
        z = logits * inv_t
        zs = z - z.max(-1, keepdims=True)
        e = np.exp(zs)
        s = e.sum(-1, keepdims=True)
        lse = np.log(s)
        logp = zs[idx, targets] - lse[:, 0]
        ent = lse[:, 0] - (e * zs).sum(-1) / s[:, 0]
        return logp, ent

    def lp_bwd():
        z = logits * inv_t
        zs = z - z.max(-1, keepdims=True)
        p = softmax(zs)
        ez = (p * zs).sum(-1, keepdims=True)
        d = -p * (g_logp[:, None] + g_ent[:, None] * (zs - ez))
        d[idx, targets] += g_logp
        return d * inv_t

    d = c // h
    qkv = f(b, t, 3, h, d)
    q, k, vv = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (B, H, T, D)
    do = f(b, h, t, d)
    lengths = [t - (8 * i) % t for i in range(b)]
    real = np.array([[j < n for j in range(t)] for n in lengths])
    allowed = np.tril(np.ones((t, t), bool))[None, None] & real[:, None, None, :] & real[:, None, :, None]
    scale = 1.0 / math.sqrt(d)

    def att_fwd():
        s = np.where(allowed, (q @ k.transpose(0, 1, 3, 2)) * scale, -np.inf)
        mx = s.max(-1, keepdims=True)
        e = np.exp(s - np.where(np.isfinite(mx), mx, 0))
        tot = e.sum(-1, keepdims=True)
        p = np.divide(e, tot, out=np.zeros_like(e), where=tot > 0)
        return p @ vv, p

    _, att = att_fwd()

    def att_bwd():
        dv = att.transpose(0, 1, 3, 2) @ do
        datt = do @ vv.transpose(0, 1, 3, 2)
        ds = att * (datt - (datt * att).sum(-1, keepdims=True)) * scale
        return ds @ k, ds.transpose(0, 1, 3, 2) @ q, dv

    gb = lambda n: 4 * n / 1e9
    prods = b * h * t * t * d
    yield f"layernorm_fwd/{name}", ln_fwd, gb(2 * rows * c + 2 * rows + 2 * c), "GB/s"
    yield f"layernorm_bwd/{name}", ln_bwd, gb(3 * rows * c + 2 * rows + 3 * c), "GB/s"
    yield f"gelu_fwd/{name}", gelu_fwd, gb(2 * rows * 4 * c), "GB/s"
    yield f"gelu_bwd/{name}", gelu_bwd, gb(3 * rows * 4 * c), "GB/s"
    yield f"softmax_fwd/{name}", lambda: softmax(logits), gb(2 * rows * v), "GB/s"
    yield f"softmax_bwd/{name}", sm_bwd, gb(3 * rows * v), "GB/s"
    yield f"cross_entropy_fused/{name}", ce_fused, gb(2 * rows * v + rows), "GB/s"
    yield f"logprob_fwd/{name}", lp_fwd, gb(rows * v + 2 * rows), "GB/s"
    yield f"logprob_bwd/{name}", lp_bwd, gb(2 * rows * v + 2 * rows), "GB/s"
    yield f"attention_fwd/{name}", att_fwd, 4 * prods / 1e9, "GFLOP/s"
    yield f"attention_bwd/{name}", att_bwd, 8 * prods / 1e9, "GFLOP/s"


print(f"numpy {np.__version__}")
print(f"{'op/model':>28} {'1 thread':>10} {'2 threads':>10}  unit")
for name, dims in MODELS.items():
    for label, fn, work, unit in cases(name, *dims):
        rates = []
        for threads in (1, 2):
            with threadpool_limits(limits=threads):
                rates.append(work / median_seconds(fn))
        print(f"{label:>28} {rates[0]:>10.2f} {rates[1]:>10.2f}  {unit}")
