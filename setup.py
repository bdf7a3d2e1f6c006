"""rawcap: an image captioner written from first principles (NumPy / CuPy + Numba CUDA)."""
from setuptools import find_packages, setup

setup(
    name="rawcap",
    version="0.1.0",
    description="Show-Attend-Tell image captioning with every forward and backward pass written by hand",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    classifiers=["License :: OSI Approved :: MIT License", "Programming Language :: Python :: 3"],
    python_requires=">=3.10",
    packages=find_packages(include=["rawcap", "rawcap.*", "kernels", "kernels.*"]),
    package_data={"rawcap": ["weights/*.h5"]},      # the shipped model (rawcap.ship)
    install_requires=[
        "numpy>=1.25",
        "scipy>=1.10",
        "pillow>=10.0",
        "h5py>=3.8",
        "numba>=0.58",
        "tqdm>=4.60",
        "matplotlib>=3.5",
        "threadpoolctl>=3.0",      # Numba gets as many CPU threads as BLAS has (kernels/cpu)
    ],
    extras_require={
        # CuPy and numba-cuda come per CUDA major version: [cuda] for a CUDA 13 driver,
        # [cuda12] for CUDA 12 (`nvidia-smi` prints the driver's CUDA version).
        "cuda": ["cupy-cuda13x>=13.0", "numba-cuda[cu13]>=0.20"],
        "cuda12": ["cupy-cuda12x>=13.0", "numba-cuda[cu12]>=0.20"],
        # the notebooks run in a real kernel in tests/test_notebooks.py
        "test": ["pytest>=7.0", "nbclient>=0.7", "nbformat>=5.7", "ipykernel>=6.0"],
    },
)
