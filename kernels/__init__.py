"""GPU kernels (Numba CUDA), one module per op, mirroring the layer functions they replace.

Version 0 of every op is the layer in `rawcap.layers` running on CuPy arrays; versions 1, 2, ...
are functions here named <function>_v<k>, numbered in the order they were written, each described
in its module's docstring. A module's DEFAULT is the version the backend runs on a GPU; its
ATOMIC set names versions whose results depend on the order of atomic additions.
`rawcap.backend` picks the version; `kernels.launch` hands arrays to the kernels.
"""
