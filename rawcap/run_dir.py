"""The run folder: one run's files, owned by one process at a time.

    config.json   log.csv   loss.png   last.h5   best.h5   metrics.json   captions_test.json

A new run refuses a folder that already holds a run (it says how to resume it, or to replace it
with --overwrite); a lock (`.lock`, an flock held while the process lives) refuses a second
process. Every file is written to a temporary `NAME.tmp-PID` and renamed; temporary files left
by a killed process are removed when the folder is next claimed.

The order of the saves at the end of an epoch keeps the folder consistent if the process is
killed at any moment: last.h5 first (it carries the log rows), then best.h5 (a copy of the same
state), then log.csv and loss.png from the rows in last.h5. A resume repairs what a kill left
behind: best.h5 is copied from last.h5 when the kill fell between the two, and log.csv is
rewritten from last.h5's rows.
"""
import csv
import os
import shutil
from pathlib import Path

from .backend import to_numpy
from .checkpoint import load_checkpoint, save_checkpoint
from .plot import plot_log

try:
    import fcntl
except ImportError:             # Windows: no flock; the folder check still applies
    fcntl = None

RUN_FILES = ("config.json", "log.csv", "loss.png", "last.h5", "best.h5", "metrics.json",
             "captions_test.json")
LOG_COLUMNS = ("epoch", "step", "train_loss", "val_bleu1", "val_bleu2", "val_bleu3", "val_bleu4",
               "val_rouge_l", "val_cider", "lr", "seconds", "images_per_s")


class RunFolderError(ValueError):
    """A run folder that this run may not use; the message says why and what to do."""


def run_files(path):
    """The run files present in folder `path`."""
    return [name for name in RUN_FILES if (Path(path) / name).exists()]


def check_free(path, overwrite=False):
    """Refuse (RunFolderError) a folder that holds a run, unless `overwrite`. Creates nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"--out {path}: a file, not a folder")
    found = run_files(path) if path.is_dir() else []
    if found and not overwrite:
        raise RunFolderError(
            f"{path} already holds a run ({', '.join(found)}); continue it with "
            f"python -m rawcap.train --resume {path}, or replace it with --overwrite")


def remove_temporary_files(path):
    """Delete the NAME.tmp-PID files a killed writer left in `path` -> their names."""
    stale = sorted(p for p in Path(path).glob("*.tmp-*") if p.is_file())
    for p in stale:
        p.unlink()
    return [p.name for p in stale]


class Run:
    """A claimed run folder: the lock, the checkpoints, the epoch log and its plot.

    mode "new" refuses a folder holding a run, "overwrite" deletes its run files, "resume"
    takes it as it is. Call release() (or use `with`) when the run ends.
    """

    def __init__(self, path, mode="new"):
        self.path = Path(path)
        if mode != "resume":
            check_free(self.path, overwrite=mode == "overwrite")
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = self._take_lock()
        if mode == "overwrite":
            for name in run_files(self.path):
                (self.path / name).unlink()
        elif mode == "new":
            check_free(self.path)             # again, now that no one else can write here
        self.removed = remove_temporary_files(self.path)

    def _take_lock(self):
        lock = open(self.path / ".lock", "a+")
        if fcntl is None:
            return lock
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.seek(0)
            owner = lock.read().strip() or "unknown"
            lock.close()
            raise RunFolderError(f"{self.path} is in use by another training process (pid "
                                 f"{owner}); wait for it to end, or use another --out") from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        return lock

    def release(self):
        if self._lock is not None:
            self._lock.close()              # closing the file releases the flock
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def save(self, name, params, optimizer, meta):
        save_checkpoint(self.path / name, {k: to_numpy(v) for k, v in params.items()},
                        optimizer.state_dict(), meta)

    def copy_last_to_best(self):
        """best.h5 := last.h5, atomically."""
        tmp = self.path / f"best.h5.tmp-{os.getpid()}"
        try:
            shutil.copyfile(self.path / "last.h5", tmp)
            os.replace(tmp, self.path / "best.h5")
        finally:
            tmp.unlink(missing_ok=True)

    def write_log(self, rows):
        """log.csv (atomically) and loss.png from the epoch rows."""
        tmp = self.path / f"log.csv.tmp-{os.getpid()}"
        try:
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, LOG_COLUMNS)
                writer.writeheader()
                writer.writerows({k: row.get(k, "") for k in LOG_COLUMNS} for row in rows)
            os.replace(tmp, self.path / "log.csv")
        finally:
            tmp.unlink(missing_ok=True)
        if rows:
            plot_log(self.path / "log.csv", self.path / "loss.png")

    def repair(self, meta):
        """After a kill: best.h5 from last.h5 if the kill fell between their saves, and log.csv
        from last.h5's rows. -> what was repaired, as a list of notes."""
        notes = []
        if meta.get("best_epoch") == meta["epoch"] and meta["batch"] == 0:
            best = self.path / "best.h5"
            best_epoch = load_checkpoint(best)[2]["epoch"] if best.is_file() else None
            if best_epoch != meta["epoch"]:
                self.copy_last_to_best()
                notes.append(f"best.h5 restored from last.h5 (epoch {meta['epoch']})")
        self.write_log(meta.get("log", []))
        return notes
