"""Five classic backprop bugs, planted into an answer key: the grader's and --explain's tests,
and the loss curves of docs/teaching.md (tools/planted_bugs.py).

name -> (layer file, the solution's text, the bug's text, the function that holds it)
"""
from pathlib import Path

PLANTED = {
    "no tanh'(c)": ("lstm", "dc_total = dh * o * (1 - tanh_c ** 2)", "dc_total = dh * o",
                    "lstm_pointwise_backward"),
    "dc_prev = dc": ("lstm", "return da, dc_total * f", "return da, dc", "lstm_pointwise_backward"),
    "i and f swapped": ("lstm", "xp.concatenate([dc_total * g * i * (1 - i),\n"
                                "                         dc_total * c_prev * f * (1 - f),",
                        "xp.concatenate([dc_total * c_prev * f * (1 - f),\n"
                        "                         dc_total * g * i * (1 - i),", "lstm_pointwise_backward"),
    "softmax without - sum": ("attention", "de = alpha * (dalpha_total - (alpha * dalpha_total)"
                                           ".sum(axis=1, keepdims=True))",
                              "de = alpha * dalpha_total", "attention_backward"),
    "col2im overwrites": ("conv", "kw:kw + stride * Wo:stride] += dcols",
                          "kw:kw + stride * Wo:stride] = dcols", "col2im"),
}


def plant(folder, module, old, new):
    """Replace the text `old` (which must occur once) by `new` in folder/<module>.py."""
    path = Path(folder) / f"{module}.py"
    text = path.read_text()
    if text.count(old) != 1:
        raise ValueError(f"{path}: {old!r} occurs {text.count(old)} times, not once")
    path.write_text(text.replace(old, new))


def plant_bug(folder, name):
    module, old, new, _ = PLANTED[name]
    plant(folder, module, old, new)
