"""rawcap's captioner written again in PyTorch: a reference to check it against and to time it by.

rawcap writes every forward and backward by hand (rawcap/model.py). This module builds the same
model from a rawcap Config out of PyTorch layers (Conv2d, Linear, Embedding, LSTMCell) and lets
autograd do the backward. It serves two purposes only:

1. a cross-check (tests/test_torch_reference.py): loaded with rawcap's parameters, in float64 on
   the CPU, its loss and every gradient must match rawcap's to rounding;
2. a yardstick: `time_step` times a training step (forward, backward, torch.optim.Adam), which
   `python -m rawcap.bench --compare-torch` prints next to rawcap's own step time.

It is never needed to train; PyTorch is not one of rawcap's dependencies. It lives in tools/,
which setup.py does not install, so it runs from a checkout of the repository.

Parameter mapping (rawcap keeps x @ W with W[in, out]; torch.nn.Linear keeps weight[out, in]):

    rawcap                      shape            TorchCaptioner
    conv{k}_w, conv{k}_b        [F, C, 3, 3], [F] convs[k].weight, convs[k].bias   (same layout)
    init_h_w, init_h_b          [D, H], [H]      init_h.weight = init_h_w.T, init_h.bias
    init_c_w, init_c_b          [D, H], [H]      init_c.weight = init_c_w.T, init_c.bias
    att_feat_w, att_feat_b      [D, A], [A]      att_feat.weight = att_feat_w.T, att_feat.bias
    att_h_w                     [H, A]           att_h.weight = att_h_w.T            (no bias)
    att_v                       [A]              att_v.weight = att_v[None, :]       (no bias)
    gate_w, gate_b              [H, D], [D]      gate.weight = gate_w.T, gate.bias   (f_beta)
    embed_w                     [V, E]           embed.weight                        (same)
    lstm_wx                     [E+D, 4H]        lstm.weight_ih = lstm_wx.T
    lstm_wh                     [H, 4H]          lstm.weight_hh = lstm_wh.T
    lstm_b                      [4H]             lstm.bias_ih = lstm_b;  lstm.bias_hh = 0, frozen
    out_w, out_b                [H, V], [V]      out.weight = out_w.T, out.bias
                                ([E, V] with the deep output)
    deep_w, deep_b              [H+D, E], [E]    deep.weight = deep_w.T, deep.bias   (deep_output)

Both LSTMs pack the gates i, f, g, o, so the transposes are the whole conversion. rawcap has one
LSTM bias; LSTMCell has two, so bias_hh is held at zero and left out of training (two trainable
copies would each get the same gradient and move the sum twice as fast under Adam).

The gate and the conv layers exist whatever the Config says, as rawcap's parameters do: with
f_beta off or blind on they take no part in the loss, but weight decay still reaches their
weights, in both models.
"""
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rawcap.backend import to_numpy
from rawcap.model import init_params


def parameter_map(config):
    """rawcap parameter name -> (TorchCaptioner parameter name, layout), layout being "same",
    "transpose" (W[in, out] <-> weight[out, in]) or "row" (v[A] <-> weight[1, A])."""
    mapping = {}
    for k in range(len(config.channels)):
        mapping[f"conv{k}_w"] = (f"convs.{k}.weight", "same")
        mapping[f"conv{k}_b"] = (f"convs.{k}.bias", "same")
    for layer in ("init_h", "init_c", "att_feat", "gate", "out") + ("deep",) * config.deep_output:
        mapping[f"{layer}_w"] = (f"{layer}.weight", "transpose")
        mapping[f"{layer}_b"] = (f"{layer}.bias", "same")
    mapping["att_h_w"] = ("att_h.weight", "transpose")
    mapping["att_v"] = ("att_v.weight", "row")
    mapping["embed_w"] = ("embed.weight", "same")
    mapping["lstm_wx"] = ("lstm.weight_ih", "transpose")
    mapping["lstm_wh"] = ("lstm.weight_hh", "transpose")
    mapping["lstm_b"] = ("lstm.bias_ih", "same")
    return mapping


def to_torch_layout(array, layout):
    """A rawcap parameter (NumPy) in the layout of its torch parameter."""
    return {"same": array, "transpose": array.T, "row": array[None, :]}[layout]


def to_rawcap_layout(array, layout):
    """A torch parameter (or its gradient, as NumPy) in the layout of its rawcap parameter."""
    return {"same": array, "transpose": array.T, "row": array[0]}[layout]


