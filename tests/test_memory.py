"""kernels/cpu/memory.py: with glibc's malloc options set, freed arrays are reused, not faulted in again."""
import subprocess
import sys

import pytest

from kernels.cpu.memory import glibc

FAULTS = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    import kernels.cpu
    assert kernels.cpu.MEMORY_KEPT, "glibc refused the malloc options"
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(8 << 20)                              # one 64 MB array first, as a step's would be
before = faults()
for _ in range(10):
    np.ones(8 << 20)                          # allocated, touched, freed
print(faults() - before)
"""


def page_faults(mode):
    """Minor page faults of ten 64 MB arrays allocated and freed in a fresh Python."""
    done = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True,
                          check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(glibc() is None, reason="the C library is not glibc: keep_freed_memory "
                                            "changes nothing there")
def test_freed_arrays_are_reused_without_page_faults():
    default, kept = page_faults("default"), page_faults("keep")
    # By default each array is mmapped afresh: at least one fault per page (16,384 pages of 4 KiB,
    # or 32 of 2 MiB where the kernel backs it with huge pages), every time. Kept: the first
    # array's pages serve all ten.
    assert default >= 10 * 32
    assert kept * 10 < default
