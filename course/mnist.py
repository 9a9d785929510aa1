"""MNIST, for those who want the bigger data set on their own machine: downloaded once,
checked against its published checksums, read from the IDX format.

No notebook of the course needs it (they use scikit-learn's bundled 8x8 digits, see
`course.data.load_digits`), and nothing downloads it at run time unless asked.
"""

import gzip
import hashlib
import http.client
import shutil
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
"""Base URLs tried in order by `load_mnist`."""

MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
"""The four MNIST files and their published MD5 checksums."""

# Element types of the IDX format, by the third byte of the magic number; big-endian.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path) -> np.ndarray:
    """Read an array from a file in the IDX format of MNIST, gzipped or not.

    The magic number at the start of the file gives the element type (its third byte)
    and the number of dimensions (its fourth byte); the sizes of the dimensions follow
    as big-endian 32-bit integers, then the data.

    Parameters
    ----------
    path : str or Path
        An IDX file, e.g. ``train-images-idx3-ubyte`` or ``train-images-idx3-ubyte.gz``.

    Returns
    -------
    array of the shape and element type stated in the file, in native byte order:
    (60000, 28, 28) uint8 for the MNIST training images, (60000,) uint8 for their labels.
    """
    path = Path(path)
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if gzipped else open(path, "rb") as f:
        content = f.read()
    if len(content) < 4 or content[0] != 0 or content[1] != 0 or content[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (magic number {content[:4].hex()})")
    dtype = _IDX_DTYPES[content[2]]
    ndim = content[3]
    header = 4 + 4 * ndim
    shape = tuple(int(n) for n in np.frombuffer(content, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(content) - header != expected:
        raise ValueError(
            f"{path} is truncated or corrupt: shape {shape} needs {expected} bytes of data, "
            f"the file has {len(content) - header}"
        )
    data = np.frombuffer(content, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, destination: Path, timeout: float = 60.0) -> None:
    """Copy `url` (one of the https MNIST_MIRRORS) to the file `destination`."""
    if not url.startswith("https://"):
        raise ValueError(f"not an https URL: {url!r}")
    response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (https, checked above)
    with response, open(destination, "wb") as f:
        shutil.copyfileobj(response, f)


def _fetch_verified(name: str, md5: str, destination: Path) -> None:
    # Download to a temporary file in the same folder and rename it only when the checksum
    # matches, so an interrupted download never leaves a half file under the real name.
    problems = []
    for mirror in MNIST_MIRRORS:
        url = mirror + name
        with tempfile.NamedTemporaryFile(dir=destination.parent, suffix=".part", delete=False) as t:
            partial = Path(t.name)
        try:
            _download(url, partial)
            actual = _md5(partial)
            if actual == md5:
                partial.replace(destination)
                return
            problems.append(f"{url}: checksum mismatch (MD5 {actual}, expected {md5})")
        except (OSError, http.client.HTTPException) as error:
            problems.append(f"{url}: {error}")
        finally:
            partial.unlink(missing_ok=True)
    raise RuntimeError(
        f"could not download {name} with a correct checksum:\n  "
        + "\n  ".join(problems)
        + f"\nCheck your internet connection, or download the file yourself from one of "
        f"these addresses into {destination.parent} and call load_mnist again."
    )


def load_mnist(root, *, download: bool = True, flatten: bool = True):
    """The MNIST handwritten digits (28x28 pixels), downloaded once into `root`.

    The four files of `MNIST_FILES` are looked for in `root`; missing ones are
    downloaded from the first of `MNIST_MIRRORS` that works, and every file is checked
    against its published MD5 checksum. No notebook of the course needs MNIST: it is an
    option for those who want the bigger data set on their own machine.

    Parameters
    ----------
    root : str or Path
        Folder for the files; created if needed.
    download : bool
        Whether to download missing files. With False, missing files raise
        FileNotFoundError.
    flatten : bool
        Whether to return each image as a 784-vector (like `load_digits`) instead of
        a 28x28 array.

    Returns
    -------
    X_train : (60000, 784) float32 array, or (60000, 28, 28) when not `flatten`
        Pixel intensities in [0, 1].
    X_test : (10000, 784) float32 array, or (10000, 28, 28)
    y_train : (60000,) int64 array of digits 0-9
    y_test : (10000,) int64 array

    Raises
    ------
    FileNotFoundError
        When files are missing and `download` is False.
    RuntimeError
        When a download fails, or a file has the wrong checksum on every mirror.
    ValueError
        When a file already in `root` has the wrong checksum.
    """
    root = Path(root)
    missing = [name for name in MNIST_FILES if not (root / name).exists()]
    if missing and not download:
        raise FileNotFoundError(
            f"MNIST files missing in {root}: {', '.join(missing)}. Call load_mnist with "
            f"download=True, or copy them there from {MNIST_MIRRORS[0]}"
        )
    root.mkdir(parents=True, exist_ok=True)
    for name in missing:
        _fetch_verified(name, MNIST_FILES[name], root / name)
    for name, md5 in MNIST_FILES.items():
        if name not in missing and _md5(root / name) != md5:
            raise ValueError(
                f"{root / name} is corrupt or incomplete (its MD5 checksum is not {md5}): "
                "delete it and call load_mnist again to download it anew"
            )

    def images(name):
        X = read_idx(root / name).astype(np.float32) / 255.0
        return X.reshape(len(X), -1) if flatten else X

    def labels(name):
        return read_idx(root / name).astype(np.int64)

    return (
        images("train-images-idx3-ubyte.gz"),
        images("t10k-images-idx3-ubyte.gz"),
        labels("train-labels-idx1-ubyte.gz"),
        labels("t10k-labels-idx1-ubyte.gz"),
    )
