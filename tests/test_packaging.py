"""The built package: sdist -> wheel -> a fresh venv -> the `snnsim` command, run outside
the source tree.

Builds the sdist (so MANIFEST.in is checked too), the wheel from it without build
isolation (setuptools and pybind11 come with the `test` extra; the CUDA kernels are left
out with SNNSIM_CUDA_ARCHS=none to keep it quick, the host extension is built), installs
the wheel into a new venv with the exact versions of constraints.txt (from pip's cache),
and from an empty folder resolves the calibration files inside the install and runs
`snnsim --help`, a 1-epoch `snnsim train` of a shipped config named by its checkout path,
`snnsim inference` on the result and on the shipped pretrained network. About 1.5 minutes
on an idle 2-core machine (CI runs it); `pytest -m "not packaging"` leaves it out.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[1]
PRETRAINED_ACCURACY = "accuracy: 98.80%"  # experiment_pretrained/yin_yang, test split (README)


def _run(command: list[str], cwd: Path, env: dict, timeout: float = 600) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, command))} exited {result.returncode}\n"
                    f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}")
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv bin folder, environment, empty working folder, wheel path)."""
    for module in ("setuptools", "pybind11"):
        pytest.importorskip(module, reason="the `test` extra builds the wheel with it")
    root = tmp_path_factory.mktemp("packaging")
    # PYTHONDONTWRITEBYTECODE would make every command compile torch's sources anew
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")}
    env.update(SNNSIM_CUDA_ARCHS="none", OMP_NUM_THREADS="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               NUMBA_CACHE_DIR=str(root / "numba_cache"))
    dist = root / "dist"
    _run([sys.executable, "-c", ("import sys; from setuptools import build_meta; "
          "print(build_meta.build_sdist(sys.argv[1]))"), str(dist)], REPO, env)
    (sdist,) = dist.glob("snnsim-*.tar.gz")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "-w", str(dist), str(sdist)], root, env)
    (wheel,) = dist.glob("snnsim-*.whl")

    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root, env)
    bin_dir = venv / "bin"
    # this pip installs into the venv; the modules are compiled when first imported
    _run([sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "-q",
          "--no-compile", "-c", str(REPO / "constraints.txt"), str(wheel)], root, env)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    work = root / "work"
    work.mkdir()
    return bin_dir, env, work, wheel, sdist


def test_sdist_and_wheel_hold_sources_and_package_data(installed):
    _, _, _, wheel, sdist = installed
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for name in ("setup.py", "pyproject.toml", "constraints.txt",
                 "backends/cuda/csrc/kernels.cu", "backends/cuda/csrc/spike_math.h",
                 "calibration/mock_chip_a.h5", "experiment_configs/yin_yang.yaml"):
        assert name in in_sdist, name
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = [f"experiment_configs/{p.name}" for p in (REPO / "experiment_configs").glob("*.yaml")]
    expected += [p.relative_to(REPO).as_posix()
                 for p in (REPO / "experiment_pretrained").rglob("*") if p.is_file()]
    expected += [f"calibration/{p.name}" for p in (REPO / "calibration").glob("*.h5")]
    expected += [p.relative_to(REPO).as_posix() for p in (REPO / "snnsim").rglob("*.py")
                 if "__pycache__" not in p.parts]
    missing = sorted(set(expected) - names)
    assert not missing, f"not in the wheel: {missing[:10]}"
    assert "snnsim/families/feedback/__init__.py" in names
    assert not [name for name in names if name.startswith(("tests/", "benchmarks/"))]
    if shutil.which("c++") or shutil.which("g++"):
        assert any(name.startswith("backends/cuda/_snnsim_host") for name in names)


def test_snnsim_command_runs_outside_the_source_tree(installed):
    bin_dir, env, work, _, _ = installed
    # the package, the default calibration and a shipped config's relative calibration
    # path all resolve inside the install, not in the checkout
    where = _run([str(bin_dir / "python"), "-c", (
        "import snnsim; from calibration import default_calibration_path, load_calibration; "
        "from hw import HardwareConfig; "
        "from snnsim.config import load_config; from snnsim.resources import find_config; "
        "path = find_config('yin_yang_bss2.yaml'); config = load_config(path); "
        "hw = HardwareConfig.from_dict(config['hardware'], base_dir=path.parent); "
        "load_calibration(hw.calibration); "
        "print(snnsim.__file__, default_calibration_path(), hw.calibration, sep='\\n')")],
        work, env).split()
    assert len(where) == 3
    for path in where:
        assert Path(path).is_relative_to(bin_dir.parent), path
    assert Path(where[2]).name == "mock_chip_a.h5"
    help_text = _run([str(bin_dir / "snnsim"), "--help"], work, env)
    assert help_text.startswith("usage: snnsim")
    for command in ("train", "inference", "eval", "continue", "sweep"):
        assert command in help_text

    out = _run([str(bin_dir / "snnsim"), "--threads", "1", "train",
                "experiment_configs/yin_yang_small.yaml", "--epochs", "1", "--output", "run",
                "--quiet", "--no-plots"], work, env)
    assert "test accuracy:" in out and (work / "run" / "checkpoints" / "epoch_0001.h5").is_file()
    out = _run([str(bin_dir / "snnsim"), "inference", "run"], work, env)
    assert out.startswith("accuracy: ")
    out = _run([str(bin_dir / "snnsim"), "inference", "experiment_pretrained/yin_yang"], work,
               env)
    assert out.startswith(PRETRAINED_ACCURACY)
