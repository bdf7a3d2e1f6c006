"""The decoder's T steps on the CPU (rawcap.model.decoder_*): the same sums as version 0,
grouped into fewer and larger matrix products.

Version 0 runs decode_step T times. Each step multiplies the same h[B, H] by three weights
(the attention's Wh, the f_beta gate's, the LSTM's Wh) and the input [words_t, beta * context]
by Wx; its backward multiplies back through all four and forms every weight gradient, T times,
as small products of B rows; it also writes dfeats[B, L, D] and dproj[B, L, A] for each step
and adds them up.

version 1   forward: the words' share of the LSTM input, words @ Wx[:E] + b, for all T steps
            in one GEMM before the loop; in the loop one GEMM h @ [Wh_att | W_gate | Wh] feeds
            the attention, the gate and the LSTM, and one more, (beta * context) @ Wx[E:],
            completes the gates a_t. The attention is version 3's Numba pass; the LSTM's
            pointwise part is `ops.lstm_pointwise_*` (the RNN's is tanh).
            backward: per step, the pointwise backward gives da; dh_prev is one GEMM,
            [du | dgate | da] @ [Wh_att | W_gate | Wh].T; attention version 3's backward pass
            adds the step's dproj into one [B, L, A] buffer and skips dfeats. After the loop
            every weight gradient is one GEMM over all B * T rows, e.g.
            dWh = [h_0; ...; h_{T-1}].T @ [da_1; ...; da_T], and
            dfeats = sum_t alpha_t (x) dcontext_t is one batched product [B, L, T] @ [B, T, D].
            The sums are version 0's, added in another order.
"""
import numpy as np

from rawcap.backend import ops
from rawcap.layers.activations import sigmoid

from .attention import _backward as attention_backward_pass
from .attention import _forward as attention_forward_pass

DEFAULT = 1


def decoder_forward_v1(feats, proj, h, c, words, params, config):
    """feats[B, L, D], proj[B, L, A], h[B, H], c[B, H] (RNN: [B, 0]), words[B, T, E]
    -> hs[B, T, H], alphas[B, T, L], cache (as rawcap.model.decoder_forward)."""
    B, T, E = words.shape
    _, L, D = feats.shape
    A = proj.shape[2]
    dtype = feats.dtype
    Wx, b = params[f"{config.cell}_wx"], params[f"{config.cell}_b"]
    gate_w = [params["gate_w"]] if config.f_beta else []
    W_h = np.concatenate([params["att_h_w"], *gate_w, params[f"{config.cell}_wh"]], axis=1)
    words_tb = np.ascontiguousarray(words.transpose(1, 0, 2)).reshape(T * B, E)   # row t*B + n
    word_part = (words_tb @ Wx[:E] + b).reshape(T, B, -1)                # [T, B, G*H]: one GEMM
    feats, proj = np.ascontiguousarray(feats), np.ascontiguousarray(proj)
    v = np.ascontiguousarray(params["att_v"])

    h_prev = np.empty((T, B, h.shape[1]), dtype)      # the h each step starts from
    z = np.empty((T, B, L, A), dtype)                 # tanh(u) of every step
    alpha = np.empty((T, B, L), dtype)
    context = np.empty((T, B, D), dtype)              # before the gate
    beta = np.empty((T, B, D), dtype) if config.f_beta else None
    x_context = np.empty((T, B, D), dtype)            # the context part of the LSTM input
    hs = np.empty((B, T, h.shape[1]), dtype)
    cells = []
    for t in range(T):
        h_prev[t] = h
        hW = h @ W_h                                  # [B, A (+ D) + G*H]
        attention_forward_pass(proj, np.ascontiguousarray(hW[:, :A]), v, feats, z[t], alpha[t],
                               context[t])
        if config.f_beta:
            beta[t] = sigmoid(hW[:, A:A + D] + params["gate_b"])
            np.multiply(beta[t], context[t], out=x_context[t])
        else:
            x_context[t] = context[t]
        a = word_part[t] + hW[:, W_h.shape[1] - word_part.shape[2]:] + x_context[t] @ Wx[E:]
        if config.cell == "lstm":
            h, c, pointwise = ops.lstm_pointwise_forward(a, c)
            cells.append(pointwise)
        else:
            h = np.tanh(a)
            cells.append(h)
        hs[:, t] = h
    cache = (params, config, W_h, words_tb, feats, v, h_prev, z, alpha, context, beta, x_context,
             cells)
    return hs, np.ascontiguousarray(alpha.transpose(1, 0, 2)), cache


