"""python -m rawcap.bench --profile: the table of where a step goes, op by op."""
import re

import numpy as np
import pytest

from rawcap import bench
from rawcap.backend import OPS, kernels_pinned, version_in_effect

TINY = ["--batch-size", "4", "--captions-per-image", "2", "--length", "5", "--vocab-size", "20",
        "--image-size", "32", "--channels", "4,8", "--embed-size", "8", "--hidden-size", "16",
        "--attention-size", "8", "--steps", "2", "--warmup", "1", "--profile"]
ROW = re.compile(r"\s+(\w+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)%")


@pytest.mark.parametrize("pins", ["", "all=0"])
def test_profile_lists_every_op_of_the_step_with_its_version(capsys, pins):
    with kernels_pinned(pins):
        assert bench.main(TINY + (["--kernels", pins] if pins else [])) == 0
        expected = {op: version_in_effect(op, np) for op in OPS}
    lines = capsys.readouterr().out.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("where a step goes"))
    rows = [ROW.fullmatch(line) for line in lines[start + 2:-1]]
    assert all(rows), lines[start + 2:-1]
    functions = {m.group(1): (int(m.group(2)), int(m.group(3))) for m in rows}
    calls = {"decoder_forward": 1, "lstm_pointwise_backward": 5, "conv2d_forward": 2,
             "softmax_cross_entropy_forward": 1, "adam_update": 20}
    if expected["decoder"] == 0:        # decode_step T times, each through the attention op
        calls["attention_forward"] = 5
    for function, count in calls.items():
        op = next(op for op, (_, _, names) in OPS.items() if function in names)
        assert functions[function] == (expected[op], count), function
    rest = re.fullmatch(r"\s+the rest: GEMMs, model glue\s+(-?[\d.]+)\s+(-?[\d.]+)%", lines[-1])
    assert rest, lines[-1]
    assert float(rest.group(1)) >= 0, "an op's time counted twice (its own and its caller's)"
    total = sum(float(m.group(5)) for m in rows) + float(rest.group(2))
    assert total == pytest.approx(100, abs=1)
