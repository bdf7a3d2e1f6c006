"""rawcap against the same model in PyTorch (tools/torch_reference.py): the loss and every
gradient in float64, and bench's --compare-torch. Skipped where PyTorch is not installed."""
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the PyTorch reference needs PyTorch (pip install torch)")

from rawcap import bench
from rawcap.model import Config, init_params, loss_and_grads
from tools import torch_reference as reference

TINY = {"vocab_size": 11, "image_size": 8, "channels": (3, 4), "embed_size": 5, "hidden_size": 6,
        "attention_size": 4, "dropout": 0.0, "lambda_alpha": 0.3, "weight_decay": 1e-3}
TOLERANCE = 1e-10


def relative_error(a, b):
    """max |a - b| / max |b| (0 when both are all zeros)."""
    scale = np.abs(b).max()
    return float(np.abs(a - b).max() / scale) if scale else float(np.abs(a).max())


def tiny_batch(rng):
    """3 images, 5 captions (image 1 has three, images 0 and 2 one each), T = 6 with masked
    tokens."""
    images = rng.random((3, 3, 8, 8))
    inputs, targets = rng.integers(0, 11, (5, 6)), rng.integers(0, 11, (5, 6))
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0],
                     [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]], bool)
    return images, inputs, targets, mask, np.array([0, 1, 1, 2, 1])


def teacher_targets(rng, k=3):
    """A teacher's k distinct words a step for tiny_batch, probabilities summing to 1 (also at
    masked steps, which must count for nothing)."""
    indices = np.array([[rng.choice(11, k, replace=False) for _ in range(6)] for _ in range(5)])
    return indices, rng.dirichlet(np.ones(k), (5, 6))


def both_models(config, seed):
    """rawcap's loss, parts and gradients, then the torch module's, on the same float64
    parameters (moved off the zero biases) and batch (and a teacher's soft targets when
    config.teacher_weight > 0)."""
    rng = np.random.default_rng(seed)
    params = init_params(config, rng, dtype=np.float64)
    for name in params:
        params[name] += 0.1 * rng.standard_normal(params[name].shape)
    batch = tiny_batch(rng)
    soft = teacher_targets(rng) if config.teacher_weight else None
    loss, parts, grads = loss_and_grads(params, config, *batch, rng=None, soft_targets=soft)

    module = reference.TorchCaptioner(config).double().load_rawcap(params)
    torch_soft = soft and (torch.as_tensor(soft[0]), torch.as_tensor(soft[1]))
    torch_loss, torch_parts = module.loss(*reference.batch_to_torch(*batch, torch.float64, "cpu"),
                                          soft_targets=torch_soft)
    torch_loss.backward()
    return (loss, parts, grads), (torch_loss.item(), torch_parts, reference.grads_as_rawcap(module))


@pytest.mark.parametrize("seed, options", [(0, {"f_beta": True}), (1, {"f_beta": False}),
                                           (2, {"blind": True}), (4, {"label_smoothing": 0.2}),
                                           (5, {"deep_output": True}), (6, {"teacher_weight": 0.7})])
def test_loss_and_every_gradient_match_pytorch_in_float64(seed, options):
    config = Config(**TINY, **options)
    (loss, parts, grads), (torch_loss, torch_parts, torch_grads) = both_models(config, seed)
    assert abs(loss - torch_loss) <= TOLERANCE * abs(torch_loss)
    for name in ("ce", "smoothing", "teacher", "attention", "decay"):
        assert abs(parts[name] - torch_parts[name]) <= TOLERANCE * abs(torch_parts[name]), name
    assert torch_grads.keys() == grads.keys()
    for name, g in grads.items():
        assert torch_grads[name].shape == g.shape, name
        error = relative_error(g, torch_grads[name])
        assert error < TOLERANCE, f"{name}: relative error {error:.1e}"


def test_blind_model_gets_only_weight_decay_in_its_encoder():
    config = Config(**TINY, blind=True)
    _, (_, _, torch_grads) = both_models(config, 3)
    assert not np.any(torch_grads["conv0_b"])
    assert np.any(torch_grads["conv0_w"])          # weight_decay * w, as rawcap gives it


def test_mapping_covers_every_trainable_parameter_once():
    config = Config(**TINY)
    module = reference.TorchCaptioner(config)
    trainable = {name for name, p in module.named_parameters() if p.requires_grad}
    mapped = [torch_name for torch_name, _ in reference.parameter_map(config).values()]
    assert sorted(mapped) == sorted(trainable)
    assert set(reference.parameter_map(config)) == set(init_params(config, np.random.default_rng(0)))
    assert not module.lstm.bias_hh.requires_grad


TINY_BENCH = ["--vocab-size", "11", "--image-size", "8", "--channels", "3,4", "--embed-size", "5",
              "--hidden-size", "6", "--attention-size", "4", "--batch-size", "2",
              "--captions-per-image", "2", "--length", "3", "--steps", "1", "--warmup", "0"]


def test_bench_compare_torch_prints_both_medians_and_their_ratio(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)            # the reference is found from the checkout, not the cwd
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert bench.main(TINY_BENCH + ["--compare-torch"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("compared with PyTorch"))
    assert "on cpu, 1 CPU threads each" in lines[header]
    rawcap_ms = float(lines[header + 1].split()[1])
    torch_ms = float(lines[header + 2].split()[1])
    assert lines[header + 1].split()[0] == "rawcap" and lines[header + 2].split()[0] == "PyTorch"
    assert rawcap_ms > 0 and torch_ms > 0
    assert lines[header + 3].startswith("  rawcap / PyTorch = ")


def test_bench_compare_torch_without_pytorch_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)      # import torch fails
    assert bench.main(TINY_BENCH + ["--compare-torch"]) == 2
    assert "--compare-torch needs PyTorch (pip install torch)" in capsys.readouterr().err
