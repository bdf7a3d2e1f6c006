"""Where a gradient goes wrong: a failing gradient broken down along the layer's structure.

One number per gradient says *that* it is wrong; a student needs *where*. The parts:

    LSTM          da, dWx, dWh, db   by gate block i, f, g, o (the last axis, in four)
    LSTM sequence dx                 by time step t
    attention     dfeats, dproj      by image location l
    softmax-CE    dlogits            by time step t
    conv2d, col2im dx                by how many windows cover the pixel (1, 2, 4, ...)
    maxpool2d     dx                 by image row

Each part's error is max |analytic - numeric| over the part, relative to the whole gradient's
largest entry (rawcap's measure, so the parts of a failing gradient add up to its error and a
part whose true gradient is tiny does not look wrong from rounding alone). Beside it,
CS231n's relative error, max |a - n| / max(|a| + |n|, 1e-8) entry by entry, the scale teachers
know (below 1e-7 good, above 1e-2 wrong). Then the worst entry, with both values, and where the
pattern of wrong and right parts points at a usual mistake, a hint.
"""
import numpy as np

from .gradcheck import LIMIT, relative_error, verdict

GATES = "ifgo"
STRUCTURE = {       # (layer, gradient) -> (axis, what a part is)
    **{(layer, grad): (-1, "gate") for layer, grads in
       (("lstm_pointwise", ("da",)), ("lstm_step", ("dWx", "dWh", "db")), ("lstm", ("dWx", "dWh", "db")))
       for grad in grads},
    ("lstm", "dx"): (1, "step"),
    ("attention", "dfeats"): (1, "location"),
    ("attention", "dproj"): (1, "location"),
    ("softmax_cross_entropy", "dlogits"): (1, "step"),
    ("distillation", "dlogits"): (1, "step"),
    ("conv2d", "dx"): (None, "coverage"),
    ("im2col", "dx"): (None, "coverage"),       # col2im, checked as im2col's backward
    ("maxpool2d", "dx"): (2, "row"),
}


def cs231n_error(a, b):
    """CS231n's relative error: max over entries of |a - b| / max(|a| + |b|, 1e-8)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8), initial=0.0))


def window_coverage(shape, KH, KW, stride, pad):
    """[Hi, Wi]: how many conv windows read each pixel of an image of this shape."""
    H, W = shape[-2:]
    Ho, Wo = (H + 2 * pad - KH) // stride + 1, (W + 2 * pad - KW) // stride + 1
    count = np.zeros((H + 2 * pad, W + 2 * pad), int)
    for kh in range(KH):
        for kw in range(KW):
            count[kh:kh + stride * Ho:stride, kw:kw + stride * Wo:stride] += 1
    return count[pad:pad + H, pad:pad + W]


def parts(layer, name, shape, options=None):
    """[(label, index)] of the parts of gradient `name` of `layer` (called with `options`:
    conv2d's kernel size, stride and pad); [] if it has no structure."""
    axis, kind = STRUCTURE.get((layer.split(" ")[0], name), (None, None))
    if kind is None or len(shape) == 0:
        return []
    if kind == "coverage":
        options = options or {}
        cover = window_coverage(shape, *options["kernel"], options.get("stride", 1), options.get("pad", 0))
        return [(f"{k} window" + ("s" if k != 1 else ""), (Ellipsis, cover == k))
                for k in map(int, np.unique(cover))]
    axis %= len(shape)
    size = shape[axis]

    def index(start, stop):
        return (slice(None),) * axis + (slice(start, stop),)

    if kind == "gate":
        H = size // 4
        return [(f"gate {g}", index(k * H, (k + 1) * H)) for k, g in enumerate(GATES)]
    symbol = {"step": "t", "location": "l", "row": "row"}[kind]
    return [(f"{symbol} = {k}" if kind != "row" else f"row {k}", index(k, k + 1)) for k in range(size)]


def part_of(shape, index, entry):
    """Whether the part `index` of an array of `shape` holds `entry` (a tuple index)."""
    marks = np.zeros(shape, bool)
    marks[index] = True
    return bool(marks[entry])


def explain_gradient(layer, name, analytic, numeric, options=None):
    """-> (the lines that say where gradient `name` of `layer` is wrong or that it is right,
    the labels of its wrong parts, of its right parts)."""
    if np.shape(analytic) != np.shape(numeric):
        got = "None" if analytic is None else f"shape {np.shape(analytic)}"
        return [f"{layer} {name}: the backward returned {got}, the gradient has shape "
                f"{np.shape(numeric)} (NO)"], [], []
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    error = relative_error(analytic, numeric)
    lines = [f"{layer} {name}{list(analytic.shape)}: rawcap {error:.1e} ({verdict(error)}), "
             f"CS231n {cs231n_error(analytic, numeric):.1e}"]
    if error < LIMIT:
        return lines, [], []
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0))
    wrong, right = [], []
    for label, index in parts(layer, name, analytic.shape, options):
        part_error = float(np.abs(analytic[index] - numeric[index]).max(initial=0.0) / scale)
        (wrong if part_error >= LIMIT else right).append(label)
        lines.append(f"    {label:<10} {part_error:.1e}  {verdict(part_error)}  "
                     f"(CS231n {cs231n_error(analytic[index], numeric[index]):.1e})")
    if wrong:
        lines.append(f"    wrong: {', '.join(wrong)}" + (f"; right: {', '.join(right)}" if right else ""))
    entry = np.unravel_index(np.argmax(np.abs(analytic - numeric)), analytic.shape)
    where = [label for label, index in parts(layer, name, analytic.shape, options)
             if part_of(analytic.shape, index, entry)]
    lines.append(f"    worst entry {name}[{', '.join(map(str, entry))}]"
                 + (f" ({where[0]})" if where else "")
                 + f": analytic {analytic[entry]:.6g}, numeric {numeric[entry]:.6g}")
    return lines, wrong, right


