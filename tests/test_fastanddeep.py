"""Tests of the safe reader for networks saved by the published fastAndDeep code."""

from __future__ import annotations

import collections
import io
import os
import pickle
import pickletools
import re
import shutil
import subprocess
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from snnsim.fastanddeep import (
    LEGACY_MAGIC_NUMBER,
    LEGACY_PROTOCOL_VERSION,
    ForbiddenGlobalError,
    PickledObject,
    PublishedNetwork,
    load_published_network,
    read_legacy_torch_file,
)

SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"long": 4}}


@pytest.fixture(scope="session")
def yinyang_dir(shared_data: Path) -> Path:
    return shared_data / "fastanddeep" / "yinyang_et_300epochs"


@pytest.fixture(scope="session")
def yinyang_file(yinyang_dir: Path) -> Path:
    return yinyang_dir / "yin_yang_network.pt"


def legacy_file(main: bytes, keys: list[str] | None = None, sys_info: dict = SYS_INFO) -> bytes:
    """A legacy torch file around an already pickled main object."""
    header = b"".join(
        pickle.dumps(part, protocol=2)
        for part in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION, sys_info)
    )
    return header + main + pickle.dumps(keys or [], protocol=2)


def torch_legacy_save(obj: object, path: Path) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=False)
    return path


@pytest.fixture
def fake_published_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importable stand-ins for the published ``training`` and ``utils`` modules."""
    for module_name, class_name in (("training", "Net"), ("utils", "EqualtimeLayer")):
        module = types.ModuleType(module_name)
        cls = type(class_name, (torch.nn.Module,), {"__module__": module_name})
        setattr(module, class_name, cls)
        monkeypatch.setitem(sys.modules, module_name, module)


def torch_oracle(path: Path) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the embedded class sources differ from the stubs
        return torch.load(path, map_location="cpu", weights_only=False)


def assert_same_tree(ours: object, theirs: object) -> None:
    """Our tree equals torch's, with tensors as arrays and modules as records."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, np.ndarray)
        expected = theirs.detach().numpy()
        assert ours.dtype == expected.dtype and ours.shape == expected.shape
        np.testing.assert_array_equal(ours, expected)
    elif isinstance(theirs, torch.nn.Module):
        assert isinstance(ours, PickledObject)
        cls = type(theirs)
        assert ours.qualified_name == f"{cls.__module__}.{cls.__name__}"
        assert_same_tree(ours.state["_parameters"], theirs._parameters)
        assert_same_tree(ours.state["_modules"], theirs._modules)
        for name, value in vars(theirs).items():
            if not name.startswith("_"):
                assert_same_tree(ours.state[name], value)
    elif isinstance(theirs, dict):
        assert type(ours) is type(theirs) and list(ours) == list(theirs)
        for key in theirs:
            assert_same_tree(ours[key], theirs[key])
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            assert_same_tree(a, b)
    elif isinstance(theirs, torch.dtype):
        assert ours == np.dtype(str(theirs).removeprefix("torch."))
    elif isinstance(theirs, torch.device):
        assert ours == str(theirs)
    else:
        assert type(ours) is type(theirs)
        assert np.array_equal(ours, theirs) if isinstance(theirs, np.ndarray) else ours == theirs


# --- the published Yin-Yang network ---------------------------------------------------------


def test_published_yinyang_network(yinyang_dir: Path) -> None:
    net = load_published_network(yinyang_dir)
    assert isinstance(net, PublishedNetwork)
    assert net.config == yaml.safe_load((yinyang_dir / "config.yaml").read_text())
    assert [w.shape for w in net.weights] == [(4 + 1, 120), (120 + 1, 3)]
    assert all(w.dtype == np.float64 and np.isfinite(w).all() for w in net.weights)
    attrs = net.attributes
    assert attrs["n_inputs"] == 4 and attrs["n_layers"] == 2
    assert attrs["layer_sizes"] == [120, 3] and attrs["n_biases"] == [1, 1]
    assert attrs["bias_times"] == [[0.9], [0.9]]
    assert [b.tolist() for b in attrs["biases"]] == [[0.9], [0.9]]
    assert attrs["sim_params"]["tau_syn"] == 1.0 and attrs["rounding"] is False
    assert not any(name.startswith("_") for name in attrs)


