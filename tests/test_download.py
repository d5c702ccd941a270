"""snnsim.download against a local HTTP server (127.0.0.1, a thread of this process) that
serves the MNIST test files of tests/data: never the internet."""
from __future__ import annotations

import contextlib
import gzip
import http.server
import shutil
import socket
import threading
from pathlib import Path

import pytest

from snnsim import datasets, download
from snnsim.download import DownloadError, download_mnist

T10K = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@contextlib.contextmanager
def serve(folder: Path, truncate: bool = False):
    """(base URL, list of requested paths) of a server for `folder`; with `truncate` every
    response announces the file's full length but sends only half of it."""
    requested = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            requested.append(self.path)
            if not truncate:
                return super().do_GET()
            body = (folder / self.path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port_url() -> str:
    """A local URL on which nothing listens: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_downloads_checks_and_keeps_intact_files(shared_data: Path, tmp_path: Path):
    source = shared_data / "mnist"
    with serve(source) as (url, requested):
        paths = download_mnist(tmp_path, parts=("t10k",), base_url=url, progress=False)
        assert paths == [tmp_path / "mnist" / name for name in T10K]
        for path in paths:
            assert path.read_bytes() == (source / path.name).read_bytes()
        assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == list(T10K)  # no .tmp
        assert requested == ["/" + name for name in T10K]
        download_mnist(tmp_path, parts="t10k", base_url=url, progress=False)
        assert len(requested) == 2  # intact files are not fetched again
    data = datasets.load_dataset("mnist_t10k_split", "test", data_dir=tmp_path)
    assert len(data) == 2000


def test_progress_bar(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    with serve(shared_data / "mnist") as (url, _):
        download_mnist(tmp_path, parts=("t10k",), base_url=url, progress=True)
    err = capsys.readouterr().err
    assert "t10k-images-idx3-ubyte.gz" in err and "100%" in err


def test_checksum_mismatch_is_rejected(shared_data: Path, tmp_path: Path):
    """A file of the right structure and size, but one pixel changed."""
    served = tmp_path / "served"
    served.mkdir()
    raw = bytearray(gzip.decompress((shared_data / "mnist" / T10K[0]).read_bytes()))
    raw[1000] ^= 0xFF
    (served / T10K[0]).write_bytes(gzip.compress(bytes(raw), compresslevel=1))
    shutil.copy(shared_data / "mnist" / T10K[1], served / T10K[1])
    target = tmp_path / "data" / "mnist" / T10K[0]
    with serve(served) as (url, _), pytest.raises(DownloadError) as error:
        download_mnist(tmp_path / "data", parts=("t10k",), base_url=url, progress=False)
    message = str(error.value)
    assert f"{url}{T10K[0]}" in message and str(target) in message
    assert "SHA-256 mismatch" in message
    assert download.MNIST_FILES["t10k-images-idx3-ubyte"].sha256 in message
    assert not target.exists() and not target.with_name(target.name + ".tmp").exists()


def test_truncated_response_is_rejected(shared_data: Path, tmp_path: Path):
    with (serve(shared_data / "mnist", truncate=True) as (url, _),
          pytest.raises(DownloadError, match="truncated") as error):
        download_mnist(tmp_path, parts=("t10k",), base_url=url, progress=False)
    assert f"{url}{T10K[0]}" in str(error.value)
    assert not (tmp_path / "mnist").exists() or not any((tmp_path / "mnist").iterdir())


def test_truncated_file_is_rejected(shared_data: Path, tmp_path: Path):
    """A complete response of a file that was cut short on the server."""
    served = tmp_path / "served"
    served.mkdir()
    whole = (shared_data / "mnist" / T10K[0]).read_bytes()
    (served / T10K[0]).write_bytes(whole[:len(whole) // 3])
    with (serve(served) as (url, _),
          pytest.raises(DownloadError, match="not a complete gzip file")):
        download_mnist(tmp_path / "data", parts=("t10k",), base_url=url, progress=False)
    assert not (tmp_path / "data" / "mnist" / T10K[0]).exists()


def test_unreachable_server(tmp_path: Path):
    url = closed_port_url()
    with pytest.raises(DownloadError, match="cannot connect") as error:
        download_mnist(tmp_path, parts=("t10k",), base_url=url, progress=False, timeout=5)
    assert f"{url}{T10K[0]}" in str(error.value)


def test_mirrors_are_tried_in_turn(shared_data: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch):
    """Without base_url the default mirrors are used, the first that delivers."""
    with serve(shared_data / "mnist") as (url, requested):
        monkeypatch.setattr(download, "MNIST_MIRRORS", (closed_port_url(), url))
        download_mnist(tmp_path, parts=("t10k",), progress=False, timeout=5)
    assert requested == ["/" + name for name in T10K]


def test_damaged_file_present_is_replaced(shared_data: Path, tmp_path: Path):
    target = tmp_path / "mnist" / T10K[1]
    target.parent.mkdir()
    target.write_bytes(b"not mnist")
    with serve(shared_data / "mnist") as (url, _):
        download_mnist(tmp_path, parts=("t10k",), base_url=url, progress=False)
    assert target.read_bytes() == (shared_data / "mnist" / T10K[1]).read_bytes()


def test_the_train_files_are_checked_too(shared_data: Path, tmp_path: Path):
    """A mirror serving other files under the train names is rejected by shape."""
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(shared_data / "mnist" / T10K[0], served / "train-images-idx3-ubyte.gz")
    with (serve(served) as (url, _),
          pytest.raises(DownloadError, match=r"IDX shape \(10000, 28, 28\), expected "
                                             r"\(60000, 28, 28\)")):
        download_mnist(tmp_path / "data", parts=("train",), base_url=url, progress=False)


def test_bad_arguments(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown MNIST part"):
        download_mnist(tmp_path, parts=("test",))
    with pytest.raises(ValueError, match="base_url"):
        download_mnist(tmp_path, base_url=[])


def test_known_checksums_match_the_shipped_test_set(shared_data: Path):
    for name in T10K:
        download.check_mnist_file((shared_data / "mnist" / name).read_bytes(),
                                  name.removesuffix(".gz"))
    sizes = {name: f.size for name, f in download.MNIST_FILES.items()}
    assert sizes == {"train-images-idx3-ubyte": 47040016, "train-labels-idx1-ubyte": 60008,
                     "t10k-images-idx3-ubyte": 7840016, "t10k-labels-idx1-ubyte": 10008}


def test_download_through_the_command_line(shared_data: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture):
    """`train --download` with the config's mirror: fetched, checked, trained on."""
    import experiment

    config = tmp_path / "linear.yaml"
    config.write_text(
        "dataset: mnist_values\n"
        f"data: {{data_dir: {str(tmp_path / 'data')!r}, download_url: URL}}\n"
        "network_layout: {n_inputs: 784, layers: [{type: linear, size: 10, "
        "activation: identity}]}\n"
        "training_params: {epoch_number: 1, batch_size: 500}\n")
    with serve(shared_data / "mnist") as (url, requested):
        config.write_text(config.read_text().replace("URL", repr(url)))
        assert experiment.main(["train", str(config), "--output", str(tmp_path / "run"),
                                "--quiet", "--no-plots"]) == 1
        assert "--download" in capsys.readouterr().err  # the message says how to fetch
        assert experiment.main(["train", str(config), "--output", str(tmp_path / "run2"),
                                "--quiet", "--no-plots", "--download"]) == 0
    assert sorted(requested) == sorted("/" + name for name in T10K)
    assert "test accuracy" in capsys.readouterr().out
