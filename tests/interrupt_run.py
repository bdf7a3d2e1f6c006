"""Run `python -m rawcap.train ARGS` and send this process a real SIGINT at a chosen point.

    python tests/interrupt_run.py POINT N ARGS...

POINT says when the SIGINT is sent (the real handler of rawcap.train then takes it):
    between-steps   as the loader hands over training batch N (1-based, counted over the run):
                    step N - 1 has finished, step N has not begun
    mid-step        inside the N-th call of the loss: the step is half done
    decoding        as the N-th decoding of a split starts: the val split after epoch N, or
                    the test split once N is one more than the epochs
The exit status is the training's (130 when it stopped on the SIGINT).

    python tests/interrupt_run.py wait-between-steps N ARGS...

as the loader hands over batch N, creates the file `ready` in the working folder and waits
(up to a minute) for the file `sent`: the test process sends the SIGINT itself in between.

    python tests/interrupt_run.py kill-in-METHOD N ARGS...

sends SIGKILL instead (kill -9: no handler runs) as the N-th call of rawcap.run_dir.Run.METHOD
begins: save (after writing half a temporary file, as a write cut short leaves it),
copy_last_to_best or write_log.
"""
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # rawcap from the checkout

from rawcap import train  # noqa: E402


def sigint():
    os.kill(os.getpid(), signal.SIGINT)


def wait_for_the_signal():
    Path("ready").touch()
    for _ in range(6000):
        if Path("sent").exists():
            return
        time.sleep(0.01)
    raise SystemExit("no SIGINT came within a minute")


def at_call(n, function):
    """`function` that sends SIGINT as its n-th call begins."""
    calls = iter(range(1, 10 ** 9))

    def wrapped(*args, **kwargs):
        if next(calls) == n:
            sigint()
        return function(*args, **kwargs)
    return wrapped


def main(point, n, argv):
    if point in ("between-steps", "wait-between-steps"):
        class Batches(train.CaptionBatches):
            handed = 0

            def epoch(self, index, start=0):
                for batch in super().epoch(index, start):
                    Batches.handed += 1
                    if Batches.handed == n:
                        sigint() if point == "between-steps" else wait_for_the_signal()
                    yield batch
        train.CaptionBatches = Batches
    elif point == "mid-step":
        train.loss_and_grads = at_call(n, train.loss_and_grads)
    elif point == "decoding":
        train.evaluate_split = at_call(n, train.evaluate_split)   # val after every epoch, then test
    elif point.startswith("kill-in-"):
        from rawcap import run_dir
        method = point[len("kill-in-"):]
        real = getattr(run_dir.Run, method)
        calls = iter(range(1, 10 ** 9))

        def killed(self, *args):
            if next(calls) == n:
                if method == "save":
                    (self.path / f"{args[0]}.tmp-{os.getpid()}").write_bytes(b"\x89HDF\r\n" * 100)
                os.kill(os.getpid(), signal.SIGKILL)
            return real(self, *args)
        setattr(run_dir.Run, method, killed)
    else:
        raise SystemExit(f"unknown point {point!r}")
    return train.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3:]))
