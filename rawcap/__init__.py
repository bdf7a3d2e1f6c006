"""rawcap: an image captioner written from first principles.

`rawcap.layers` holds every forward/backward pair; `rawcap.gradcheck` checks them against
finite differences (`python -m rawcap.gradcheck`).
"""
__version__ = "0.1.0"
