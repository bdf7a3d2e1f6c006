"""The captioner: a small CNN encoder, soft attention and an LSTM decoder (Show, Attend and Tell).

Shape key: B_img images and B captions in a batch, S image side, L = (S / 2^K)^2 image
locations ((S / 2^(K-1))^2 without the last block's maxpool, Config.final_pool), D = the last
conv width, E embedding size, H hidden size, A attention size, V vocabulary, T time steps.

    feats = encoder(images)                        K x [conv3x3 pad 1 -> ReLU -> maxpool 2x2]
                     (Config.batchnorm: K x [conv3x3 pad 1 -> batchnorm -> ReLU -> maxpool 2x2])
                     (Config.residual: after each block's ReLU, x <- ReLU(x + BN(conv3x3(x)));
                      Config.residual_after_pool: after its maxpool instead, at 1/4 of the pixels;
                      Config.residual_units such units in a row)
    m = mean_l feats;  h0 = tanh(m @ Wh0 + bh0);  c0 = tanh(m @ Wc0 + bc0);  proj = feats @ Wf + bf
    for t = 0 .. T-1:
        context, alpha_t = attention(feats, proj, h_{t-1})
        beta = sigmoid(h_{t-1} @ Wbeta + bbeta)                 the f_beta gate
        h_t, c_t = lstm_step([dropout_E(embed(inputs_t)), beta * context], h_{t-1}, c_{t-1})
                   (cell="rnn": h_t = rnn_step([...], h_{t-1}); no c, no c0)
    logits = dropout(h) @ Wout + bout          (dropout_E: Config.embed_dropout, on the word vectors)
             (Config.deep_output: from h, the context and the previous word, rawcap/output.py)
    loss = CE(logits, targets, mask) + eps * margin(logits, targets, mask)
           + lambda_alpha * mean_n sum_l (1 - sum_t mask_t alpha_tl)^2
           + weight_decay / 2 * (sum of squared weights; biases excluded)
           + bag_of_words * CE(softmax(mean_l feats_img @ Wbow + bbow), q)
           + teacher_weight * mean over tokens of -sum_v q_teacher[v] log softmax(logits)[v]
    (label smoothing, eps = Config.label_smoothing: the margin is the mean over tokens of the
    target's logit minus the mean logit, what smoothing adds, rawcap.layers.label_smoothing;
    the bag-of-words loss, Config.bag_of_words > 0: from its mean feature, each image predicts
    q, the share of each word among the words of its captions in the batch; it trains the
    encoder directly on what the captions name, and is not used to caption; the teacher's
    term, Config.teacher_weight > 0 with soft_targets given: at each step of each caption, the
    next-word distribution a teacher (a trained model or an ensemble) gave there,
    rawcap.teacher, and its term rawcap.layers.distillation: word-level distillation)

Every piece is a layer from rawcap.layers; `loss` runs them forward, then backward in reverse.
The encoder (its conv blocks, forward and backward) is in rawcap/encoder.py; the decoder
(init_decoder, then the T steps as one op, `ops.decoder_forward/backward`) in rawcap/decoder.py.

With batch normalisation the params dict also holds each block's running statistics
(bn{k}_running_mean, bn{k}_running_var; res{k}_bn_running_..., res{k}_{u}_bn_running_... for
the residual units'): saved
in checkpoints like the weights, used in eval mode (decoding), but not trained:
`trainable(params)` leaves them out, and a training step hands their updated values back
through `statistics` (see `forward`).
"""
from dataclasses import asdict, dataclass

import numpy as np

from . import layers as nn
from .backend import array_module, ops
from .data.vocab import PAD_ID, START_ID, UNK_ID
from .decoder import init_decoder, init_decoder_backward
from .encoder import encode, encode_backward, residual_unit_names, running_statistics
from .flat import flatten
from .output import output_backward, output_forward


CELLS = ("lstm", "rnn")


