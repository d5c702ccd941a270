"""Install snnsim; native extensions are built where their toolchain exists.

The `cuda` backend has two pybind11 extensions, both from `backends/cuda/csrc`:

* `backends.cuda._snnsim_host`: the kernels' thread bodies run over the same launch
  grid on the host (`kernels_emulated.cpp`), compiled with the C++ compiler, so that
  tests on machines without a GPU check everything the kernels compute;
* `backends.cuda._snnsim_cuda`: the CUDA kernels, compiled with nvcc where it is found
  (`$CUDA_HOME/bin/nvcc`, else `nvcc` on PATH) for the GPU architectures in
  `$SNNSIM_CUDA_ARCHS` (default "75;80;90", plus PTX of the last for newer GPUs).

Neither needs torch to build. A build that fails prints why and is skipped: the
package still installs and every other backend works.
"""
import os
import shutil
import subprocess
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import BaseError, CCompilerError

try:
    from setuptools.modified import newer_group
except ImportError:  # setuptools < 69
    from distutils.dep_util import newer_group

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
    packages=["snnsim", "backends", "backends.cuda", "hw", "calibration"],
    package_data={"calibration": ["*.h5"]},
    install_requires=RUNTIME_REQUIREMENTS,
    extras_require={
        "test": ["pytest==9.2.0"],
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
