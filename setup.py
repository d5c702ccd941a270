"""Install snnsim; native extensions are built where their toolchain exists."""
from setuptools import setup

RUNTIME_REQUIREMENTS = [
    "torch==2.13.0",
    "numpy==2.4.6",
    "scipy==1.17.1",
    "numba==0.68.1",
    "h5py==3.16.0",
    "pyyaml==6.0.3",
    "tqdm==4.70.1",
    "matplotlib==3.11.2",
]

setup(
    name="snnsim",
    version="0.1.0",
    description="Event-driven, hardware-aware spiking-network simulator with exact spike-time gradients",
    python_requires=">=3.10",
    packages=["snnsim", "backends", "hw", "calibration"],
    install_requires=RUNTIME_REQUIREMENTS,
    extras_require={"test": ["pytest==9.2.0"]},
)