@dataclass
class Config:
    """Everything that fixes the model's shape and its loss (saved with every checkpoint)."""
    vocab_size: int
    image_size: int = 64
    channels: tuple = (16, 32, 64)      # widths of the K conv blocks; D = channels[-1]
    embed_size: int = 64                # E
    hidden_size: int = 128              # H
    attention_size: int = 64            # A
    dropout: float = 0.3
    embed_dropout: float = 0.0          # dropout on the word vectors, the LSTM's word input
    lambda_alpha: float = 0.02          # ~1/L: the penalty sums over L locations
    weight_decay: float = 0.0
    bag_of_words: float = 0.0           # weight of the bag-of-words loss on the encoder (0: none)
    label_smoothing: float = 0.0        # eps: the share of each target moved to the uniform word
    teacher_weight: float = 0.0         # weight of a teacher's next-word distributions (rawcap.teacher)
    f_beta: bool = True
    cell: str = "lstm"                  # the decoder's recurrent cell: "lstm" or "rnn" (vanilla, tanh)
    blind: bool = False                 # zero the image features: the captioner cannot look
    pixel_mean: tuple = (0.5, 0.5, 0.5)     # per-channel normalisation of [0, 1] pixels
    pixel_std: tuple = (0.25, 0.25, 0.25)
    resize: str = "crop"                # how photos become S x S: "crop" or "squash" (data.images)
    batchnorm: bool = False             # batch normalisation after each conv (then no conv bias)
    bn_momentum: float = 0.1            # how fast the running statistics follow the batches
    residual: bool = False              # a second conv per block, added back (needs batchnorm)
    residual_after_pool: bool = False   # the residual unit after the pooling (ResNet's order)
    residual_units: int = 1             # residual units in a row in each block (with residual)
    deep_output: bool = False           # logits from h, the context and the previous word (output.py)
    final_pool: bool = True             # the last block's maxpool (False: a grid twice as fine, 4 x L)

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        if self.residual and not self.batchnorm:
            raise ValueError("residual units need batchnorm (their conv has no bias)")
        if self.residual_after_pool and not self.residual:
            raise ValueError("residual_after_pool places the residual units: it needs residual")
        if self.residual_units < 1 or (self.residual_units > 1 and not self.residual):
            raise ValueError(f"residual_units must be 1, or more with residual, "
                             f"got {self.residual_units}")

    @property
    def pools(self):
        """The encoder's 2x2 maxpools: one per block, less the last one without final_pool."""
        return len(self.channels) - (not self.final_pool)

    @property
    def locations(self):
        side = self.image_size // 2 ** self.pools
        return side * side

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        for key in ("channels", "pixel_mean", "pixel_std"):
            d[key] = tuple(d[key])
        return cls(**d)


