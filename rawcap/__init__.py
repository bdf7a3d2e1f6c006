"""rawcap: an image captioner written from first principles.

`rawcap.layers` holds every forward/backward pair; `rawcap.gradcheck` checks them against
finite differences (`python -m rawcap.gradcheck`); `rawcap.use_layers("hw")` runs everything
with a student's own layer functions (rawcap.student).
"""
__version__ = "0.1.0"


def __getattr__(name):
    if name == "use_layers":                # imported on first use: `import rawcap` stays light
        from .student import use_layers
        return use_layers
    raise AttributeError(f"module 'rawcap' has no attribute {name!r}")
