"""The decoder's T steps (rawcap.decoder.decoder_*) with the sums grouped into fewer, larger
products: the host code of the CPU version (kernels/cpu/decoder.py) and the CUDA version
(kernels/decoder.py), which differ only in the passes they hand in (`Passes`).

Version 0 runs decode_step T times. Each step multiplies the same h[B, H] by three weights
(the attention's Wh, the f_beta gate's, the LSTM's Wh) and the input [words_t, beta * context]
by Wx; its backward multiplies back through all four and forms every weight gradient, T times,
as small products of B rows (and adds each into its total); it also writes dfeats[B, L, D]
and dproj[B, L, A] for each step and adds them up. Here, with G the width of the gates (4H for
the LSTM, H for the RNN):

forward     before the loop, the words' share of the gates for all T steps in one GEMM,
              words @ Wx[:E] + b;
            per step, one GEMM hW = h @ [Wh_att | W_gate | Wh] feeds the attention, the gate and
              the cell; the attention pass (z, alpha, context from proj + hW_att); the gate pass
              (beta = sigmoid(hW_gate + b_gate), x = beta * context); one GEMM x @ Wx[E:]
              completes the gates a_t, and `ops.lstm_pointwise_forward` (tanh for the RNN)
              makes h_t, c_t.
backward    per step, the pointwise backward gives da; one GEMM dx = da @ Wx[E:].T; the gate's
              backward pass; the attention's backward pass adds the step's dproj into one
              [B, L, A] buffer (and dv's rows into one [B, A]) and leaves dfeats; one GEMM
              dh_prev = [du | dgate | da] @ [Wh_att | W_gate | Wh].T;
            after the loop every weight gradient is one GEMM over all T * B rows, e.g.
              dWh = [h_0; ...; h_{T-1}].T @ [da_1; ...; da_T], and dfeats = sum_t alpha_t (x)
              dcontext_t is one batched product [B, L, T] @ [B, T, D].
The sums are version 0's, added in another order. Arrays are kept time-major ([T, B, ...]) so
that each step's slice is contiguous.
"""
from rawcap.backend import array_module, ops
from rawcap.layers.activations import sigmoid


class Passes:
    """What a device supplies: the attention's passes, and the gate's (array operations here;
    a device may fuse them). hW[B, A (+ D) + G] and rows[B, A (+ D) + G] are a step's
    h @ [Wh_att | W_gate | Wh] and its gradient: each pass reads or writes its own columns, the
    attention's first (a < A), so no pass needs a strided slice."""

    def attention_forward(self, feats, proj, hW, v, z, alpha, context):
        """Write z[B, L, A] = tanh(proj + hW[:, None, :A]), alpha[B, L], context[B, D]."""
        raise NotImplementedError

    def attention_backward(self, feats, z, alpha, v, dcontext, dalpha, dproj, rows, dv_rows):
        """Add the step's dproj[B, L, A] and dv_rows[B, A] into theirs; write sum_l dproj into
        rows[:, :A]."""
        raise NotImplementedError

    def gate_forward(self, hW, A, gate_b, context, beta, x):
        """beta = sigmoid(hW[:, A:A + D] + gate_b), x = beta * context."""
        D = context.shape[1]
        beta[...] = sigmoid(hW[:, A:A + D] + gate_b)
        array_module(x).multiply(beta, context, out=x)

    def lstm_forward(self, word_part, hW, xW, c, h_next):
        """The LSTM cell: a = word_part + hW[:, -4H:] + xW, then `ops.lstm_pointwise_forward`;
        h goes into h_next[B, H]. -> c[B, H], the pointwise cache."""
        h, c, pointwise = ops.lstm_pointwise_forward(word_part + hW[:, -word_part.shape[1]:] + xW, c)
        h_next[...] = h
        return c, pointwise

    def lstm_backward(self, dh_out, dh, dc, cache, da, rows):
        """`ops.lstm_pointwise_backward` of dh_out + dh (the step's own output and the next
        step's): da[B, 4H] into da and into rows[:, -4H:]. -> dc_prev."""
        da[...], dc_prev = ops.lstm_pointwise_backward(dh_out + dh, dc, cache)
        rows[:, -da.shape[1]:] = da
        return dc_prev

    def gate_backward(self, dx, context, beta, rows, A, dcontext):
        """rows[:, A:A + D] = dx * context * beta (1 - beta) (sigmoid's backward),
        dcontext = dx * beta."""
        D = context.shape[1]
        rows[:, A:A + D] = dx * context * beta * (1 - beta)
        array_module(dx).multiply(dx, beta, out=dcontext)


