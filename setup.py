"""Install snnsim; native extensions are built where their toolchain exists.

The `cuda` backend has two pybind11 extensions, both from `backends/cuda/csrc`:

* `backends.cuda._snnsim_host`: the kernels' thread bodies run over the same launch
  grid on the host (`kernels_emulated.cpp`), compiled with the C++ compiler, so that
  tests on machines without a GPU check everything the kernels compute;
* `backends.cuda._snnsim_cuda`: the CUDA kernels, compiled with nvcc where it is found
  (`$CUDA_HOME/bin/nvcc`, else `nvcc` on PATH) for the GPU architectures in
  `$SNNSIM_CUDA_ARCHS` (default "75;80;90", plus PTX of the last for newer GPUs;
  "none" skips them, e.g. for a quick CPU-only build).

Neither needs torch to build. A build that fails prints why and is skipped: the
package still installs and every other backend works.
"""
import os
import shutil
import subprocess
import sys
import sysconfig

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import BaseError, CCompilerError

try:
    from setuptools.modified import newer_group
except ImportError:  # setuptools < 69
    from distutils.dep_util import newer_group

# Version ranges, so that snnsim installs into an environment that already holds torch
# and friends without replacing them. Each lower bound is tested: `constraints-min.txt`
# pins exactly these versions and the test suite passes with them (README, "Install");
# CI installs the exact versions of `constraints.txt`.
RUNTIME_REQUIREMENTS = [
    "torch>=2.11",
    "numpy>=1.26.4",
    "scipy>=1.11.4",
    "numba>=0.59.1",
    "h5py>=3.10",
    "pyyaml>=6.0.1",
    "tqdm>=4.66",
    "matplotlib>=3.8",
]

CODE_PACKAGES = ("snnsim", "backends", "hw", "calibration")
# Data folders that ship inside the wheel (no Python code), with what they hold.
DATA_FOLDERS = {
    "experiment_configs": ["*.yaml"],
    "experiment_pretrained": ["*/*.yaml", "*/*.csv", "*/checkpoints/*.h5", "*/plots/*.png"],
}

CSRC = "backends/cuda/csrc"
# Turing (T4), Ampere (A100; its code also runs on sm_86/89), Hopper (H100/H200).
DEFAULT_CUDA_ARCHS = "75;80;90"


def _pybind11_include():
    try:
        import pybind11
    except ImportError:
        return None
    return pybind11.get_include()


def _nvcc():
    """Path of nvcc: $CUDA_HOME/bin/nvcc (or $CUDA_PATH), else nvcc on PATH, else None."""
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(variable)
        if home and os.path.isfile(os.path.join(home, "bin", "nvcc")):
            return os.path.join(home, "bin", "nvcc")
    return shutil.which("nvcc")


def _gencode_flags(archs):
    """-gencode flags: machine code for each architecture, PTX for the last one."""
    archs = [a.strip() for a in archs.replace(",", ";").split(";") if a.strip()]
    if not archs or not all(a.isdigit() for a in archs):
        raise ValueError(f"SNNSIM_CUDA_ARCHS must list compute capabilities like '80;90', "
                         f"got {os.environ.get('SNNSIM_CUDA_ARCHS')!r}")
    flags = []
    for arch in archs:
        flags += ["-gencode", f"arch=compute_{arch},code=sm_{arch}"]
    return flags + ["-gencode", f"arch=compute_{archs[-1]},code=compute_{archs[-1]}"]


class CudaExtension(Extension):
    """An extension linked by nvcc from its .cu and .cpp sources."""