def test_published_tree_and_embedded_source(yinyang_file: Path) -> None:
    tree = read_legacy_torch_file(yinyang_file)
    assert isinstance(tree, PickledObject) and tree.qualified_name == "training.Net"
    layer_list = tree.state["_modules"]["layers"]
    assert layer_list.qualified_name == "torch.nn.modules.container.ModuleList"
    layers = list(layer_list.state["_modules"].values())
    assert [layer.qualified_name for layer in layers] == ["utils.EqualtimeLayer"] * 2
    assert [(layer.state["input_features"], layer.state["bias"]) for layer in layers] == [
        (4, 1),
        (120, 1),
    ]
    # The embedded source confirms the layout: bias times are appended after the inputs,
    # and the weights have input_features + bias rows.
    assert type(tree).source_file.endswith("training.py")
    assert "torch.cat(\n                    (input_times,\n                     self.biases[i]" in (
        type(tree).source
    )
    assert "torch.Tensor(input_features + bias, output_features)" in type(layers[0]).source


def test_published_weights_match_torch_load(
    yinyang_file: Path, fake_published_modules: None
) -> None:
    assert_same_tree(read_legacy_torch_file(yinyang_file), torch_oracle(yinyang_file))


def test_reading_imports_nothing(yinyang_file: Path) -> None:
    before = set(sys.modules)
    read_legacy_torch_file(yinyang_file)
    assert set(sys.modules) == before
    assert "training" not in sys.modules and "utils" not in sys.modules


def test_big_endian_file(yinyang_file: Path, tmp_path: Path) -> None:
    content = yinyang_file.read_bytes()
    stream = io.BytesIO(content)
    for _ in range(3):
        pickle.load(stream)  # plain header data
    main_start = stream.tell()
    stop = next(pos for op, _, pos in pickletools.genops(stream) if op.name == "STOP")
    stream.seek(stop + 1)
    keys = pickle.load(stream)
    rest = stream.read()
    swapped = b""
    for _ in keys:  # every storage of this file holds float64
        count = int.from_bytes(rest[:8], "little")
        data = np.frombuffer(rest[8 : 8 + 8 * count], dtype="<f8")
        swapped += count.to_bytes(8, "big") + data.astype(">f8").tobytes()
        rest = rest[8 + 8 * count :]
    big = dict(SYS_INFO, little_endian=False)
    path = tmp_path / "big_endian.pt"
    path.write_bytes(legacy_file(content[main_start : stop + 1], keys, big) + swapped)
    ours = read_legacy_torch_file(path).state["_modules"]["layers"].state["_modules"]
    expected = read_legacy_torch_file(yinyang_file).state["_modules"]["layers"].state["_modules"]
    for key in expected:
        np.testing.assert_array_equal(
            ours[key].state["_parameters"]["weights"],
            expected[key].state["_parameters"]["weights"],
        )


# --- files written by torch's own legacy writer ---------------------------------------------