def hints(layer, verdicts):
    """What a pattern of wrong and right parts usually means. verdicts: {gradient: (wrong, right)}."""
    layer = layer.split(" ")[0]
    gates = [set(wrong) for wrong, _ in verdicts.values()
             if wrong and all(w.startswith("gate") for w in wrong)]
    found = []
    if {"gate i", "gate f", "gate g"} in gates:
        found.append("gates i, f, g are wrong and o is right: the error is in what they share and "
                     "o does not, the cell's gradient dc_total = dc + dh * o * (1 - tanh(c)^2)")
    elif any(len(w) <= 2 for w in gates):
        named = sorted(set().union(*(w for w in gates if len(w) <= 2)), key=lambda w: GATES.index(w[-1]))
        found.append(f"only {' and '.join(named)}: check those blocks' own factors and their "
                     "place in da = [da_i | da_f | da_g | da_o]")
    dx_wrong, dx_right = verdicts.get("dx", ([], []))
    if layer == "lstm" and dx_wrong and dx_right:
        last = max(int(label.split()[-1]) for label in dx_wrong + dx_right)
        if dx_right == [f"t = {last}"]:
            found.append(f"only the last step (t = {last}) is right: check what goes back in time "
                         "from step t+1 to step t (dh_next, dc_next)")
    if layer == "attention" and verdicts.get("dproj", ([],))[0] and not verdicts.get("dfeats", [1])[0]:
        found.append("dfeats is right, so alpha is; the scores' gradient is wrong: check the softmax "
                     "backward de = alpha * (dalpha - sum_l alpha * dalpha) and what follows it")
    if layer in ("conv2d", "im2col") and dx_wrong and "1 window" in dx_right:
        found.append("dx is right where one window covers a pixel and wrong where several do: "
                     "overlapping windows' contributions must add up (+=), not overwrite")
    return [f"hint: {h}" for h in found]


def explain(layer, pairs, options=None):
    """The explanation of every gradient of one check, pairs = [(name, analytic, numeric)],
    then the hints its pattern gives (`options`: the check's, which conv2d's parts need)."""
    lines, verdicts = [], {}
    options = {**(options or {}), **{"kernel": n.shape[-2:] for name, _, n in pairs if name == "dw"}}
    for name, analytic, numeric in pairs:
        text, wrong, right = explain_gradient(layer, name, analytic, numeric, options)
        lines += text
        verdicts[name] = (wrong, right)
    return lines + hints(layer, verdicts)