def forward(passes, feats, proj, h, c, words, params, config):
    """feats[B, L, D], proj[B, L, A], h[B, H], c[B, H] (RNN: [B, 0]), words[B, T, E]
    -> hs[B, T, H], alphas[B, T, L], cache (as rawcap.decoder.decoder_forward)."""
    xp = array_module(feats)
    B, T, E = words.shape
    _, L, D = feats.shape
    A, H = proj.shape[2], h.shape[1]
    dtype = feats.dtype
    Wx, b = params[f"{config.cell}_wx"], params[f"{config.cell}_b"]
    gate_w = [params["gate_w"]] if config.f_beta else []
    W_h = xp.concatenate([params["att_h_w"], *gate_w, params[f"{config.cell}_wh"]], axis=1)
    words_tb = xp.ascontiguousarray(words.transpose(1, 0, 2)).reshape(T * B, E)  # row t*B + n
    word_part = (words_tb @ Wx[:E] + b).reshape(T, B, -1)                # [T, B, G]: one GEMM
    G = word_part.shape[2]
    feats, proj = xp.ascontiguousarray(feats), xp.ascontiguousarray(proj)
    v = xp.ascontiguousarray(params["att_v"])

    h_all = xp.empty((T + 1, B, H), dtype)            # h_0 (given), then every step's h
    h_all[0] = h
    z = xp.empty((T, B, L, A), dtype)                 # tanh(u) of every step
    alpha = xp.empty((T, B, L), dtype)
    context = xp.empty((T, B, D), dtype)              # before the gate
    beta = xp.empty((T, B, D), dtype) if config.f_beta else None
    x = xp.empty((T, B, D), dtype) if config.f_beta else context     # the cell's context input
    cells = []
    for t in range(T):
        hW = h_all[t] @ W_h                           # [B, A (+ D) + G]
        passes.attention_forward(feats, proj, hW, v, z[t], alpha[t], context[t])
        if config.f_beta:
            passes.gate_forward(hW, A, params["gate_b"], context[t], beta[t], x[t])
        xW = x[t] @ Wx[E:]
        if config.cell == "lstm":
            c, pointwise = passes.lstm_forward(word_part[t], hW, xW, c, h_all[t + 1])
            cells.append(pointwise)
        else:
            h_all[t + 1] = xp.tanh(word_part[t] + hW[:, -G:] + xW)
    hs = xp.ascontiguousarray(h_all[1:].transpose(1, 0, 2))
    cache = (passes, params, config, W_h, words_tb, feats, v, h_all, z, alpha, context, beta, x,
             cells)
    return hs, xp.ascontiguousarray(alpha.transpose(1, 0, 2)), cache


def backward(dhs, dalphas, cache):
    """dhs[B, T, H], dalphas[B, T, L] or None -> dfeats, dproj, dh0, dc0 (None for the RNN),
    dwords[B, T, E], {name: gradient} (as rawcap.decoder.decoder_backward)."""
    (passes, params, config, W_h, words_tb, feats, v, h_all, z, alpha, context, beta, x,
     cells) = cache
    xp = array_module(dhs)
    T, B, L, A = z.shape
    D, E = feats.shape[2], words_tb.shape[1]
    dtype = dhs.dtype
    Wx = params[f"{config.cell}_wx"]
    gate = D if config.f_beta else 0
    G = W_h.shape[1] - A - gate

    dhs = xp.ascontiguousarray(dhs.transpose(1, 0, 2))                   # [T, B, H]
    dalphas = (xp.zeros((T, B, L), dtype) if dalphas is None
               else xp.ascontiguousarray(dalphas.transpose(1, 0, 2)))
    rows = xp.empty((T, B, W_h.shape[1]), dtype)     # [du_sum | dgate | da] of every step
    das = xp.empty((T, B, G), dtype)                  # da again, contiguous, for the products
    dcontext = xp.empty((T, B, D), dtype)
    dproj = xp.zeros((B, L, A), dtype)
    dv_rows = xp.zeros((B, A), dtype)
    dh, dc = xp.zeros_like(dhs[0]), None
    for t in reversed(range(T)):
        if config.cell == "lstm":
            dc = passes.lstm_backward(dhs[t], dh, dc, cells[t], das[t], rows[t])
        else:
            das[t] = (dhs[t] + dh) * (1 - h_all[t + 1] ** 2)
            rows[t, :, A + gate:] = das[t]
        dx = das[t] @ Wx[E:].T
        if config.f_beta:
            passes.gate_backward(dx, context[t], beta[t], rows[t], A, dcontext[t])
        else:
            dcontext[t] = dx
        passes.attention_backward(feats, z[t], alpha[t], v, dcontext[t], dalphas[t], dproj,
                                  rows[t], dv_rows)
        dh = rows[t] @ W_h.T

    # Every weight gradient: one product over all T * B rows, formed as (dY.T @ X).T rather
    # than X.T @ dY (the same sums): OpenBLAS on two threads ran these long, thin products
    # about twice as fast that way round.
    rows, da = rows.reshape(T * B, -1), das.reshape(T * B, G)
    dW_h = (rows.T @ h_all[:T].reshape(T * B, -1)).T
    inputs = xp.concatenate([words_tb, x.reshape(T * B, D)], axis=1)     # [T*B, E + D]
    grads = {"att_h_w": dW_h[:, :A], "att_v": dv_rows.sum(axis=0),
             "gate_w": dW_h[:, A:A + gate], "gate_b": rows[:, A:A + gate].sum(axis=0),
             f"{config.cell}_wx": (da.T @ inputs).T, f"{config.cell}_wh": dW_h[:, -G:],
             f"{config.cell}_b": da.sum(axis=0)}
    if not config.f_beta:                           # the gate's parameters are not used
        grads["gate_w"], grads["gate_b"] = xp.zeros_like(params["gate_w"]), xp.zeros_like(params["gate_b"])
    grads = {name: xp.ascontiguousarray(g) for name, g in grads.items()}
    dwords = xp.ascontiguousarray((da @ Wx[:E].T).reshape(T, B, E).transpose(1, 0, 2))
    dfeats = alpha.transpose(1, 2, 0) @ dcontext.transpose(1, 0, 2)      # [B, L, T] @ [B, T, D]
    return dfeats, dproj, dh, dc, dwords, grads