def test_round_trip_of_torch_legacy_save(tmp_path: Path) -> None:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    linear = torch.nn.Linear(3, 2).double()
    obj = collections.OrderedDict(
        base=base,
        transposed_view=base[1:, 2:5].t(),
        row=base[2],
        expanded=torch.tensor([1.5, 2.5]).expand(3, 2),
        long=torch.tensor([[-(2**40), 7]]),
        half=torch.tensor([0.5, -1.25], dtype=torch.float16),
        flags=torch.tensor([True, False, True]),
        complex=torch.tensor([1 + 2j], dtype=torch.complex128),
        scalar=torch.tensor(3.5, dtype=torch.float64),
        empty=torch.zeros(0, 3),
        parameter=torch.nn.Parameter(torch.ones(2, 2, dtype=torch.float64)),
        module=linear,
        dtype=torch.float16,
        device=torch.device("cpu"),
        blob=b"\x00\xffab",
        numbers=[1, 2.5, None, "text", (True, False)],
        ndarray=np.array([[0.9, 1.0]]),
        np_scalar=np.float64(0.25),
    )
    path = torch_legacy_save(obj, tmp_path / "mixed.pt")
    ours = read_legacy_torch_file(path)
    assert_same_tree(ours, torch_oracle(path))
    assert ours["module"].qualified_name == "torch.nn.modules.linear.Linear"
    assert "class Linear(Module)" in type(ours["module"]).source
    # Tensors that shared a storage in torch share memory here too.
    assert np.shares_memory(ours["base"], ours["transposed_view"])
    assert not np.shares_memory(ours["base"], ours["long"])


def test_sets_are_plain_data(tmp_path: Path) -> None:
    path = torch_legacy_save({"ids": {1, 2}, "frozen": frozenset({"a"})}, tmp_path / "s.pt")
    assert read_legacy_torch_file(path) == {"ids": {1, 2}, "frozen": frozenset({"a"})}


# --- malformed files ------------------------------------------------------------------------


def test_missing_folder_and_files(yinyang_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_published_network(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=r"no \*_network.pt"):
        load_published_network(tmp_path)
    shutil.copy(yinyang_dir / "yin_yang_network.pt", tmp_path)
    with pytest.raises(FileNotFoundError, match=re.escape("config.yaml")):
        load_published_network(tmp_path)
    with pytest.raises(FileNotFoundError, match=re.escape("absent.pt")):
        read_legacy_torch_file(tmp_path / "absent.pt")


def test_more_than_one_candidate(yinyang_dir: Path, tmp_path: Path) -> None:
    for name in ("config.yaml", "yin_yang_network.pt"):
        shutil.copy(yinyang_dir / name, tmp_path)
    shutil.copy(yinyang_dir / "yin_yang_network.pt", tmp_path / "other_network.pt")
    with pytest.raises(ValueError, match=re.escape("other_network.pt, yin_yang_network.pt")):
        load_published_network(tmp_path)


def test_config_that_does_not_fit_the_weights(yinyang_dir: Path, tmp_path: Path) -> None:
    shutil.copy(yinyang_dir / "yin_yang_network.pt", tmp_path)
    config = yaml.safe_load((yinyang_dir / "config.yaml").read_text())
    config["network_layout"]["layer_sizes"] = [100, 3]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="do not match the network_layout"):
        load_published_network(tmp_path)


@pytest.mark.parametrize("cut", [0, 3, 40, 140, 5000, 19100, 22030, 23120, 23150, 23200, -1])
def test_truncated_file(yinyang_file: Path, tmp_path: Path, cut: int) -> None:
    content = yinyang_file.read_bytes()
    path = tmp_path / "truncated_network.pt"
    path.write_bytes(content[:cut])
    with pytest.raises(ValueError, match=r"truncated_network\.pt: .*truncated"):
        read_legacy_torch_file(path)


def test_wrong_storage_count(yinyang_file: Path, tmp_path: Path) -> None:
    content = bytearray(yinyang_file.read_bytes())
    content[23196] += 1  # element count of the first storage
    path = tmp_path / "bad_count.pt"
    path.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="holds 2 elements, the pickle declared 1"):
        read_legacy_torch_file(path)


@pytest.mark.parametrize(
    ("original", "forged", "message"),
    [
        # weights of layer 0 declared (6, 120): would read past its storage of 600 elements
        (b"K\x00K\x05Kx\x86", b"K\x00K\x06Kx\x86", "reaches element 719 of a storage of 600"),
        # storage of layer 0 declared with 65535 float64: more than the whole file
        (b"M\x58\x02N", b"M\xff\xffN", "claims 65535 elements, more than the file can hold"),
    ],
)
def test_forged_tensor_geometry(
    yinyang_file: Path, tmp_path: Path, original: bytes, forged: bytes, message: str
) -> None:
    content = yinyang_file.read_bytes()
    assert content.count(original) == 1
    path = tmp_path / "forged.pt"
    path.write_bytes(content.replace(original, forged))
    with pytest.raises(ValueError, match=message):
        read_legacy_torch_file(path)