def init_params(config, rng, dtype=np.float32):
    """Random parameters: He-scaled conv weights, 1/sqrt(fan_in) elsewhere, forget bias 1; a
    residual unit's batchnorm scale starts at 0, so that each unit starts as the identity (Goyal
    et al. 2017): the residual encoder starts as the plain one and learns what to add."""
    if config.image_size % 2 ** config.pools:
        raise ValueError(f"image_size {config.image_size} must be divisible by 2^{config.pools}")
    def normal(shape, fan_in, gain=1.0):
        return (gain / np.sqrt(fan_in) * rng.standard_normal(shape)).astype(dtype)

    def batchnorm(name, C, gamma=1.0):  # gamma, beta, and the running statistics
        p[f"{name}_w"], p[f"{name}_b"] = np.full(C, gamma, dtype), np.zeros(C, dtype)
        p[f"{name}_running_mean"], p[f"{name}_running_var"] = np.zeros(C, dtype), np.ones(C, dtype)

    p = {}
    widths = (3,) + tuple(config.channels)
    for k in range(len(config.channels)):
        C = widths[k + 1]
        p[f"conv{k}_w"] = normal((C, widths[k], 3, 3), widths[k] * 9, np.sqrt(2))
        if config.batchnorm:
            batchnorm(f"bn{k}", C)
        else:
            p[f"conv{k}_b"] = np.zeros(C, dtype)
        for name in residual_unit_names(config, k):
            p[f"{name}_w"] = normal((C, C, 3, 3), C * 9, np.sqrt(2))
            batchnorm(f"{name}_bn", C, gamma=0.0)
    D, E, H, A, V = widths[-1], config.embed_size, config.hidden_size, config.attention_size, config.vocab_size
    affines = dict(init_h=(D, H), init_c=(D, H), att_feat=(D, A), gate=(H, D), out=(H, V))
    if config.cell == "rnn":
        del affines["init_c"]                    # no cell, no c0
    if config.deep_output:
        affines.update(deep=(H + D, E), out=(E, V))
    for name, (rows, cols) in affines.items():
        p[f"{name}_w"] = normal((rows, cols), rows)
        p[f"{name}_b"] = np.zeros(cols, dtype)
    p["att_h_w"] = normal((H, A), H)
    p["att_v"] = normal((A,), A)
    p["embed_w"] = (0.1 * rng.standard_normal((V, E))).astype(dtype)
    if config.cell == "rnn":
        p["rnn_wx"] = normal((E + D, H), E + D)
        p["rnn_wh"] = normal((H, H), H)
        p["rnn_b"] = np.zeros(H, dtype)
    else:
        p["lstm_wx"] = normal((E + D, 4 * H), E + D)
        p["lstm_wh"] = normal((H, 4 * H), H)
        p["lstm_b"] = np.zeros(4 * H, dtype)
        p["lstm_b"][H:2 * H] = 1.0               # forget gate open at the start
    if config.bag_of_words:     # drawn last: the other parameters are the same with or without
        p["bow_w"] = normal((D, V), D)
        p["bow_b"] = np.zeros(V, dtype)
    return p


def to_device(params, xp):
    """The params on array module xp, the trainable ones as views into one buffer (rawcap.flat),
    so that the optimizer updates them all in one operation."""
    params = {name: xp.asarray(p) for name, p in params.items()}
    return {**params, **flatten(trainable(params))}


def is_statistic(name):
    """True for a batchnorm running statistic: kept with the parameters, never trained."""
    return name.endswith(("_running_mean", "_running_var"))


def trainable(params):
    """The parameters the optimizer updates: all but the running statistics (same arrays)."""
    return {name: p for name, p in params.items() if not is_statistic(name)}


def loss_and_grads(params, config, images, inputs, targets, mask, caption_image, rng=None,
                   statistics=None, train=True, soft_targets=None):
    """The training loss of one batch and the gradient of every trainable parameter.

    images[B_img, 3, S, S] in [0, 1]; inputs, targets[B, T] int; mask[B, T] bool;
    caption_image[B]: the image of each caption. rng: a NumPy Generator for dropout (None: off).
    statistics: a dict that receives the batchnorm running statistics updated by this batch
    (train mode), for the caller to put into params after the step; None: not wanted.
    train: batchnorm uses the batch's statistics (True) or the running ones (False).
    soft_targets: (indices[B, T, k] int, probs[B, T, k]): at each step, a teacher's k likeliest
    next words and their probabilities (rawcap.teacher; 0 at masked steps), the targets of the
    teacher's term when config.teacher_weight > 0; None: no such term.
    -> loss, {"ce", "smoothing", "teacher", "attention", "decay", "words"} parts, grads keyed like
    trainable(params).
    The loss and its parts are 0-d arrays (NumPy scalars on the CPU) on the arrays' device:
    float() reads one, which on a GPU waits for the step; optim.check_and_clip reads them all
    in one copy.
    """
    loss, parts, cache = forward(params, config, images, inputs, targets, mask, caption_image, rng,
                                 train, soft_targets=soft_targets)
    if statistics is not None:
        statistics.update(running_statistics(cache[2]))
    return loss, parts, backward(cache)


