"""The attention decoder of the captioner (rawcap/model.py has the whole model and its loss).

Shape key as in rawcap/model.py: B captions, L image locations, D feature size, E embedding
size, H hidden size, A attention size, T time steps.

    m = mean_l feats;  h0 = tanh(m @ Wh0 + bh0);  c0 = tanh(m @ Wc0 + bc0);  proj = feats @ Wf + bf
    for t = 0 .. T-1:                                                  (decode_step)
        context, alpha_t = attention(feats, proj, h_{t-1})
        beta = sigmoid(h_{t-1} @ Wbeta + bbeta)                 the f_beta gate
        h_t, c_t = lstm_step([words_t, beta * context], h_{t-1}, c_{t-1})
                   (cell="rnn": h_t = rnn_step([...], h_{t-1}); no c, no c0)

decode_step is one step, as decoding (rawcap.decode) runs it word by word; decoder_forward and
decoder_backward run it T times, teacher-forced: version 0 of the `decoder` op (rawcap.backend),
which kernels/cpu/decoder.py and kernels/decoder.py regroup into fewer, larger products.
"""
from . import layers as nn
from .backend import array_module, ops


def init_decoder(params, feats):
    """feats[B, L, D] -> proj[B, L, A], h0[B, H], c0[B, H], cache.

    An RNN decoder has no cell: its c0 is an empty [B, 0] array, which the decoder and the
    beam search carry along (repeat, reorder) exactly like an LSTM's c.
    """
    m = feats.mean(axis=1)
    a_h, aff_h = nn.affine_forward(m, params["init_h_w"], params["init_h_b"])
    h0, tanh_h = nn.tanh_forward(a_h)
    c0, init_c = array_module(feats).zeros((len(m), 0), m.dtype), None
    if "init_c_w" in params:
        a_c, aff_c = nn.affine_forward(m, params["init_c_w"], params["init_c_b"])
        c0, tanh_c = nn.tanh_forward(a_c)
        init_c = (aff_c, tanh_c)
    proj, aff_f = nn.affine_forward(feats, params["att_feat_w"], params["att_feat_b"])
    return proj, h0, c0, (aff_h, tanh_h, init_c, aff_f, feats.shape[1])


def init_decoder_backward(dproj, dh0, dc0, cache, grads):
    """-> dfeats[B, L, D]; the parameters' gradients go into `grads`."""
    aff_h, tanh_h, init_c, aff_f, L = cache
    dfeats, grads["att_feat_w"], grads["att_feat_b"] = nn.affine_backward(dproj, aff_f)
    dm, grads["init_h_w"], grads["init_h_b"] = nn.affine_backward(nn.tanh_backward(dh0, tanh_h), aff_h)
    if init_c is not None:
        aff_c, tanh_c = init_c
        dm_c, grads["init_c_w"], grads["init_c_b"] = nn.affine_backward(nn.tanh_backward(dc0, tanh_c), aff_c)
        dm = dm + dm_c
    return dfeats + (dm / L)[:, None, :]


def decode_step(params, config, feats, proj, h, c, word_vectors):
    """One decoder step. word_vectors[B, E] (the embedded previous words)
    -> h[B, H], c[B, H], alpha[B, L], cache."""
    xp = array_module(feats)
    context, alpha, att = ops.attention_forward(feats, proj, h, params["att_h_w"], params["att_v"])
    gate = None
    if config.f_beta:
        pre, aff = nn.affine_forward(h, params["gate_w"], params["gate_b"])
        beta, sig = nn.sigmoid_forward(pre)
        gate = (beta, context, aff, sig)
        context = beta * context
    x = xp.concatenate([word_vectors, context], axis=1)
    if config.cell == "rnn":        # c stays the empty [B, 0] array of init_decoder
        h, cell = nn.rnn_step_forward(x, h, params["rnn_wx"], params["rnn_wh"], params["rnn_b"])
    else:
        h, c, cell = nn.lstm_step_forward(x, h, c, params["lstm_wx"], params["lstm_wh"], params["lstm_b"])
    return h, c, alpha, (att, gate, config.cell, cell, word_vectors.shape[1])


