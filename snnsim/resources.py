"""The files that ship with snnsim: the example configs and the pretrained network.

They lie in two data folders beside the `snnsim` package — in a checkout (the repository
root) and in an installed wheel (site-packages) alike, so one rule finds them in both:

    <root>/experiment_configs/*.yaml        shipped configs
    <root>/experiment_pretrained/<name>/    shipped results folders (pretrained networks)
    <root>/calibration/mock_chip_*.h5       the mock chips (the `calibration` package)

Because the layout is the same, the configs' relative calibration paths
(`../calibration/mock_chip_a.h5`) resolve in both as well.

`find_config` and `find_run` let the command line take a shipped file by name from any
working directory: a path that exists is used as it is; otherwise `yin_yang.yaml`,
`yin_yang` or `experiment_configs/yin_yang.yaml` name the shipped config, and
`experiment_pretrained/yin_yang` (or `yin_yang`) the shipped results folder.
"""
from __future__ import annotations

from pathlib import Path

CONFIGS_FOLDER = "experiment_configs"
PRETRAINED_FOLDER = "experiment_pretrained"


def root() -> Path:
    """The folder that holds `snnsim` and the shipped data folders (checkout or site-packages)."""
    return Path(__file__).resolve().parents[1]


def configs_dir() -> Path:
    return root() / CONFIGS_FOLDER


def pretrained_dir() -> Path:
    return root() / PRETRAINED_FOLDER


def shipped_configs() -> list[str]:
    """File names of the shipped configs, sorted."""
    return sorted(path.name for path in configs_dir().glob("*.yaml"))


def shipped_runs() -> list[str]:
    """Names of the shipped results folders (pretrained networks), sorted."""
    folder = pretrained_dir()
    return sorted(path.name for path in folder.iterdir() if path.is_dir()) \
        if folder.is_dir() else []


def find_config(path: str | Path) -> Path:
    """`path` if it is a file, else the shipped config it names (see the module docstring).

    Raises FileNotFoundError naming the path and the shipped configs.
    """
    path = Path(path)
    if path.is_file():
        return path
    name = _shipped_name(path, CONFIGS_FOLDER)
    if name is not None:
        for candidate in (name, f"{name}.yaml"):
            shipped = configs_dir() / candidate
            if shipped.is_file():
                return shipped
    raise FileNotFoundError(f"config {path} does not exist (nor is it a shipped config; "
                            f"shipped: {', '.join(shipped_configs()) or 'none'})")


def find_run(path: str | Path) -> Path:
    """`path` if it is a folder, else the shipped results folder it names.

    Raises FileNotFoundError naming the path and the shipped results folders.
    """
    path = Path(path)
    if path.is_dir():
        return path
    name = _shipped_name(path, PRETRAINED_FOLDER)
    if name is not None and (pretrained_dir() / name).is_dir():
        return pretrained_dir() / name
    raise FileNotFoundError(f"results folder {path} does not exist (nor is it a shipped run; "
                            f"shipped: {', '.join(shipped_runs()) or 'none'})")


def _shipped_name(path: Path, folder: str) -> str | None:
    """The shipped file name that `path` may stand for: `name` or `<folder>/name`."""
    parts = path.parts
    if len(parts) == 1 and not path.is_absolute():
        return parts[0]
    if len(parts) == 2 and parts[0] == folder:
        return parts[1]
    return None
