"""Safe reader for networks saved by the published fastAndDeep code.

The published code (Göltz et al. 2021) stored a trained network with ``torch.save(net)``:
the whole ``training.Net`` object, pickled in torch's *legacy* (pre-1.6, non-zip) format.
Such a file is a concatenation of

1. a pickled magic number (``LEGACY_MAGIC_NUMBER``),
2. a pickled protocol version (``LEGACY_PROTOCOL_VERSION``),
3. a pickled ``sys_info`` dict (byte order, C type sizes),
4. the pickled object itself. A tensor appears as a call of
   ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``; the storage is a
   *persistent id* ``('storage', torch.DoubleStorage, key, location, numel, view)``.
   A ``torch.nn.Module`` class appears as the persistent id
   ``('module', cls, source_file, source)``, so the file embeds the source of every
   module class it holds,
5. a pickled list of storage keys,
6. for each key in that order: the element count as an 8-byte integer, then the raw elements,
   both in the byte order named by ``sys_info``.

Unpickling such a file with ``pickle`` or ``torch.load`` imports and calls whatever globals
the file names, so a crafted file can run any code. This reader never does: its unpicklers
resolve globals only from an explicit whitelist of harmless callables (containers, the
reader's own tensor and storage reconstruction, numpy's array state), replace the classes of
the published code and of ``torch.nn`` by inert records (``PickledObject``) that only keep
their pickled state, and refuse every other global with ``ForbiddenGlobalError`` before
anything is called. Nothing is imported, and storage bytes are only ever copied into numpy
arrays whose bounds are checked. Storages are read as CPU arrays whatever device they were
saved from.
"""

from __future__ import annotations

import collections
import io
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from snnsim.config import read_yaml_mapping

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

# Module prefixes whose classes become inert records: the published code's own modules and
# torch.nn (ModuleList and friends).
_RECORD_MODULES = ("training", "utils", "torch.nn.modules")