class OptionalBuildExt(build_ext):
    """Builds each native extension if its toolchain works; otherwise says why and skips it."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = True

    def build_extension(self, ext):
        try:
            if _pybind11_include() is None:
                raise RuntimeError("pybind11 is not installed in the build environment")
            if isinstance(ext, CudaExtension):
                self._build_cuda(ext)
            else:
                if self.compiler.compiler_type == "msvc":
                    ext.extra_compile_args = ["/std:c++17", "/O2"]
                super().build_extension(ext)
        except (BaseError, CCompilerError, OSError, RuntimeError, ValueError) as error:
            print(f"snnsim: skipping the {ext.name} extension: {error}", file=sys.stderr)

    def _build_cuda(self, ext):
        if os.environ.get("SNNSIM_CUDA_ARCHS", "").strip().lower() == "none":
            raise RuntimeError("SNNSIM_CUDA_ARCHS=none: the CUDA kernels are not built")
        nvcc = _nvcc()
        if nvcc is None:
            raise RuntimeError("nvcc not found (set CUDA_HOME or put nvcc on PATH); "
                               "the cuda backend will be unavailable")
        output = self.get_ext_fullpath(ext.name)
        if not (self.force or newer_group(ext.sources + ext.depends, output, "newer")):
            return
        os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
        command = [
            nvcc, "-shared", "-std=c++17", "-O3", "-lineinfo", "--threads", "0",
            "-Xcompiler", "-fPIC,-fvisibility=hidden",
            "-I", sysconfig.get_paths()["include"], "-I", _pybind11_include(),
            *[f"-D{name}={value}" for name, value in ext.define_macros],
            *_gencode_flags(os.environ.get("SNNSIM_CUDA_ARCHS", DEFAULT_CUDA_ARCHS)),
            *ext.sources, "-o", output,
        ]
        print("snnsim: " + " ".join(command), file=sys.stderr)
        result = subprocess.run(command, check=False, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"nvcc failed ({result.returncode}):\n{result.stderr[-4000:]}")


def _extensions():
    include = _pybind11_include()
    include_dirs = [CSRC] + ([include] if include else [])
    headers = [f"{CSRC}/{name}" for name in ("kernels.h", "kernel_threads.h", "spike_math.h")]
    return [
        Extension(
            "backends.cuda._snnsim_host",
            sources=[f"{CSRC}/{name}" for name in
                     ("kernels_emulated.cpp", "kernels.cpp", "bind_kernels.cpp")],
            depends=headers,
            include_dirs=include_dirs,
            define_macros=[("SNN_MODULE_NAME", "_snnsim_host")],
            optional=True,  # a failed build is reported and skipped (OptionalBuildExt)
            extra_compile_args=["-std=c++17", "-O3", "-g0", "-fvisibility=hidden"],
            language="c++",
        ),
        CudaExtension(
            "backends.cuda._snnsim_cuda",
            sources=[f"{CSRC}/{name}" for name in
                     ("kernels.cu", "kernels.cpp", "bind_kernels.cpp")],
            depends=headers,
            define_macros=[("SNN_MODULE_NAME", "_snnsim_cuda")],
            optional=True,
        ),
    ]


setup(
    name="snnsim",
    version="0.1.0",
    description="Event-driven, hardware-aware spiking-network simulator with exact spike-time gradients",
    python_requires=">=3.10",
    # The code packages, and the shipped data folders beside them (in a checkout and in
    # site-packages alike, so that `snnsim.resources` and the configs' relative calibration
    # paths resolve the same way in both).
    packages=find_packages(include=[f"{name}{tail}" for name in CODE_PACKAGES
                                    for tail in ("", ".*")]) + list(DATA_FOLDERS),
    package_data={"calibration": ["*.h5"], **DATA_FOLDERS},
    entry_points={"console_scripts": ["snnsim = snnsim.cli:main"]},
    install_requires=RUNTIME_REQUIREMENTS,
    extras_require={
        # setuptools and pybind11: tests/test_packaging.py builds the wheel without build
        # isolation (no download at test time).
        "test": ["pytest>=8.0", "setuptools>=77.0.3", "pybind11>=2.12"],
        # `--tensorboard DIR` of train, continue and eval (torch.utils.tensorboard).
        "tensorboard": ["tensorboard>=2.16.2"],
        # `experiment.py sweep` runs its points on Ray (Ray core is enough: local instance
        # or an existing cluster); without it the points run one after another.
        "ray": ["ray>=2.40,<3"],
        # NIR export/import (`export-nir`, `import-nir`; snnsim.interchange) and Norse, the
        # peer simulator that tests/test_nir.py checks exported networks against.
        "interop": ["nir>=1.0.8,<2", "norse>=1.1.0,<2"],
    },
    ext_modules=_extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
)