class TorchCaptioner(nn.Module):
    """rawcap.model's captioner for one Config, in PyTorch. Its parameters start random (PyTorch's
    init); `load_rawcap` gives it rawcap's."""

    def __init__(self, config):
        super().__init__()
        if config.cell != "lstm":
            raise ValueError(f"tools/torch_reference.py mirrors the LSTM decoder only, not cell={config.cell!r}")
        self.config = config
        widths = (3,) + tuple(config.channels)
        D, E, H, A, V = (widths[-1], config.embed_size, config.hidden_size,
                         config.attention_size, config.vocab_size)
        self.convs = nn.ModuleList(nn.Conv2d(widths[k], widths[k + 1], 3, padding=1)
                                   for k in range(len(config.channels)))
        self.init_h, self.init_c = nn.Linear(D, H), nn.Linear(D, H)
        self.att_feat = nn.Linear(D, A)
        self.att_h = nn.Linear(H, A, bias=False)
        self.att_v = nn.Linear(A, 1, bias=False)
        self.gate = nn.Linear(H, D)
        self.embed = nn.Embedding(V, E)
        self.lstm = nn.LSTMCell(E + D, H)
        self.lstm.bias_hh.requires_grad_(False)
        if config.deep_output:
            self.deep = nn.Linear(H + D, E)
        self.out = nn.Linear(E if config.deep_output else H, V)
        self.register_buffer("pixel_mean", torch.tensor(config.pixel_mean)[:, None, None])
        self.register_buffer("pixel_std", torch.tensor(config.pixel_std)[:, None, None])

    def load_rawcap(self, params):
        """Copy rawcap's parameters (name -> NumPy or CuPy array, as rawcap.model.init_params
        makes them) onto this module, in its own dtype and device; bias_hh becomes zero."""
        mapping = parameter_map(self.config)
        if set(params) != set(mapping):
            raise ValueError(f"load_rawcap: expected parameters {sorted(mapping)}, got {sorted(params)}")
        own = dict(self.named_parameters())
        with torch.no_grad():
            for name, (torch_name, layout) in mapping.items():
                value = torch.from_numpy(np.ascontiguousarray(to_torch_layout(to_numpy(params[name]), layout)))
                own[torch_name].copy_(value)
            self.lstm.bias_hh.zero_()
        return self

    def decayed_parameters(self):
        """The parameters weight decay applies to: those of rawcap's names not ending in _b."""
        own = dict(self.named_parameters())
        return [own[torch_name] for name, (torch_name, _) in parameter_map(self.config).items()
                if not name.endswith("_b")]

    def encode(self, images):
        """images[B_img, 3, S, S] in [0, 1] -> feats[B_img, L, D]: K blocks of conv 3x3 (pad 1),
        ReLU, maxpool 2x2 on normalised pixels; zeros if the Config is blind."""
        if self.config.blind:
            side = self.config.image_size >> len(self.config.channels)
            return images.new_zeros((len(images), side * side, self.config.channels[-1]))
        x = (images - self.pixel_mean) / self.pixel_std
        for conv in self.convs:
            x = F.max_pool2d(F.relu(conv(x)), 2, 2)
        return x.flatten(2).transpose(1, 2)

    def init_decoder(self, feats):
        """feats[B, L, D] -> proj[B, L, A], h0[B, H], c0[B, H]."""
        m = feats.mean(dim=1)
        return self.att_feat(feats), torch.tanh(self.init_h(m)), torch.tanh(self.init_c(m))

    def attend(self, feats, proj, h):
        """Soft attention -> context[B, D], alpha[B, L] (equations in rawcap/layers/attention.py)."""
        z = torch.tanh(proj + self.att_h(h)[:, None, :])
        alpha = torch.softmax(self.att_v(z)[:, :, 0], dim=1)
        return torch.bmm(alpha[:, None, :], feats)[:, 0, :], alpha

    def decode_step(self, feats, proj, h, c, word_vectors):
        """One decoder step -> h[B, H], c[B, H], alpha[B, L]."""
        context, alpha = self.attend(feats, proj, h)
        if self.config.f_beta:
            context = torch.sigmoid(self.gate(h)) * context
        h, c = self.lstm(torch.cat([word_vectors, context], dim=1), (h, c))
        return h, c, alpha

    def loss(self, images, inputs, targets, mask, caption_image, soft_targets=None):
        """The training loss of one batch, as rawcap.model.forward computes it.

        images[B_img, 3, S, S] float; inputs, targets[B, T] int64; mask[B, T] bool;
        caption_image[B] int64 (tensors on the module's device). Dropout on the hidden states
        runs in train mode only, with PyTorch's random numbers (not rawcap's).
        soft_targets: a teacher's (indices[B, T, k] int64, probs[B, T, k]), for the teacher's
        term when config.teacher_weight > 0 (PyTorch's cross-entropy with probability targets).
        -> loss (0-d tensor), {"ce", "smoothing", "teacher", "attention", "decay"} as floats.
        """
        B, T = inputs.shape
        feats = self.encode(images)[caption_image]                   # [B, L, D]
        proj, h, c = self.init_decoder(feats)
        words = self.embed(inputs)                                   # [B, T, E]
        hs, alphas = [], []
        for t in range(T):
            h, c, alpha = self.decode_step(feats, proj, h, c, words[:, t])
            hs.append(h)
            alphas.append(alpha)
        hs, alphas = torch.stack(hs, dim=1), torch.stack(alphas, dim=1)
        if self.config.deep_output:     # tanh([h, context] @ W + b + the word's vector)
            hs = torch.tanh(self.deep(torch.cat([hs, torch.bmm(alphas, feats)], dim=2)) + words)
        hs = F.dropout(hs, self.config.dropout, self.training)
        logits = self.out(hs)                                        # [B, T, V]

        maskf = mask.to(logits.dtype)

        def cross_entropy(label_smoothing):         # PyTorch's own label smoothing
            token_ce = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1),
                                       reduction="none", label_smoothing=label_smoothing)
            return (token_ce * maskf.reshape(-1)).sum() / maskf.sum().clamp(min=1)

        ce = cross_entropy(0.0)
        smoothing = cross_entropy(self.config.label_smoothing) - ce
        teacher = torch.zeros((), dtype=logits.dtype, device=logits.device)
        if self.config.teacher_weight and soft_targets is not None:
            indices, probs = soft_targets
            q = torch.zeros_like(logits).scatter(2, indices, probs) * maskf[:, :, None]
            token_soft = F.cross_entropy(logits.reshape(B * T, -1), q.reshape(B * T, -1),
                                         reduction="none")
            teacher = self.config.teacher_weight * token_soft.sum() / maskf.sum().clamp(min=1)
        attended = (alphas * maskf[:, :, None]).sum(dim=1)                           # [B, L]
        attention = self.config.lambda_alpha * ((1 - attended) ** 2).sum() / B
        decay = self.config.weight_decay / 2 * sum((p ** 2).sum() for p in self.decayed_parameters())
        parts = {"ce": ce, "smoothing": smoothing, "teacher": teacher, "attention": attention,
                 "decay": decay}
        return ce + smoothing + teacher + attention + decay, {name: float(value.detach()) for name, value in parts.items()}


