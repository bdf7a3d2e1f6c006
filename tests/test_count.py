"""rawcap.count (bench --count): each operation counted as CuPy launches it, and a training
step's counts independent of the widths."""
import numpy as np
import pytest

from rawcap import count
from rawcap.backend import array_module
from rawcap.count import DeviceArray, counting, device
from rawcap.model import Config


def tally_of(run):
    with counting({}) as tally:
        run()
    return {category: n for (_, category), n in tally.counts.items()}


def on_device(*shape, order="C"):
    return np.ones(shape, np.float32, order=order).view(DeviceArray)


ROWS = np.array([0, 0]).view(DeviceArray)


def test_device_arrays_belong_to_the_stand_in_module():
    assert array_module(on_device(2)) is device
    assert array_module(np.ones(2)) is np


@pytest.mark.parametrize("run, expected", [
    (lambda a, b: a * 2 + b, {"elementwise": 2}),
    (lambda a, b: a.__iadd__(b), {"elementwise": 1}),
    (lambda a, b: device.tanh(a), {"elementwise": 1}),
    (lambda a, b: device.where(a > 0, a, b), {"elementwise": 2}),
    (lambda a, b: a.sum(axis=0), {"reduction": 1}),
    (lambda a, b: a.mean(), {"reduction": 1}),               # CuPy divides inside the reduction
    (lambda a, b: device.isfinite(a).all(), {"elementwise": 1, "reduction": 1}),
    (lambda a, b: a @ b.T, {"GEMM": 1}),                     # b.T is F-contiguous: no copy
    (lambda a, b: a[:, :2] @ b[:2], {"GEMM": 1, "copy": 1}),       # a slice of columns
    (lambda a, b: a[None] @ b.T, {"GEMM": 1, "copy": 1, "elementwise": 3}),   # N-D, broadcast
    (lambda a, b: device.concatenate([a, b], axis=1), {"copy": 2}),
    (lambda a, b: device.stack([a, b, a]), {"copy": 3}),
    (lambda a, b: a.T.reshape(-1), {"copy": 1}),             # no view possible
    (lambda a, b: a.reshape(-1), {}),                        # a view
    (lambda a, b: a[:, 1], {}),
    (lambda a, b: a.__setitem__((slice(None), 1), b[:, 0]), {"copy": 1}),
    (lambda a, b: a[ROWS], {"gather": 1}),
    (lambda a, b: device.add.at(a, ROWS, b[0]), {"scatter": 1}),
    (lambda a, b: device.take_along_axis(a, ROWS[None], axis=1), {"elementwise": 1, "gather": 1}),
    (lambda a, b: device.zeros((2, 3)), {"fill": 1}),
    (lambda a, b: device.arange(3), {"elementwise": 1}),
    (lambda a, b: device.empty_like(a), {}),
    (lambda a, b: device.ascontiguousarray(a.T), {"copy": 1}),
    (lambda a, b: device.ascontiguousarray(a), {}),
    (lambda a, b: a.astype(np.float64), {"copy": 1}),
    (lambda a, b: device.asarray(np.ones(3)), {"host->device": 1}),
    (lambda a, b: device.asarray(a), {}),
    (lambda a, b: float(a.sum()), {"reduction": 1, "sync": 1}),
    (lambda a, b: f"{a.max():.3f}", {"reduction": 1, "sync": 1}),
    (lambda a, b: a.get(), {"sync": 1}),
])
def test_each_operation_is_counted_as_cupy_launches_it(run, expected):
    a, b = on_device(3, 4), on_device(3, 4)
    assert tally_of(lambda: run(a, b)) == expected


def test_results_stay_device_arrays_and_host_arrays_are_refused():
    a = on_device(3, 4)
    assert type(a.sum()) is DeviceArray and a.sum().shape == ()     # 0-d, as CuPy's
    assert type(a[0] * 2) is DeviceArray
    assert type(a[0, 1]) is DeviceArray and a[0, 1].shape == ()
    with pytest.raises(TypeError, match="host"):
        a + np.ones((3, 4), np.float32)


def test_an_operation_without_a_rule_is_an_error_not_a_free_launch():
    with pytest.raises(TypeError, match="no rule for numpy.cumsum"):
        np.cumsum(on_device(3))


def small(channels, E, H, A, V):
    return Config(vocab_size=V, image_size=8, channels=channels, embed_size=E, hidden_size=H,
                  attention_size=A, dropout=0.5)


def test_a_steps_counts_do_not_depend_on_the_widths():
    """Two models of one structure (2 conv blocks, T = 3) and different widths, batch sizes
    and vocabularies: the same launches, copies and syncs, phase by phase and place by place."""
    a = count.count_step(small((2, 3), 3, 4, 5, 11), images=2, captions_per_image=2, length=3)
    b = count.count_step(small((3, 2), 5, 3, 2, 13), images=3, captions_per_image=1, length=3)
    assert a.counts == b.counts
    assert a.syncs == b.syncs and a.copies_in == b.copies_in
    # and the step reads the device once, in check_and_clip
    assert sum(a.syncs.values()) == 1 and "check_and_clip" in next(iter(a.syncs))
    assert a.total(("kernel",), "forward") > 0 and a.total(("GEMM",), "backward") > 0


def test_bench_count_prints_the_table(capsys):
    from rawcap import bench
    assert bench.main(["--count", "--length", "2"]) == 0
    out = capsys.readouterr().out
    assert "T=2, 4 conv blocks" in out and "check_and_clip" in out
    assert out.splitlines()[-1].endswith("1 host syncs, 6 host-to-device copies per step")


@pytest.mark.parametrize("option", ["teacher_weight", "label_smoothing"])
def test_the_loss_options_make_the_host_wait_no_more_than_a_step_without_them(option):
    """Word-level distillation (--teacher) and label smoothing on the GPU: loss_and_grads reads
    nothing on the host, with the term as without it; it only adds launches."""
    from rawcap import model
    config = small((2, 3), 3, 4, 5, 11)
    rng = np.random.default_rng(0)
    params = model.to_device(model.init_params(config, rng), device)
    batch = count.random_batch(config, 2, 2, 3, rng)
    arrays = [count.to_device(a) for a in (batch.images, batch.inputs, batch.targets, batch.mask,
                                            batch.caption_image)]
    indices = np.argsort(rng.random((4, 3, 11)), axis=2)[:, :, :3].astype(np.int32)
    probs = rng.dirichlet(np.ones(3), (4, 3)).astype(np.float32)
    soft = (count.to_device(indices), count.to_device(probs))
    syncs, launches = {}, {}
    for weight in (0.0, 1.0):
        taught = Config(**{**config.to_dict(), option: weight})
        with counting({}) as tally:
            model.loss_and_grads(params, taught, *arrays, soft_targets=soft)
        syncs[weight], launches[weight] = tally.syncs, tally.total(count.LAUNCHES)
    assert syncs[1.0] == syncs[0.0] == {}, syncs[1.0]
    assert launches[1.0] > launches[0.0]
