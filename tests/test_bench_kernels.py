"""tools/bench_kernels.py runs its whole harness on tiny shapes (under the simulator in CI):
every op, every version validated against version 0, a row each, and the JSON table."""
import json

import pytest

from rawcap.backend import versions
from tools import bench_cases, bench_kernels

pytestmark = pytest.mark.gpu


def test_every_version_of_every_op_is_validated_and_timed(tmp_path, capsys):
    out = tmp_path / "kernels.json"
    assert bench_kernels.main(["--tiny", "--repeats", "1", "--warmup", "0", "--json", str(out)]) == 0
    table = json.loads(out.read_text())
    rows = table["rows"]
    assert table["copy_gb_s"] > 0 and table["environment"]["commit"]
    for case in bench_cases.cases(tiny=True):
        expected = {str(v) for v in bench_cases.case_versions(case, "cuda")}
        got = {r["version"] for r in rows if r["op"] == case.op and r["shape"] == case.shape}
        assert expected <= got, f"{case.op}: rows for versions {got}, expected {expected}"
    for row in rows:
        assert row["valid"] and row["ms"] > 0, row
        assert row["max_rel_diff"] <= bench_kernels.TOLERANCE
        assert ("tflops" in row) != ("gb_s" in row)
    printed = capsys.readouterr().out
    assert "device-to-device copy" in printed and printed.count(" ms ") >= len(rows)


@pytest.mark.parametrize("op", ["lstm_pointwise", "softmax_ce", "embedding"])
def test_cpu_versions_are_validated_and_timed(tmp_path, op):
    """--device cpu: version 0 and every CPU version of the op, each validated against version 0."""
    out = tmp_path / "cpu.json"
    assert bench_kernels.main(["--device", "cpu", "--tiny", "--ops", op, "--repeats", "1",
                               "--warmup", "0", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert {r["version"] for r in rows} == {str(v) for v in versions(op, "cpu")}
    assert all(r["valid"] and r["ms"] > 0 for r in rows)


def test_unknown_op_is_named(capsys):
    with pytest.raises(SystemExit):
        bench_kernels.main(["--tiny", "--ops", "softmax_ce,warp_drive"])
    assert "warp_drive" in capsys.readouterr().err