def forward(params, config, images, inputs, targets, mask, caption_image, rng=None, train=True,
            advantages=None, soft_targets=None):
    """The loss (arguments as for loss_and_grads) -> loss, parts, cache for `backward`
    (cache[2] is encode's: `running_statistics(cache[2])` are the updated statistics).

    advantages[B] (self-critical training, rawcap.scst): the targets are sampled captions, and
    the cross-entropy part is replaced by the policy-gradient loss
    -(1/B) sum_b advantages_b sum_t mask log p(targets_bt) (parts key "policy", not "ce")."""
    xp = array_module(images)
    B, T = inputs.shape
    logits, alphas, feats_img, (enc, gather, init, emb, word_drop, dec, out, words_shape) = \
        teacher_forced(params, config, images, inputs, caption_image, rng, train)
    N, L, D = feats_img.shape
    dtype = logits.dtype
    smoothing, smooth = xp.zeros((), dtype), None
    if config.label_smoothing and advantages is None:       # (before the loss reuses the logits)
        margin, smooth = nn.label_smoothing_forward(logits, targets, mask)
        smoothing = config.label_smoothing * margin
    taught_margin, taught = None, None
    if config.teacher_weight and soft_targets is not None and advantages is None:
        taught_margin, taught = nn.distillation_forward(logits, targets, mask, *soft_targets)
    # Nothing reads the logits after the loss, so the loss may reuse their buffer.
    if advantages is None:
        ce, ce_cache = ops.softmax_cross_entropy_forward(logits, targets, mask, overwrite_logits=True)
    else:   # the policy is what decode samples from: <pad> and <start> are never written
        logits[:, :, [PAD_ID, START_ID]] = -xp.inf
        ce, ce_cache = nn.policy_gradient_forward(logits, targets, mask, advantages)
    teaching = xp.zeros((), dtype)
    if taught is not None:          # the teacher's cross-entropy is the cross-entropy + a margin
        teaching = config.teacher_weight * (ce + taught_margin)

    maskf = mask.astype(dtype)
    attended = (alphas * maskf[:, :, None]).sum(axis=1)                   # [B, L]: sum_t alpha_tl
    att_loss = config.lambda_alpha * ((1 - attended) ** 2).sum() / B
    if config.weight_decay:
        decay = config.weight_decay / 2 * sum((params[n] ** 2).sum() for n in decayed(params))
    else:
        decay = xp.zeros((), dtype)
    words_loss, bow = xp.zeros((), dtype), None
    if config.bag_of_words and advantages is None:     # (a sampled caption is no description)
        bag = word_shares(targets, mask, caption_image, N, params["bow_b"].shape[0], dtype)
        bow_logits, bow_affine = nn.affine_forward(feats_img.mean(axis=1), params["bow_w"],
                                                   params["bow_b"])
        words_loss, bow_ce = nn.soft_cross_entropy_forward(bow_logits, bag)
        words_loss, bow = config.bag_of_words * words_loss, (bow_affine, bow_ce)
    # The parts stay on the device: reading one on the host makes the host wait for the GPU.
    parts = {"ce" if advantages is None else "policy": ce, "smoothing": smoothing,
             "teacher": teaching, "attention": att_loss, "decay": decay, "words": words_loss}
    cache = (params, config, enc, gather, init, emb, word_drop, dec, out,
             (advantages is None, ce_cache, smooth, taught), attended, maskf, bow, (B, T, N, L, D), words_shape)
    return ce + smoothing + teaching + att_loss + decay + words_loss, parts, cache


def teacher_forced(params, config, images, inputs, caption_image, rng=None, train=True):
    """The logits[B, T, V] of the word after each of inputs[B, T] (teacher forcing: the decoder
    reads the true words) -> logits, alphas[B, T, L], feats_img[N, L, D], and the caches
    `backward` needs (arguments as for loss_and_grads; rng None: no dropout)."""
    # Encoder, then every caption gets its image's features (a row lookup: the embedding layer
    # does exactly that), decoder initial state, then T steps.
    feats_img, enc = encode(params, config, images, train)
    N, L, D = feats_img.shape
    feats_rows, gather = ops.embedding_forward(caption_image, feats_img.reshape(N, L * D))
    feats = feats_rows.reshape(len(inputs), L, D)
    proj, h, c, init = init_decoder(params, feats)
    words, emb = ops.embedding_forward(inputs, params["embed_w"])           # [B, T, E]
    words, word_drop = nn.dropout_forward(words, config.embed_dropout if rng is not None else 0.0, rng)
    hs, alphas, dec = ops.decoder_forward(feats, proj, h, c, words, params, config)
    logits, out = output_forward(params, hs, words, alphas, feats,
                                 config.dropout if rng is not None else 0.0, rng)
    return logits, alphas, feats_img, (enc, gather, init, emb, word_drop, dec, out, words.shape)