def decode_step_backward(dh, dc, dalpha, cache, grads):
    """-> dfeats, dproj, dh_prev, dc_prev (None for the RNN), dword_vectors; the step's
    parameter gradients are added into `grads` (the same weights serve every step, so their
    gradients sum over t)."""
    att, gate, kind, cell, E = cache
    if kind == "rnn":
        dc_prev = None
        dx, dh_prev, dwx, dwh, db = nn.rnn_step_backward(dh, cell)
    else:
        dx, dh_prev, dc_prev, dwx, dwh, db = nn.lstm_step_backward(dh, dc, cell)
    grads[f"{kind}_wx"] += dwx
    grads[f"{kind}_wh"] += dwh
    grads[f"{kind}_b"] += db
    dwords, dcontext = dx[:, :E], dx[:, E:]
    if gate is not None:
        beta, context, aff, sig = gate
        dpre = nn.sigmoid_backward(dcontext * context, sig)
        dh_gate, dgw, dgb = nn.affine_backward(dpre, aff)
        grads["gate_w"] += dgw
        grads["gate_b"] += dgb
        dh_prev = dh_prev + dh_gate
        dcontext = dcontext * beta
    dfeats, dproj, dh_att, dwh_att, dv = ops.attention_backward(dcontext, dalpha, att)
    grads["att_h_w"] += dwh_att
    grads["att_v"] += dv
    return dfeats, dproj, dh_prev + dh_att, dc_prev, dwords


def decoder_parameters(config):
    """The names of the parameters the decoder's steps use (gate_* even without f_beta: zero)."""
    return ["att_h_w", "att_v", "gate_w", "gate_b"] + [f"{config.cell}_{p}" for p in ("wx", "wh", "b")]


def decoder_forward(feats, proj, h, c, words, params, config):
    """The decoder's T steps, teacher-forced: feats[B, L, D], proj[B, L, A], the initial h[B, H]
    and c[B, H] (RNN: [B, 0]), words[B, T, E] (the embedded inputs) -> hs[B, T, H] (every
    step's h), alphas[B, T, L], cache.

    Version 0 of the `decoder` op (rawcap.backend): decode_step T times. kernels/cpu/decoder.py
    computes the same sums grouped differently (fewer, larger products)."""
    xp = array_module(feats)
    B, T = words.shape[:2]
    hs = xp.empty((B, T, h.shape[1]), dtype=h.dtype)
    alphas = xp.empty((B, T, feats.shape[1]), dtype=h.dtype)
    steps = []
    for t in range(T):
        h, c, alphas[:, t], step = decode_step(params, config, feats, proj, h, c, words[:, t])
        hs[:, t] = h
        steps.append(step)
    return hs, alphas, (steps, params, config, feats.shape, proj.shape, words.shape)


def decoder_backward(dhs, dalphas, cache):
    """dhs[B, T, H], dalphas[B, T, L] or None -> dfeats[B, L, D], dproj[B, L, A], dh0, dc0
    (None for the RNN), dwords[B, T, E], {name: gradient} of decoder_parameters.

    Backward through time: step t receives dhs[:, t] plus what step t + 1 sends back through
    h_t (and c_t); the weights serve every step, so their gradients add up over t."""
    steps, params, config, (B, L, D), proj_shape, words_shape = cache
    xp = array_module(dhs)
    grads = {name: xp.zeros_like(params[name]) for name in decoder_parameters(config)}
    dfeats = xp.zeros((B, L, D), dtype=dhs.dtype)
    dproj = xp.zeros(proj_shape, dtype=dhs.dtype)
    dwords = xp.empty(words_shape, dtype=dhs.dtype)
    dh, dc = xp.zeros_like(dhs[:, 0]), None
    for t in reversed(range(words_shape[1])):
        dalpha = None if dalphas is None else dalphas[:, t]
        df, dp, dh, dc, dwords[:, t] = decode_step_backward(dhs[:, t] + dh, dc, dalpha, steps[t], grads)
        dfeats += df
        dproj += dp
    return dfeats, dproj, dh, dc, dwords, grads