def decoder_backward_v1(dhs, dalphas, cache):
    """dhs[B, T, H], dalphas[B, T, L] or None -> dfeats, dproj, dh0, dc0 (None for the RNN),
    dwords[B, T, E], {name: gradient} (as rawcap.model.decoder_backward)."""
    (params, config, W_h, words_tb, feats, v, h_prev, z, alpha, context, beta, x_context,
     cells) = cache
    T, B, L, A = z.shape
    D, E = feats.shape[2], words_tb.shape[1]
    dtype = dhs.dtype
    Wx = params[f"{config.cell}_wx"]
    G = W_h.shape[1] - A - (D if config.f_beta else 0)        # 4H (LSTM) or H (RNN)

    dW_h_rows = np.empty((T, B, W_h.shape[1]), dtype)         # [du_sum | dgate | da] per step
    dcontext = np.empty((T, B, D), dtype)
    dproj = np.zeros((B, L, A), dtype)
    dv_rows = np.zeros((B, A), dtype)
    no_dfeats = np.empty((0, L, D), dtype)
    dalpha = np.zeros((B, L), dtype)
    dh, dc = np.zeros_like(dhs[:, 0]), None
    for t in reversed(range(T)):
        dh_t = dhs[:, t] + dh
        if config.cell == "lstm":
            da, dc = ops.lstm_pointwise_backward(dh_t, dc, cells[t])
        else:
            da = dh_t * (1 - cells[t] ** 2)
        rows = dW_h_rows[t]
        rows[:, A + (D if config.f_beta else 0):] = da
        dx_context = da @ Wx[E:].T
        if config.f_beta:
            rows[:, A:A + D] = dx_context * context[t] * beta[t] * (1 - beta[t])
            np.multiply(dx_context, beta[t], out=dcontext[t])
        else:
            dcontext[t] = dx_context
        if dalphas is not None:
            dalpha[:] = dalphas[:, t]
        du_sum = np.empty((B, A), dtype)
        attention_backward_pass(feats, z[t], alpha[t], v, dcontext[t], dalpha, no_dfeats, dproj,
                                du_sum, dv_rows, True)
        rows[:, :A] = du_sum
        dh = rows @ W_h.T

    # Every weight gradient: one product over all T * B rows.
    rows = dW_h_rows.reshape(T * B, -1)
    da = rows[:, -G:]
    dW_h = h_prev.reshape(T * B, -1).T @ rows
    inputs = np.concatenate([words_tb, x_context.reshape(T * B, D)], axis=1)     # [T*B, E + D]
    grads = {"att_h_w": dW_h[:, :A], "att_v": dv_rows.sum(axis=0),
             "gate_w": dW_h[:, A:A + D] if config.f_beta else np.zeros_like(params["gate_w"]),
             "gate_b": rows[:, A:A + D].sum(axis=0) if config.f_beta else np.zeros_like(params["gate_b"]),
             f"{config.cell}_wx": inputs.T @ da, f"{config.cell}_wh": dW_h[:, -G:],
             f"{config.cell}_b": da.sum(axis=0)}
    grads = {name: np.ascontiguousarray(g) for name, g in grads.items()}
    dwords = np.ascontiguousarray((da @ Wx[:E].T).reshape(T, B, E).transpose(1, 0, 2))
    dfeats = alpha.transpose(1, 2, 0) @ dcontext.transpose(1, 0, 2)           # [B, L, T] @ [B, T, D]
    return dfeats, dproj, dh, dc, dwords, grads