def word_shares(targets, mask, caption_image, N, V, dtype):
    """q[N, V]: the share of word v among the words of image n's captions (targets[B, T] where
    mask, <end> and <unk> left out; caption_image[B] the image of each caption). Each row sums
    to 1 (to 0 for an image without a word)."""
    xp = array_module(targets)
    counted = (mask & (targets > UNK_ID)).astype(dtype)           # ids 0-3 are <pad> ... <unk>
    slots = (caption_image[:, None] * V + targets).ravel()        # row n, column v: n * V + v
    counts = xp.bincount(slots, weights=counted.ravel(), minlength=N * V).reshape(N, V)
    return (counts / xp.maximum(counts.sum(axis=1, keepdims=True), 1)).astype(dtype)


def backward(cache):
    """The gradient of every parameter (a dict keyed like params) from forward's cache."""
    (params, config, enc, gather, init, emb, word_drop, dec, out, ce_cache, attended, maskf,
     bow, (B, T, N, L, D), words_shape) = cache
    # One zeroed buffer for all gradients (rawcap.flat): the optimizer's work is then one
    # operation on it. The gradients computed as new arrays are copied into it at the end.
    flat = flatten(trainable(params), fill=0)
    grads = dict(flat)
    cross_entropy, ce_cache, smooth, taught = ce_cache
    if cross_entropy:
        dlogits = ops.softmax_cross_entropy_backward(1.0, ce_cache)
        if taught is not None:      # beta (CE + margin): the CE's gradient counts 1 + beta times
            dlogits *= 1 + config.teacher_weight
            dlogits = nn.distillation_backward(config.teacher_weight, dlogits, taught)
        if smooth is not None:
            dlogits += nn.label_smoothing_backward(config.label_smoothing, smooth)
    else:
        dlogits = nn.policy_gradient_backward(1.0, ce_cache)
    dhs, dwords_out, dalphas_out, dfeats_out = output_backward(dlogits, out, grads)
    dalphas = config.lambda_alpha * 2 * (attended - 1)[:, None, :] * maskf[:, :, None] / B
    if dalphas_out is not None:         # the deep output reads the words and the contexts too
        dalphas = dalphas + dalphas_out
    dfeats, dproj, dh, dc, dwords, decoder_grads = ops.decoder_backward(dhs, dalphas, dec)
    grads.update(decoder_grads)
    if dalphas_out is not None:
        dfeats += dfeats_out
        dwords += dwords_out
    grads["embed_w"] = ops.embedding_backward(nn.dropout_backward(dwords, word_drop), emb)
    dfeats += init_decoder_backward(dproj, dh, dc, init, grads)
    dfeats_img = ops.embedding_backward(dfeats.reshape(B, L * D), gather).reshape(N, L, D)
    if bow is not None:         # the mean over the L locations hands each 1/L of dmean
        bow_affine, bow_ce = bow
        dbow_logits = nn.soft_cross_entropy_backward(config.bag_of_words, bow_ce)
        dmean, grads["bow_w"], grads["bow_b"] = nn.affine_backward(dbow_logits, bow_affine)
        dfeats_img = dfeats_img + dmean[:, None, :] / L
    encode_backward(dfeats_img, enc, config, grads)
    for name, g in grads.items():
        if g is not flat[name]:
            flat[name][...] = g
    if config.weight_decay:
        for name in decayed(params):
            flat[name] += config.weight_decay * params[name]
    return flat


def decayed(params):
    """The names weight decay applies to: the weights, not biases (_b) or running statistics."""
    return [name for name in params if not name.endswith("_b") and not is_statistic(name)]
