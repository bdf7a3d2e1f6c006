"""tools/bench_encoder: one row per block and op with a median per version and the ratio."""
from tools import bench_encoder


def test_rows_per_block_with_each_version_side_by_side(capsys):
    bench_encoder.main(["--batch-size", "2", "--image-size", "8", "--channels", "2,4",
                        "--versions", "conv2d=0/2", "--repeats", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert "conv2d 0 " in lines[0] and "conv2d 2 " in lines[0]
    rows = [line for line in lines[1:] if line.startswith("  block ")]
    assert len(rows) == 12                      # 2 blocks x 6 (op, direction)
    assert "conv2d backward (params)" in rows[1] and "conv2d backward" in rows[7]
    assert all(line.count(" x") == 1 for line in rows)       # one ratio: the second column's
    assert lines[-1].lstrip().startswith("all blocks")
