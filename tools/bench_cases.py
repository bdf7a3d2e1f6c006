"""The cases tools/bench_kernels.py measures: each op's forward and backward at one shape.

A Case makes its inputs, runs any version of the op on them (returning the outputs to
validate), says how many bytes the op must move at least (or how many floating-point
operations it does), and optionally runs the same computation in PyTorch as the reference.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np

from rawcap.backend import implementation, versions


@dataclass
class Case:
    """One op at one shape. `inputs(xp, rng)` makes the arrays; `run(version, inputs)` runs the
    forward and backward with that version and returns the outputs to validate; `torch(inputs)`
    (optional) returns a callable that does the same with PyTorch and returns the same outputs."""
    op: str
    shape: str
    inputs: Callable
    run: Callable
    bytes: int = 0              # minimum bytes moved by forward + backward (streaming ops)
    flops: int = 0              # floating-point operations (GEMM-bound ops)
    torch: Callable = None
    versions_of: str = None     # the registry op whose versions run (default: op)


def case_versions(case, device):
    """The versions a case runs on `device` ("cuda" or "cpu"): version 0 and that device's."""
    return versions(case.versions_of or case.op, device)


def fn(function, version):
    return implementation(function, version)


def lstm_pointwise_case(N, H):
    def inputs(xp, rng):
        return [xp.asarray(rng.standard_normal(s), dtype=np.float32)
                for s in [(N, 4 * H), (N, H), (N, H), (N, H)]]

    def run(version, args):
        a, c_prev, dh, dc = args
        h, c, cache = fn("lstm_pointwise_forward", version)(a, c_prev)
        return (h, c, *fn("lstm_pointwise_backward", version)(dh, dc, cache))

    def torch_run(args):
        import torch
        a, c_prev, dh, dc = (torch.from_dlpack(x) for x in args)

        def go():
            a_ = a.detach().requires_grad_()
            c_ = c_prev.detach().requires_grad_()
            i, f, g, o = a_.chunk(4, dim=1)
            c = torch.sigmoid(f) * c_ + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            torch.autograd.backward([h, c], [dh, dc])
            return h, c, a_.grad, c_.grad
        return go
    # forward reads a, c_prev and writes h, c (7NH); backward reads dh, dc and what a and c_prev
    # hold (7NH) and writes da, dc_prev (5NH)
    return Case("lstm_pointwise", f"N={N} H={H}", inputs, run, bytes=19 * N * H * 4, torch=torch_run)


def softmax_ce_case(N, T, V):
    def inputs(xp, rng):
        mask = rng.random((N, T)) < 0.8
        return [xp.asarray(4 * rng.standard_normal((N, T, V)), dtype=np.float32),
                xp.asarray(rng.integers(0, V, (N, T))), xp.asarray(mask)]

    def run(version, args):
        loss, cache = fn("softmax_cross_entropy_forward", version)(*args)
        return loss, fn("softmax_cross_entropy_backward", version)(1.0, cache)

    def torch_run(args):
        import torch
        import torch.nn.functional as F
        logits, targets, mask = (torch.from_dlpack(x) for x in args)
        ignored = torch.where(mask, targets, torch.full_like(targets, -100))

        def go():
            x = logits.detach().requires_grad_()
            loss = F.cross_entropy(x.view(-1, V), ignored.view(-1), ignore_index=-100)
            loss.backward()
            return loss, x.grad
        return go
    # read the logits, write dlogits
    return Case("softmax_ce", f"N={N} T={T} V={V}", inputs, run, bytes=2 * N * T * V * 4,
                torch=torch_run)


def attention_case(N, L, D, H, A):
    def inputs(xp, rng):
        shapes = [(N, L, D), (N, L, A), (N, H), (H, A), (A,), (N, D), (N, L)]
        return [xp.asarray(0.5 * rng.standard_normal(s), dtype=np.float32) for s in shapes]

    def run(version, args):
        *forward_args, dcontext, dalpha = args
        context, alpha, cache = fn("attention_forward", version)(*forward_args)
        return (context, alpha, *fn("attention_backward", version)(dcontext, dalpha, cache))

    def torch_run(args):
        import torch
        tensors = [torch.from_dlpack(x) for x in args]

        def go():
            feats, proj, h, Wh, v = (t.detach().requires_grad_() for t in tensors[:5])
            z = torch.tanh(proj + (h @ Wh)[:, None, :])
            alpha = torch.softmax(z @ v, dim=1)
            context = (alpha[:, None, :] @ feats)[:, 0, :]
            torch.autograd.backward([context, alpha], tensors[5:])
            return context, alpha, feats.grad, proj.grad, h.grad, Wh.grad, v.grad
        return go
    # forward reads feats and proj, writes alpha and context; backward reads feats, proj
    # (or z) and writes dfeats and dproj
    return Case("attention", f"N={N} L={L} D={D} A={A}", inputs, run,
                bytes=(3 * N * L * D + 3 * N * L * A) * 4, torch=torch_run)