_STORAGE_DTYPES = {
    "DoubleStorage": np.dtype(np.float64),
    "FloatStorage": np.dtype(np.float32),
    "HalfStorage": np.dtype(np.float16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
    "ComplexDoubleStorage": np.dtype(np.complex128),
    "ComplexFloatStorage": np.dtype(np.complex64),
}

_TORCH_DTYPES = {
    "float64": np.dtype(np.float64),
    "float32": np.dtype(np.float32),
    "float16": np.dtype(np.float16),
    "int64": np.dtype(np.int64),
    "int32": np.dtype(np.int32),
    "int16": np.dtype(np.int16),
    "int8": np.dtype(np.int8),
    "uint8": np.dtype(np.uint8),
    "bool": np.dtype(np.bool_),
    "complex128": np.dtype(np.complex128),
    "complex64": np.dtype(np.complex64),
}

_HOW_TO_SAVE_LEGACY = (
    "the legacy format written by torch < 1.6 or by "
    "torch.save(..., _use_new_zipfile_serialization=False)"
)


class ForbiddenGlobalError(pickle.UnpicklingError):
    """A pickle named a global that the reader refuses to resolve."""


class PickledObject:
    """Inert stand-in for an instance of a class the reader does not import.

    ``qualified_name`` is the class the file named (e.g. ``training.Net``); ``args`` holds
    the constructor arguments the pickle passed and ``state`` what it passed to
    ``__setstate__`` (for a ``torch.nn.Module``, its ``__dict__``: ``_parameters``,
    ``_modules`` and plain attributes). For module classes, ``source_file`` and ``source``
    hold the class source code that ``torch.save`` embedded in the file.
    """

    qualified_name: ClassVar[str] = ""
    source_file: ClassVar[str | None] = None
    source: ClassVar[str | None] = None
    # Defaults for instances made by NEWOBJ, which skips __init__.
    args: tuple = ()
    state: Any = None

    def __init__(self, *args: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<PickledObject {self.qualified_name}>"


@dataclass(frozen=True)
class PublishedNetwork:
    """Weights and settings of a network trained by the published fastAndDeep code."""

    config: dict
    """The published ``config.yaml``, parsed with ``yaml.safe_load``."""
    weights: list[np.ndarray]
    """float64, one per layer, shape [n_inputs_of_layer + n_biases_of_layer, layer_size];
    the bias rows come last, as the published forward pass appends the bias spikes after
    the layer's inputs."""
    attributes: dict
    """Plain attributes of the pickled ``Net`` (layer sizes, ``n_biases``, ``bias_times``,
    the bias spike times ``biases``, ``sim_params``, ...), for information."""


class _PlainUnpickler(pickle.Unpickler):
    """Unpickler for plain data: every global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise ForbiddenGlobalError(
            f"refusing to load global {module}.{name}: this part of the file may hold only "
            "plain Python data"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(f"unexpected persistent id {pid!r} in plain data")


@dataclass(frozen=True)
class _StorageType:
    """What a global such as ``torch.DoubleStorage`` resolves to: only its element type."""

    name: str
    dtype: np.dtype


def _rebuild_tensor(
    storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
) -> np.ndarray:
    """View of ``storage`` as torch describes a tensor, refusing any element out of bounds."""
    if not isinstance(storage, np.ndarray) or storage.ndim != 1:
        raise pickle.UnpicklingError(f"tensor storage must be a storage, got {type(storage)}")
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride) or offset < 0 or min(size + stride, default=0) < 0:
        raise pickle.UnpicklingError(
            f"invalid tensor geometry: offset {offset}, size {size}, stride {stride}"
        )
    if 0 in size:
        return np.empty(size, dtype=storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= storage.size:
        raise pickle.UnpicklingError(
            f"tensor with offset {offset}, size {size}, stride {stride} reaches element "
            f"{last} of a storage of {storage.size} elements"
        )
    return np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=[s * storage.itemsize for s in stride]
    )


def _rebuild_tensor_v2(
    storage: np.ndarray,
    offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool,
    backward_hooks: Any,
    metadata: Any = None,
) -> np.ndarray:
    return _rebuild_tensor(storage, offset, size, stride)


def _rebuild_parameter(
    data: np.ndarray, requires_grad: bool, backward_hooks: Any, state: Any = None
) -> np.ndarray:
    return data


def _device(kind: str, index: int | None = None) -> str:
    return str(kind) if index is None else f"{kind}:{index}"


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles store bytes as _codecs.encode(text, "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"unexpected _codecs.encode({text!r}, {encoding!r})")
    return text.encode("latin1")


def _numpy_reconstruct(subtype: type, shape: tuple[int, ...], typecode: Any) -> np.ndarray:
    # The pickle's BUILD step then calls numpy's own ndarray.__setstate__ to fill it.
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing numpy array subtype {subtype!r}")
    return np.ndarray(shape, dtype=typecode)


def _numpy_scalar(dtype: np.dtype, data: bytes) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise pickle.UnpicklingError(f"refusing numpy scalar of dtype {dtype!r}")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


_SAFE_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "frozenset"): frozenset,
    ("_codecs", "encode"): _latin1_encode,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "device"): _device,
    ("torch", "Size"): tuple,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}


def _ascii(value: Any) -> Any:
    # Files written under Python 2 carry bytes where Python 3 writes str.
    return value.decode("ascii") if isinstance(value, bytes) else value


class _NetworkUnpickler(_PlainUnpickler):
    """Unpickler for the saved object: whitelisted globals, inert records, numpy storages."""

    def __init__(self, file: io.BytesIO, max_nbytes: int) -> None:
        super().__init__(file)
        self._max_nbytes = max_nbytes
        self._record_classes: dict[str, type[PickledObject]] = {}
        self.storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[module, name]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        if module == "torch" and name in _TORCH_DTYPES:
            return _TORCH_DTYPES[name]
        if any(module == m or module.startswith(m + ".") for m in _RECORD_MODULES):
            return self._record_class(f"{module}.{name}")
        raise ForbiddenGlobalError(
            f"refusing to load global {module}.{name}: only tensors, plain containers and "
            f"classes of the modules {', '.join(_RECORD_MODULES)} (read as inert records) "
            "are allowed"
        )

    def _record_class(self, qualified_name: str) -> type[PickledObject]:
        if qualified_name not in self._record_classes:
            self._record_classes[qualified_name] = type(
                qualified_name.rpartition(".")[2],
                (PickledObject,),
                {"qualified_name": qualified_name, "__module__": __name__},
            )
        return self._record_classes[qualified_name]

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        kind = _ascii(pid[0])
        if kind == "module" and len(pid) == 4:
            cls, source_file, source = pid[1:]
            if not (isinstance(cls, type) and issubclass(cls, PickledObject)):
                raise pickle.UnpicklingError(f"module persistent id names {cls!r}")
            cls.source_file, cls.source = source_file, source
            return cls
        if kind == "storage" and len(pid) == 6:
            storage_type, key, _location, numel, view = pid[1:]
            return self._storage(storage_type, _ascii(key), numel, view)
        raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")

    def _storage(self, storage_type: Any, key: str, numel: int, view: Any) -> np.ndarray:
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"storage {key!r} has unknown type {storage_type!r}")
        if not isinstance(numel, int) or not 0 <= numel * storage_type.dtype.itemsize <= (
            self._max_nbytes
        ):
            raise pickle.UnpicklingError(
                f"storage {key!r} claims {numel} elements, more than the file can hold"
            )
        root = self.storages.get(key)
        if root is None:
            # Filled in place once the raw storage bytes after the pickle are read.
            root = self.storages[key] = np.zeros(numel, dtype=storage_type.dtype)
        elif root.dtype != storage_type.dtype or root.size != numel:
            raise pickle.UnpicklingError(f"storage {key!r} is declared twice, differently")
        if view is None:
            return root
        _view_key, offset, view_size = view
        if not 0 <= offset <= offset + view_size <= numel:
            raise pickle.UnpicklingError(
                f"storage view [{offset}, {offset + view_size}) outside storage {key!r} "
                f"of {numel} elements"
            )
        return root[offset : offset + view_size]


def _fill_storages(data: io.BytesIO, storages: dict[str, np.ndarray], byteorder: str) -> None:
    keys = [_ascii(key) for key in _PlainUnpickler(data).load()]
    missing = set(storages) - set(keys)
    if missing:
        raise ValueError(f"no data for storages {sorted(missing)} after the pickled object")
    for key in keys:
        if key not in storages:
            raise ValueError(f"data for storage {key!r}, which the pickled object never uses")
        storage = storages[key]
        header = data.read(8)
        nbytes = storage.size * storage.itemsize
        raw = data.read(nbytes)
        if len(header) < 8 or len(raw) < nbytes:
            raise ValueError(f"file ends inside the data of storage {key!r} (truncated?)")
        count = int.from_bytes(header, byteorder)
        if count != storage.size:
            raise ValueError(
                f"storage {key!r} holds {count} elements, the pickle declared {storage.size}"
            )
        file_dtype = storage.dtype.newbyteorder("<" if byteorder == "little" else ">")
        storage[:] = np.frombuffer(raw, dtype=file_dtype)


def _read_legacy(content: bytes) -> object:
    if content[:4] == b"PK\x03\x04":
        raise ValueError(
            "this is a zip-format torch file (the default since torch 1.6); expected "
            + _HOW_TO_SAVE_LEGACY
        )
    data = io.BytesIO(content)
    header = _PlainUnpickler(data)
    magic = header.load()
    if magic != LEGACY_MAGIC_NUMBER:
        raise ValueError(
            f"magic number {magic!r} is not {LEGACY_MAGIC_NUMBER:#x}; expected "
            f"{_HOW_TO_SAVE_LEGACY}"
        )
    protocol = header.load()
    if protocol != LEGACY_PROTOCOL_VERSION:
        raise ValueError(f"protocol version {protocol!r}, expected {LEGACY_PROTOCOL_VERSION}")
    sys_info = header.load()
    if not isinstance(sys_info, dict):
        raise TypeError(f"sys_info is {type(sys_info).__name__}, expected a dict")
    byteorder = "little" if sys_info.get("little_endian", True) else "big"
    unpickler = _NetworkUnpickler(data, max_nbytes=len(content))
    result = unpickler.load()
    _fill_storages(data, unpickler.storages, byteorder)
    return result


def read_legacy_torch_file(path: str | Path) -> object:
    """Object tree of a legacy-format ``torch.save`` file, read without running its code.

    Tensors and parameters become numpy arrays (tensors that shared a storage in torch share
    memory here too); ``torch.nn`` and fastAndDeep classes become ``PickledObject`` records.
    Raises ``FileNotFoundError`` for a missing file, ``ForbiddenGlobalError`` (a
    ``pickle.UnpicklingError``) when the file names any other global, and ``ValueError`` for
    a file that is not, or not all of, a legacy torch file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; expected a file saved by torch.save")
    try:
        return _read_legacy(path.read_bytes())
    except ForbiddenGlobalError as err:
        raise ForbiddenGlobalError(f"{path}: {err}") from None
    except EOFError as err:
        raise ValueError(f"{path}: file ends early (truncated?): {err}") from err
    except (
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        OverflowError,
    ) as err:
        raise ValueError(f"{path}: not a readable legacy torch file: {err}") from err


def _is_plain(value: Any) -> bool:
    if isinstance(value, (bool, int, float, str, bytes, type(None), np.ndarray, np.generic)):
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(_is_plain(item) for item in value)
    if isinstance(value, dict):
        return all(_is_plain(k) and _is_plain(v) for k, v in value.items())
    return False


def _module_state(obj: Any, what: str, path: Path) -> dict:
    """The pickled ``__dict__`` of a module record, with its sub-dicts checked."""
    state = obj.state if isinstance(obj, PickledObject) else None
    if not isinstance(state, dict) or not all(
        isinstance(state.get(part, {}), dict) for part in ("_modules", "_parameters")
    ):
        raise ValueError(f"{path}: {what} is {obj!r}, expected a pickled torch.nn.Module")
    return state


def _network_contents(net: Any, path: Path) -> tuple[list[np.ndarray], dict]:
    """Per-layer weights and plain attributes of a pickled ``training.Net``."""
    state = _module_state(net, "the saved object", path)
    layer_list = state.get("_modules", {}).get("layers")
    layers = _module_state(layer_list, "Net attribute 'layers'", path).get("_modules", {})
    if not layers:
        raise ValueError(f"{path}: the saved Net has no layers in its 'layers' ModuleList")
    weights = []
    n_in = state.get("n_inputs")
    for key in sorted(layers, key=int):
        layer = _module_state(layers[key], f"layer {key}", path)
        w = layer.get("_parameters", {}).get("weights")
        if not isinstance(w, np.ndarray) or w.ndim != 2:
            raise ValueError(f"{path}: layer {key} has no 2-d parameter 'weights'")
        n_bias = layer.get("bias", 0)
        if n_in is not None and w.shape[0] != n_in + n_bias:
            raise ValueError(
                f"{path}: layer {key} weights have shape {w.shape}, expected "
                f"{n_in} inputs + {n_bias} biases = {n_in + n_bias} rows"
            )
        weights.append(np.array(w, dtype=np.float64))
        n_in = w.shape[1]
    attributes = {
        name: value
        for name, value in state.items()
        if not name.startswith("_") and name != "training" and _is_plain(value)
    }
    return weights, attributes


def _check_layout(weights: list[np.ndarray], config: dict, net_path: Path, config_path: Path):
    layout = config.get("network_layout") or {}
    if not {"n_inputs", "layer_sizes", "n_biases"} <= layout.keys():
        return
    n_in = layout["n_inputs"]
    expected = []
    for size, n_bias in zip(layout["layer_sizes"], layout["n_biases"], strict=False):
        expected.append((n_in + n_bias, size))
        n_in = size
    found = [w.shape for w in weights]
    if found != expected:
        raise ValueError(
            f"{net_path}: weight shapes {found} do not match the network_layout of "
            f"{config_path}, which implies {expected}"
        )


def load_published_network(results_dir: str | Path) -> PublishedNetwork:
    """Weights and config of a results folder written by the published fastAndDeep code.

    The folder must hold ``config.yaml`` and exactly one ``*_network.pt``; the network file
    is read with ``read_legacy_torch_file``, so it runs no code.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(
            f"{results_dir}: no such folder; expected a fastAndDeep results folder holding "
            "config.yaml and one *_network.pt"
        )
    candidates = sorted(results_dir.glob("*_network.pt"))
    if not candidates:
        raise FileNotFoundError(f"{results_dir}: no *_network.pt file in this folder")
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise ValueError(f"{results_dir}: expected one *_network.pt file, found {names}")
    config_path = results_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: no such file; expected the run's config")
    config = read_yaml_mapping(config_path)
    net_path = candidates[0]
    weights, attributes = _network_contents(read_legacy_torch_file(net_path), net_path)
    _check_layout(weights, config, net_path, config_path)
    return PublishedNetwork(config=config, weights=weights, attributes=attributes)