def test_not_a_torch_file(yinyang_dir: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps({"weights": [1.0]}, protocol=2))
    for path in (yinyang_dir / "config.yaml", plain):
        with pytest.raises(ValueError, match="not a readable legacy torch file"):
            read_legacy_torch_file(path)


def test_zip_format_file(tmp_path: Path) -> None:
    path = tmp_path / "zip_network.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(ValueError, match=r"zip_network\.pt.*zip-format"):
        read_legacy_torch_file(path)


# --- malicious files ------------------------------------------------------------------------


class Payload:
    """Pickles as a call of ``func(*args)``."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return self.func, self.args


def malicious_payloads(marker: Path) -> dict[str, Payload]:
    return {
        "system": Payload(os.system, f"touch {marker}"),
        "eval": Payload(eval, f"open({str(marker)!r}, 'w')"),
        "exec": Payload(exec, f"open({str(marker)!r}, 'w')"),
        "Popen": Payload(subprocess.Popen, ["touch", str(marker)]),
        "copyfile": Payload(shutil.copyfile, __file__, marker),
    }


@pytest.mark.parametrize("name", ["system", "eval", "exec", "Popen", "copyfile"])
@pytest.mark.parametrize("where", ["main", "nested", "header"])
def test_malicious_pickle_is_refused(tmp_path: Path, name: str, where: str) -> None:
    marker = tmp_path / "pwned"
    payload = malicious_payloads(marker)[name]
    if where == "header":
        content = pickle.dumps(payload, protocol=2)
    elif where == "nested":
        content = legacy_file(pickle.dumps({"layers": [1.0, {"w": payload}]}, protocol=2))
    else:
        content = legacy_file(pickle.dumps(payload, protocol=2))
    path = tmp_path / "evil_network.pt"
    path.write_bytes(content)
    with pytest.raises(pickle.UnpicklingError, match=f"refusing to load global .*{name}") as err:
        read_legacy_torch_file(path)
    assert isinstance(err.value, ForbiddenGlobalError)
    assert "evil_network.pt" in str(err.value)
    assert not marker.exists()


def test_payload_inside_published_network(yinyang_dir: Path, tmp_path: Path) -> None:
    # The real file with one attribute replaced by a call of os.system.
    marker = tmp_path / "pwned"
    content = (yinyang_dir / "yin_yang_network.pt").read_bytes()
    evil = pickle.dumps(Payload(os.system, f"touch {marker}"), protocol=2)[2:-1]
    original = b"\x89X\x08\x00\x00\x00roundingq"  # False, then the key 'rounding'
    assert content.count(original) == 1
    content = content.replace(original, evil + original[1:])
    for name in ("config.yaml",):
        shutil.copy(yinyang_dir / name, tmp_path)
    (tmp_path / "yin_yang_network.pt").write_bytes(content)
    with pytest.raises(ForbiddenGlobalError, match="system"):
        load_published_network(tmp_path)
    assert not marker.exists()


def test_published_classes_stay_inert(tmp_path: Path) -> None:
    # A training.* global is a record even when the pickle calls it: nothing runs.
    payload = Payload(types.SimpleNamespace, "args")
    content = pickle.dumps(payload, protocol=2).replace(
        b"ctypes\nSimpleNamespace\n", b"ctraining\nNet\n"
    )
    path = tmp_path / "record.pt"
    path.write_bytes(legacy_file(content))
    record = read_legacy_torch_file(path)
    assert isinstance(record, PickledObject)
    assert record.qualified_name == "training.Net" and record.args == ("args",)