def conv2d_case(N, C, S, F):
    def inputs(xp, rng):
        return [xp.asarray(rng.standard_normal(s), dtype=np.float32)
                for s in [(N, C, S, S), (F, C, 3, 3), (N, F, S, S)]]

    def run(version, args):
        x, w, dout = args
        out, cache = fn("conv2d_forward", version)(x, w, None, pad=1)
        dx, dw, _ = fn("conv2d_backward", version)(dout, cache)
        return out, dx, dw

    def torch_run(args):
        import torch
        import torch.nn.functional as Fn
        x0, w0, dout = (torch.from_dlpack(t) for t in args)

        def go():
            x, w = x0.detach().requires_grad_(), w0.detach().requires_grad_()
            out = Fn.conv2d(x, w, padding=1)
            out.backward(dout)
            return out, x.grad, w.grad
        return go
    # three GEMMs of 2 * N * F * C*9 * S*S operations each
    return Case("conv2d", f"N={N} C={C} {S}x{S} F={F} k3", inputs, run,
                flops=3 * 2 * N * F * C * 9 * S * S, torch=torch_run)


def maxpool2d_case(N, C, S):
    def inputs(xp, rng):
        return [xp.asarray(rng.standard_normal((N, C, S, S)), dtype=np.float32),
                xp.asarray(rng.standard_normal((N, C, S // 2, S // 2)), dtype=np.float32)]

    def run(version, args):
        x, dout = args
        out, cache = fn("maxpool2d_forward", version)(x, 2, 2)
        return out, fn("maxpool2d_backward", version)(dout, cache)

    def torch_run(args):
        import torch
        import torch.nn.functional as F
        x0, dout = (torch.from_dlpack(t) for t in args)

        def go():
            x = x0.detach().requires_grad_()
            out = F.max_pool2d(x, 2, 2)
            out.backward(dout)
            return out, x.grad
        return go
    # forward reads x, writes x/4; backward reads dout (x/4) and writes dx
    return Case("maxpool2d", f"N={N} C={C} {S}x{S}", inputs, run,
                bytes=int(2.5 * N * C * S * S) * 4, torch=torch_run)


def bias_relu_case(N, C, S):
    def inputs(xp, rng):
        return [xp.asarray(rng.standard_normal(s), dtype=np.float32)
                for s in [(N, C, S, S), (C,), (N, C, S, S)]]

    def run(version, args):
        x, b, dout = args
        out, cache = fn("bias_relu_forward", version)(x, b)
        return (out, *fn("bias_relu_backward", version)(dout, cache))

    def torch_run(args):
        import torch
        x0, b0, dout = (torch.from_dlpack(t) for t in args)

        def go():
            x, b = x0.detach().requires_grad_(), b0.detach().requires_grad_()
            out = torch.relu(x + b[:, None, None])
            out.backward(dout)
            return out, x.grad, b.grad
        return go
    # forward reads x, writes out; backward reads dout and out, writes dx
    return Case("bias_relu", f"N={N} C={C} {S}x{S}", inputs, run, bytes=5 * N * C * S * S * 4,
                torch=torch_run)


def batchnorm2d_case(N, C, S):
    def inputs(xp, rng):
        return [xp.asarray(rng.standard_normal(s), dtype=np.float32)
                for s in [(N, C, S, S), (C,), (C,), (C,), (C,), (N, C, S, S)]]

    def run(version, args):
        x, gamma, beta, mean, var, dout = args
        out, stats, cache = fn("batchnorm2d_forward", version)(x, gamma, beta, mean, abs(var) + 1)
        return (out, *stats, *fn("batchnorm2d_backward", version)(dout, cache))

    def torch_run(args):
        import torch
        import torch.nn.functional as F
        x0, gamma0, beta0, mean0, var0, dout = (torch.from_dlpack(t) for t in args)

        def go():
            x, gamma = x0.detach().requires_grad_(), gamma0.detach().requires_grad_()
            beta = beta0.detach().requires_grad_()
            mean, var = mean0.clone(), var0.abs() + 1
            out = F.batch_norm(x, mean, var, gamma, beta, training=True, momentum=0.1, eps=1e-5)
            out.backward(dout)
            return out, mean, var, x.grad, gamma.grad, beta.grad
        return go
    # forward reads x twice for the statistics and once more, writes out and xhat; backward
    # reads dout and xhat twice, writes dx
    return Case("batchnorm2d", f"N={N} C={C} {S}x{S}", inputs, run, bytes=10 * N * C * S * S * 4,
                torch=torch_run)


def embedding_case(K, V, D):
    def inputs(xp, rng):
        return [xp.asarray(rng.integers(0, V, K)), xp.asarray(rng.standard_normal((V, D)), dtype=np.float32),
                xp.asarray(rng.standard_normal((K, D)), dtype=np.float32)]

    def run(version, args):
        ids, W, dout = args
        out, cache = fn("embedding_forward", version)(ids, W)
        return out, fn("embedding_backward", version)(dout, cache)

    def torch_run(args):
        import torch
        import torch.nn.functional as F
        ids, W0, dout = (torch.from_dlpack(t) for t in args)

        def go():
            W = W0.detach().requires_grad_()
            out = F.embedding(ids, W)
            out.backward(dout)
            return out, W.grad
        return go
    # forward reads K rows, writes them; backward reads dout and writes dW
    return Case("embedding", f"tokens={K} V={V} D={D}", inputs, run,
                bytes=(3 * K * D + V * D) * 4, torch=torch_run)


def adam_case(P):
    def inputs(xp, rng):
        return [xp.asarray(rng.standard_normal(P), dtype=np.float32) for _ in range(3)] + \
               [xp.asarray(rng.random(P), dtype=np.float32)]

    def run(version, args):
        p, g, m, v = (a.copy() for a in args)
        fn("adam_update", version)(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 3)
        return p, m, v

    def torch_run(args):
        import torch
        p0, g, m0, v0 = (torch.from_dlpack(t) for t in args)
        p = p0.clone()
        optimizer = torch.optim.Adam([p], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, fused=True)
        p.grad = g

        def go():
            with torch.no_grad():
                p.copy_(p0)
            optimizer.state[p] = {"step": torch.tensor(2.0, device=p.device),
                                  "exp_avg": m0.clone(), "exp_avg_sq": v0.clone()}
            optimizer.step()
            return p, optimizer.state[p]["exp_avg"], optimizer.state[p]["exp_avg_sq"]
        return go
    # read p, g, m, v; write p, m, v (the harness's copies of p, m, v are not counted)
    return Case("adam", f"P={P}", inputs, run, bytes=7 * P * 4, torch=torch_run)


def lstm_sequence_case(N, T, D, H):
    def inputs(xp, rng):
        shapes = [(N, T, D), (N, H), (N, H), (D, 4 * H), (H, 4 * H), (4 * H,), (N, T, H)]
        return [xp.asarray(0.3 * rng.standard_normal(s), dtype=np.float32) for s in shapes]

    def run(version, args):
        from rawcap.backend import kernels_pinned
        *forward_args, dh = args
        with kernels_pinned(f"lstm_pointwise={version}"):
            from rawcap.layers import lstm_backward, lstm_forward
            hs, cache = lstm_forward(*forward_args)
            dx, _, _, dWx, dWh, db = lstm_backward(dh, cache)
            return hs, dx, dWx, dWh, db

    def torch_run(args):
        import torch
        x0, h0, c0, Wx, Wh, b, dh = (torch.from_dlpack(t) for t in args)
        lstm = torch.nn.LSTM(D, H, batch_first=True).to(x0.device)
        with torch.no_grad():
            lstm.weight_ih_l0.copy_(Wx.T), lstm.weight_hh_l0.copy_(Wh.T)
            lstm.bias_ih_l0.copy_(b), lstm.bias_hh_l0.zero_()

        def go():
            lstm.zero_grad()
            x = x0.detach().requires_grad_()
            hs, _ = lstm(x, (h0[None], c0[None]))
            hs.backward(dh)
            return (hs, x.grad, lstm.weight_ih_l0.grad.T, lstm.weight_hh_l0.grad.T,
                    lstm.bias_ih_l0.grad)
        return go
    # every GEMM of forward and backward: x @ Wx, h @ Wh (2NT*4H*(D+H)), three times over
    return Case("lstm_sequence", f"N={N} T={T} D={D} H={H}", inputs, run,
                flops=3 * 2 * N * T * 4 * H * (D + H), torch=torch_run,
                versions_of="lstm_pointwise")


def cases(tiny, large=True):
    """The model's real shapes (the Flickr8k recipe: 32 images x 5 captions, T=20, V=2541,
    S=112, channels 16..128, E=128, H=256, A=128, L=49), then, if `large`, a large shape per op."""
    if tiny:
        return [lstm_pointwise_case(3, 5), softmax_ce_case(2, 3, 33), attention_case(2, 5, 3, 4, 3),
                conv2d_case(1, 2, 5, 3), maxpool2d_case(1, 2, 6), bias_relu_case(1, 2, 3),
                batchnorm2d_case(2, 2, 3),
                embedding_case(7, 5, 3), adam_case(33), lstm_sequence_case(2, 3, 4, 5)]
    recipe = [
        lstm_pointwise_case(160, 256), softmax_ce_case(160, 20, 2541),
        attention_case(160, 49, 128, 256, 128),
        conv2d_case(32, 3, 112, 16), conv2d_case(32, 64, 14, 128),
        maxpool2d_case(32, 16, 112), bias_relu_case(32, 16, 112),
        batchnorm2d_case(32, 16, 112), batchnorm2d_case(32, 128, 14),
        embedding_case(160 * 20, 2541, 128),        # the words
        embedding_case(160, 32, 49 * 128),          # each caption's image features
        adam_case(1_600_000),
    ]
    return recipe + ([
        lstm_pointwise_case(4096, 1024), softmax_ce_case(64, 64, 32768),
        attention_case(512, 196, 256, 512, 256), conv2d_case(64, 64, 56, 128),
        maxpool2d_case(64, 64, 112), bias_relu_case(64, 64, 112),
        embedding_case(65536, 32768, 512), adam_case(64_000_000),
        lstm_sequence_case(64, 20, 512, 512),
    ] if large else [])
