"""Tests of course/mnist.py, the optional MNIST download. None of them uses the network."""

import gzip
import hashlib

import numpy as np
import pytest

from course import mnist
from course.mnist import load_mnist, read_idx


def _idx_bytes(array: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize(
    ("dtype", "code"),
    [("u1", 0x08), ("i1", 0x09), ("i2", 0x0B), ("i4", 0x0C), ("f4", 0x0D), ("f8", 0x0E)],
)
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_raw_and_gzipped(tmp_path, dtype, code, compress):
    array = (np.arange(24).reshape(2, 3, 4) * (-1 if dtype[0] in "if" else 1)).astype(dtype)
    content = _idx_bytes(array, code)
    path = tmp_path / ("data.idx.gz" if compress else "data.idx")
    path.write_bytes(gzip.compress(content) if compress else content)
    result = read_idx(path)
    assert result.shape == (2, 3, 4) and result.dtype == np.dtype(dtype)
    assert result.dtype.isnative
    np.testing.assert_array_equal(result, array)


def test_read_idx_of_labels_and_bad_files(tmp_path):
    labels = np.array([5, 0, 4, 1, 9], dtype=np.uint8)
    (tmp_path / "labels").write_bytes(_idx_bytes(labels, 0x08))
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), labels)
    (tmp_path / "bad").write_bytes(b"\x12\x34\x56\x78" + bytes(8))
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(_idx_bytes(labels, 0x08)[:-1])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short")


def test_load_mnist_without_files_and_without_download_names_them(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_mnist(tmp_path / "mnist", download=False)
    message = str(error.value)
    for name in mnist.MNIST_FILES:
        assert name in message
    assert "download=True" in message


def _fake_mnist(monkeypatch, *, corrupt=()):
    """Serve tiny valid MNIST files from a fake downloader, with their checksums."""
    files = {
        "train-images-idx3-ubyte.gz": _idx_bytes(np.full((3, 28, 28), 255, np.uint8), 0x08),
        "train-labels-idx1-ubyte.gz": _idx_bytes(np.array([1, 2, 3], np.uint8), 0x08),
        "t10k-images-idx3-ubyte.gz": _idx_bytes(np.zeros((2, 28, 28), np.uint8), 0x08),
        "t10k-labels-idx1-ubyte.gz": _idx_bytes(np.array([7, 8], np.uint8), 0x08),
    }
    files = {name: gzip.compress(content, mtime=0) for name, content in files.items()}
    md5s = {
        name: hashlib.md5(content, usedforsecurity=False).hexdigest()
        for name, content in files.items()
    }
    monkeypatch.setattr(mnist, "MNIST_FILES", md5s)
    requests = []

    def fake_download(url, destination, timeout=60.0):
        requests.append(url)
        name = url.rsplit("/", 1)[1]
        destination.write_bytes(b"garbage" if name in corrupt else files[name])

    monkeypatch.setattr(mnist, "_download", fake_download)
    return requests


def test_load_mnist_downloads_verifies_and_reads(tmp_path, monkeypatch):
    requests = _fake_mnist(monkeypatch)
    X_train, X_test, y_train, y_test = load_mnist(tmp_path / "mnist")
    assert len(requests) == 4 and all(url.startswith(mnist.MNIST_MIRRORS[0]) for url in requests)
    assert X_train.shape == (3, 784) and X_train.dtype == np.float32 and X_train.max() == 1.0
    assert X_test.shape == (2, 784) and X_test.max() == 0.0
    np.testing.assert_array_equal(y_train, [1, 2, 3])
    assert y_test.dtype == np.int64
    # A second call finds the files and downloads nothing.
    assert load_mnist(tmp_path / "mnist", download=False, flatten=False)[0].shape == (3, 28, 28)
    assert len(requests) == 4
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(mnist.MNIST_FILES)


def test_load_mnist_rejects_a_corrupt_download(tmp_path, monkeypatch):
    requests = _fake_mnist(monkeypatch, corrupt={"train-labels-idx1-ubyte.gz"})
    with pytest.raises(RuntimeError) as error:
        load_mnist(tmp_path)
    message = str(error.value)
    assert "train-labels-idx1-ubyte.gz" in message and "checksum mismatch" in message
    assert "internet connection" in message
    # Every mirror was tried, and no corrupt or partial file is left behind.
    assert sum("train-labels" in url for url in requests) == len(mnist.MNIST_MIRRORS)
    assert not (tmp_path / "train-labels-idx1-ubyte.gz").exists()
    assert not list(tmp_path.glob("*.part"))


def test_load_mnist_rejects_a_corrupt_file_on_disk(tmp_path, monkeypatch):
    _fake_mnist(monkeypatch)
    load_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"truncated")
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz is corrupt.*delete it"):
        load_mnist(tmp_path, download=False)


def test_load_mnist_offline_error_names_the_fix(tmp_path, monkeypatch):
    _fake_mnist(monkeypatch)

    def offline(url, destination, timeout=60.0):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(mnist, "_download", offline)
    with pytest.raises(RuntimeError, match="(?s)could not download.*name resolution.*connection"):
        load_mnist(tmp_path)