def grads_as_rawcap(module):
    """The gradients after .backward(), keyed and laid out like rawcap's parameters (NumPy);
    a parameter autograd never reached (a blind model's conv biases, an unused gate's bias)
    gets zeros, as rawcap gives it."""
    own = dict(module.named_parameters())
    grads = {}
    for name, (torch_name, layout) in parameter_map(module.config).items():
        p = own[torch_name]
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        grads[name] = to_rawcap_layout(g.detach().cpu().numpy(), layout)
    return grads


def batch_to_torch(images, inputs, targets, mask, caption_image, dtype, device):
    """A rawcap batch (NumPy arrays) as tensors for TorchCaptioner.loss."""
    return (torch.as_tensor(images, dtype=dtype, device=device),
            torch.as_tensor(inputs, dtype=torch.int64, device=device),
            torch.as_tensor(targets, dtype=torch.int64, device=device),
            torch.as_tensor(mask, dtype=torch.bool, device=device),
            torch.as_tensor(caption_image, dtype=torch.int64, device=device))


def random_batch(config, batch_size, captions_per_image, length, rng):
    """Random data of the shapes rawcap.bench times: every token unmasked, each image captioned
    captions_per_image times."""
    B = batch_size * captions_per_image
    return (rng.random((batch_size, 3, config.image_size, config.image_size), dtype=np.float32),
            rng.integers(0, config.vocab_size, (B, length)),
            rng.integers(0, config.vocab_size, (B, length)),
            np.ones((B, length), bool), np.repeat(np.arange(batch_size), captions_per_image))


def synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_step(config, batch_size, captions_per_image, length, device="cpu", steps=10, warmup=2,
              threads=None):
    """Median seconds of a training step (forward, backward, Adam) in float32 on `device`
    ("cpu" or "cuda"), with dropout as config.dropout says; TF32 off. threads: torch's intra-op
    threads on the CPU (None: leave PyTorch's setting)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    threads_before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        rng = np.random.default_rng(0)
        module = TorchCaptioner(config).to(device).load_rawcap(init_params(config, rng)).train()
        batch = batch_to_torch(*random_batch(config, batch_size, captions_per_image, length, rng),
                               torch.float32, device)
        optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=1e-3)
        times = []
        for step in range(warmup + steps):
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss, _ = module.loss(*batch)
            loss.backward()
            optimizer.step()
            synchronize(device)
            if step >= warmup:
                times.append(time.perf_counter() - start)
        return float(np.median(times))
    finally:
        torch.set_num_threads(threads_before)

