"""Test support for the real-dataset code: a local HTTP server with Range
requests and fault injection, and generators of tiny fixtures in each real
format (IDX gz, RAR and CSV, EMNIST zip, SD19 zip + md5 logs, DeepWriting npz
in tar.gz, manual class folders). Nothing here reaches outside 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import pickle
import struct
import tarfile
import threading
import wave
import zipfile
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image

from hwbench.datasets.registry import Payload, RemoteFile

# --------------------------------------------------------------------- server


class FixtureServer:
    """Serves ``files`` (path -> bytes) on 127.0.0.1 with HTTP Range support.

    ``faults[path]`` is a list consumed one request at a time: "drop:N" sends
    the headers and N bytes then closes the connection, "404" answers Not
    Found, "corrupt" serves other bytes of the same length, "norange" ignores
    a Range header. Hostile ones (issue 14), each bounded so a test ends in
    seconds: "grow" sends the file and then up to 4 MiB more without a
    Content-Length, "splice" answers a Range request with 206 but the whole file
    from byte 0 and no Content-Range, "trickle" sends one byte every 0.2 s (at
    most 100). Lying ranges (issue 25): "liar" answers a Range request with 206
    and a Content-Range claiming the requested offset, but the whole file from
    byte 0 with its Content-Length; "liar-close" does the same without a
    Content-Length (the body ends when the connection closes); "shifted" answers
    with the bytes and Content-Range of another offset (byte 0).
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list[str]] = {}
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append(
                    {
                        "path": self.path,
                        "range": self.headers.get("Range"),
                        "agent": self.headers.get("User-Agent"),
                    }
                )
                faults = server.faults.get(self.path, [])
                fault = faults.pop(0) if faults else None
                data = server.files.get(self.path)
                if data is None or fault == "404":
                    self.send_error(404, "Not Found")
                    return
                if fault == "corrupt":
                    data = bytes(b ^ 0xFF for b in data)
                if fault in ("grow", "trickle", "splice"):
                    self._hostile(fault, data)
                    return
                if fault in ("liar", "liar-close", "shifted"):
                    self._lying_range(fault, data)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and fault != "norange":
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if fault and fault.startswith("drop:"):
                    self.wfile.write(body[: int(fault[5:])])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def _hostile(self, fault, data):
                import time

                self.send_response(206 if fault == "splice" else 200)
                if fault == "splice":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    if fault == "grow":
                        self.wfile.write(data)
                        for _ in range(64):
                            self.wfile.write(b"\0" * 65536)
                    elif fault == "trickle":
                        for byte in data[:100]:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(0.2)
                    else:
                        self.wfile.write(data)
                except OSError:
                    pass  # the client hung up, as it should
                self.close_connection = True

            def _lying_range(self, fault, data):
                asked = int(self.headers.get("Range", "bytes=0-").split("=")[1].split("-")[0])
                first = 0 if fault == "shifted" else asked
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {first}-{len(data) - 1}/{len(data)}")
                if fault != "liar-close":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)  # from byte 0, whatever the range says
                except OSError:
                    pass  # the client hung up, as it should
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str) -> str:
        return self.base + path


def digests(data: bytes) -> dict:
    return {
        "size": len(data),
        "md5": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def served_spec(spec, server: FixtureServer, contents: dict[str, bytes], hashes=True, urls=None):
    """``spec`` with its files served by ``server`` and pinned to the fixture bytes.

    ``contents`` maps registry file names to bytes. Payload checksums are
    recomputed for .gz files. ``urls`` maps a name to extra paths tried first.
    """
    files = []
    for entry in spec.files:
        if entry.name not in contents:
            continue
        data = contents[entry.name]
        path = f"/{spec.name}/{entry.name}"
        server.files[path] = data
        mirrors = [server.url(p) for p in (urls or {}).get(entry.name, [])] + [server.url(path)]
        payload = entry.payload
        if payload is not None:
            raw = gzip.decompress(data)
            payload = Payload(payload.name, len(raw), md5=hashlib.md5(raw).hexdigest())
        d = digests(data)
        files.append(
            dataclasses.replace(
                entry,
                urls=tuple(mirrors),
                size=d["size"],
                md5=d["md5"] if hashes else None,
                sha256=d["sha256"] if hashes else None,
                payload=payload,
            )
        )
    return spec.with_files(files)


# ---------------------------------------------------------------- formats


def idx_bytes(array: np.ndarray, compress=True, magic=None) -> bytes:
    array = np.asarray(array, dtype=np.uint8)
    magic = magic if magic is not None else (0x803 if array.ndim == 3 else 0x801)
    raw = struct.pack(">I", magic) + struct.pack(">" + "I" * array.ndim, *array.shape)
    raw += array.tobytes()
    return gzip.compress(raw, mtime=0) if compress else raw


def digit_images(labels, size=28, seed=0, white_on_black=True) -> np.ndarray:
    """Small distinct images: a bright bar whose row depends on the label, plus noise."""
    rng = np.random.default_rng(seed)
    out = np.zeros((len(labels), size, size), np.uint8)
    for i, label in enumerate(labels):
        out[i] = rng.integers(0, 30, (size, size))
        row = 3 + (int(label) * 2) % (size - 6)
        out[i, row : row + 2, 4 : size - 4 - (i % 5)] = 250
    return out if white_on_black else 255 - out


def mnist_like(names: tuple[str, str, str, str], n_train=12, n_test=6, n_classes=10, seed=0):
    """Bytes of the four IDX gz files, and the arrays they hold."""
    rng = np.random.default_rng(seed)
    y_train = rng.integers(0, n_classes, n_train).astype(np.uint8)
    y_test = rng.integers(0, n_classes, n_test).astype(np.uint8)
    x_train, x_test = digit_images(y_train, seed=seed), digit_images(y_test, seed=seed + 1)
    arrays = [x_train, y_train, x_test, y_test]
    contents = {name: idx_bytes(a) for name, a in zip(names, arrays, strict=True)}
    return contents, (x_train, y_train, x_test, y_test)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def tar_gz_bytes(members: dict[str, bytes]) -> bytes:
    """A gzipped tar of regular-file members (name -> bytes), in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def wav_bytes(samples: np.ndarray, rate=16000) -> bytes:
    """A mono 16-bit PCM WAV of ``samples`` (integer values, cast to little-endian int16)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


def zip_with_symlink(name: str, target: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo(name)
        info.external_attr = 0o120777 << 16
        zf.writestr(info, target)
    return buf.getvalue()


def emnist_zip(split="byclass", n_train=15, n_test=7, seed=0):
    rng = np.random.default_rng(seed)
    n_classes = 62
    y_train = rng.integers(0, n_classes, n_train).astype(np.uint8)
    y_test = rng.integers(0, n_classes, n_test).astype(np.uint8)
    x_train, x_test = digit_images(y_train, seed=seed), digit_images(y_test, seed=seed + 1)
    chars = (
        [str(d) for d in range(10)]
        + [chr(c) for c in range(65, 91)]
        + [chr(c) for c in range(97, 123)]
    )
    mapping = "".join(f"{i} {ord(c)}\n" for i, c in enumerate(chars))
    p = f"gzip/emnist-{split}-"
    members = {
        # EMNIST stores images transposed
        p + "train-images-idx3-ubyte.gz": idx_bytes(x_train.transpose(0, 2, 1)),
        p + "train-labels-idx1-ubyte.gz": idx_bytes(y_train),
        p + "test-images-idx3-ubyte.gz": idx_bytes(x_test.transpose(0, 2, 1)),
        p + "test-labels-idx1-ubyte.gz": idx_bytes(y_test),
        p + "mapping.txt": mapping.encode(),
    }
    return zip_bytes(members), (x_train, y_train, x_test, y_test, chars)


# ------------------------------------------------------------------------ RAR


def _rar_block(htype: int, flags: int, body: bytes, data: bytes = b"") -> bytes:
    core = struct.pack("<BHH", htype, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(core) & 0xFFFF) + core + data


def rar_bytes(members: dict[str, bytes]) -> bytes:
    """A RAR 4.x archive storing ``members`` uncompressed (method 0x30, 'store').

    No free tool writes RAR, so the tests build one by the published format:
    marker block, main header, one file header + data per member, end block.
    """
    out = bytearray(b"Rar!\x1a\x07\x00")
    out += _rar_block(0x73, 0, struct.pack("<HI", 0, 0))
    for name, data in members.items():
        encoded = name.encode()
        body = struct.pack(
            "<IIBIIBBHI",
            len(data),  # packed size
            len(data),  # unpacked size
            3,  # host OS: Unix
            zlib.crc32(data),
            0x00210000,  # DOS time stamp
            20,  # version needed
            0x30,  # method: store
            len(encoded),
            0o100644,  # attributes: regular file
        )
        out += _rar_block(0x74, 0x8000, body + encoded, data)
    out += _rar_block(0x7B, 0x4000, b"")
    return bytes(out)


def bmp_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="BMP")
    return buf.getvalue()


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def madbase_rars(writers=(1, 2), passes=(1, 2), test_writers=(1,)):
    """Training and testing RARs of black-on-white BMPs named writerWWW_passPP_digitD.bmp."""
    expected = []
    archives = {}
    for arch, split, ws in (
        ("MAHDBase_TrainingSet.rar", "train", writers),
        ("MAHDBase_TestingSet.rar", "test", test_writers),
    ):
        members = {}
        for w in ws:
            for p in passes:
                for d in range(10):
                    img = digit_images([d], seed=w * 100 + p, white_on_black=False)[0]
                    part = f"Part{(w % 2) + 1:02d}"
                    members[f"{arch[:-4]}/{part}/writer{w:03d}_pass{p:02d}_digit{d}.bmp"] = (
                        bmp_bytes(img)
                    )
                    expected.append((split, w, p, d, 255 - img))
        archives[arch] = rar_bytes(members)
    return archives, expected


def madbase_csv_zip(n_train=20, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    y_train, y_test = rng.integers(0, 10, n_train), rng.integers(0, 10, n_test)
    x_train, x_test = digit_images(y_train, seed=seed), digit_images(y_test, seed=seed + 1)

    def rows(x):  # column-major, like the MATLAB export
        return "\n".join(",".join(map(str, img.flatten(order="F"))) for img in x) + "\n"

    def labels(y):
        return "\n".join(map(str, y)) + "\n"

    members = {
        "Arabic Handwritten Digits Dataset CSV/csvTrainImages 60k x 784.csv": rows(
            x_train
        ).encode(),
        "Arabic Handwritten Digits Dataset CSV/csvTrainLabel 60k x 1.csv": labels(y_train).encode(),
        "Arabic Handwritten Digits Dataset CSV/csvTestImages 10k x 784.csv": rows(x_test).encode(),
        "Arabic Handwritten Digits Dataset CSV/csvTestLabel 10k x 1.csv": labels(y_test).encode(),
    }
    return zip_bytes(members), (x_train, y_train, x_test, y_test)


# ----------------------------------------------------------------------- NIST


def nist_fixture(seed=0):
    """by_write.zip, by_write_md5.log and by_class_md5.log of a few writers.

    Each writer has digit, upper and lower images; one image of writer 1 in hsf_4
    (the test partition). by_class also holds the train_XX duplicates.
    """
    rng = np.random.default_rng(seed)
    chars = (
        [str(d) for d in range(10)]
        + [chr(c) for c in range(65, 91)]
        + [chr(c) for c in range(97, 123)]
    )
    layout = [
        ("hsf_0", "f0000_14", [0, 5, 10, 40]),
        ("hsf_4", "f0001_20", [1, 11, 61, 3]),
        ("hsf_6", "f0002_07", [9, 35, 36]),
    ]
    by_write, write_log, class_log, expected = {}, [], [], []
    count = 0
    for partition, writer, labels in layout:
        for k, label in enumerate(labels):
            img = np.full((128, 128), 255, np.uint8)
            img[20 + label : 60 + label, 30 + k * 5 : 40 + k * 5] = 0
            img[rng.integers(0, 128), rng.integers(0, 128)] = 0
            data = png_bytes(img)
            kind = "d" if label < 10 else ("u" if label < 36 else "l")
            folder = f"{kind}{writer[1:]}"
            name = f"by_write/{partition}/{writer}/{folder}/{folder}_{k:05d}.png"
            by_write[name] = data
            md5 = hashlib.md5(data).hexdigest()
            write_log.append(f"{md5} /data/{name}")
            hexcode = format(ord(chars[label]), "02x")
            class_log.append(
                f"{md5} /data/by_class/{hexcode}/{partition}/{partition}_{count:05d}.png"
            )
            if partition != "hsf_4":
                train = f"train_{hexcode}"
                class_log.append(f"{md5} /data/by_class/{hexcode}/{train}/{train}_{count:05d}.png")
            expected.append((name, label, chars[label], writer, partition))
            count += 1
    return (
        {
            "by_write.zip": zip_bytes(by_write),
            "by_write_md5.log": ("\n".join(write_log) + "\n").encode(),
            "by_class_md5.log": ("\n".join(class_log) + "\n").encode(),
        },
        expected,
    )


# ---------------------------------------------------------------- DeepWriting

# github.com/emreaksan/deepwriting, data_scripts/json_to_numpy.py: the alphabet is
# '\x00' then this list, and char_labels hold LabelEncoder codes (sorted order).
ALPHABET = ["\x00"] + list("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'.,-()/")
LABEL_CODES = {c: i for i, c in enumerate(sorted(ALPHABET))}


def deepwriting_tar(seed=0, container="tar"):
    """deepwriting_dataset.tar.gz (or .zip) with training/validation npz in the published
    layout: the keys json_to_numpy.py writes, char_labels as LabelEncoder codes."""
    rng = np.random.default_rng(seed)
    mean, std = np.array([0.1, -0.2, 0.0]), np.array([2.0, 3.0, 1.0])

    def sample(chars):
        pts, labels, eoc = [], [], []
        x = 0.0
        for c in chars:
            n = 6
            xs = x + np.linspace(0, 5, n)
            ys = 10 * rng.random() + np.linspace(0, 8, n)
            pen = np.zeros(n)
            pen[2] = 1  # two strokes per character
            pen[-1] = 1
            pts.append(np.stack([xs, ys, pen], 1))
            labels += [LABEL_CODES[c]] * n
            eoc += [0] * (n - 1) + [1]
            x += 8
            # two connecting points labelled 0 (no character)
            pts.append(np.array([[x - 1, 5, 0], [x - 0.5, 5, 1]]))
            labels += [0, 0]
            eoc += [0, 0]
        absolute = np.concatenate(pts)
        rel = absolute.copy()
        rel[1:, :2] = np.diff(absolute[:, :2], axis=0)
        rel[0, :2] = 0
        rel[:, :2] = (rel[:, :2] - mean[:2]) / std[:2]
        return rel.astype(np.float32), np.array(labels), np.array(eoc)

    def npz(texts, subjects):
        samples = [sample(t) for t in texts]
        data = {
            "samples": np.array([s[0] for s in samples] + [None], dtype=object)[:-1],
            "char_labels": np.array([s[1] for s in samples] + [None], dtype=object)[:-1],
            "eoc_labels": np.array([s[2] for s in samples] + [None], dtype=object)[:-1],
            "subject_labels": np.array(subjects),
            "texts": np.array(texts),
            "alphabet": np.array(ALPHABET),
            "preprocessing": np.array(
                ["origin_translation", "relative_representation", "normalization"]
            ),
            "mean": mean,
            "std": std,
        }
        buf = io.BytesIO()
        np.savez_compressed(buf, **data)
        return buf.getvalue()

    train = npz(["ab", "C1"], [7, 8])
    valid = npz(["z"], [9])
    expected = [
        ("train", "a", "7"),
        ("train", "b", "7"),
        ("train", "C", "8"),
        ("train", "1", "8"),
        ("validation", "z", "9"),
    ]
    if container == "zip":
        members = {"deepwriting_training.npz": train, "deepwriting_validation.npz": valid}
        return zip_bytes(members), expected
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in (
            ("deepwriting_training.npz", train),
            ("deepwriting_validation.npz", valid),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue(), expected


def tar_with_member(name: str, data: bytes = b"x", link: str | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo(name)
        if link:
            info.type, info.linkname = tarfile.SYMTYPE, link
            tf.addfile(info)
        else:
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# -------------------------------------------------------------------- Amharic


def amharic_folder(root: Path, names, per_class=2, skip=(), by_char=()):
    """One folder per class (index, or the character for classes in ``by_char``)."""
    for i, char in enumerate(names):
        if i in skip:
            continue
        folder = root / (char if i in by_char else f"{i:02d}")
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            img = np.full((64, 64), 255, np.uint8)
            img[10 + i % 40 : 20 + i % 40, 10 + k : 50] = 0
            Image.fromarray(img).save(folder / f"img{k}.png")
    return root


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


__all__ = ["RemoteFile"]


# ------------------------------------------------- real Kannada-MNIST label files

# The label files of github.com/vinayprabhu/Kannada_MNIST (data/output_tensors/
# MNIST_format/) hold the labels 0, 1, ..., 9 repeated (label of image i = i % 10),
# written by Python's gzip (FNAME = the IDX name, level 9, the mtime below) and
# np.savez (one stored member arr_0.npy dated 1980-01-01). Rebuilt from those facts
# they are byte for byte the published files: the tests check them against the
# registry's MD5s, taken from the files themselves.
KANNADA_LABEL_FILES = {
    # name: (count, gzip mtime from bytes 4-7 of the published file)
    "y_kannada_MNIST_train-idx1-ubyte.gz": (60000, 1564465205),
    "y_kannada_MNIST_test-idx1-ubyte.gz": (10000, 1564465208),
    "y_dig_MNIST-idx1-ubyte.gz": (10240, 1564465188),
}
KANNADA_LABEL_NPZ = {
    "y_kannada_MNIST_train.npz": 60000,
    "y_kannada_MNIST_test.npz": 10000,
    "y_dig_MNIST.npz": 10240,
}


def kannada_labels(count: int) -> np.ndarray:
    return (np.arange(count) % 10).astype(np.uint8)


def kannada_label_gz(name: str) -> bytes:
    """A published Kannada-MNIST / Dig-MNIST IDX label file, rebuilt byte for byte."""
    count, mtime = KANNADA_LABEL_FILES[name]
    buf = io.BytesIO()
    with gzip.GzipFile(
        filename=name.removesuffix(".gz"), mode="wb", fileobj=buf, mtime=mtime, compresslevel=9
    ) as stream:
        stream.write(idx_bytes(kannada_labels(count), compress=False))
    return buf.getvalue()


def savez_bytes(array: np.ndarray) -> bytes:
    """``np.savez(path, array)`` as the Kannada-MNIST files were written (older NumPy:
    one stored member ``arr_0.npy`` dated 1980-01-01, no zip64 extra field)."""
    npy = io.BytesIO()
    np.lib.format.write_array(npy, np.asarray(array))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(zipfile.ZipInfo("arr_0.npy", (1980, 1, 1, 0, 0, 0)), npy.getvalue())
    return buf.getvalue()


def kannada_label_npz(name: str) -> bytes:
    return savez_bytes(kannada_labels(KANNADA_LABEL_NPZ[name]))


# ------------------------------------------------------- Python 2 cPickle (CIFAR)


class Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle.dump(obj, f, 2) writes: str and bytes as py2 STRING
    opcodes, memo ids from 1, NumPy's reconstructor under its py2 module name. With it
    the CIFAR-100 ``meta`` file comes out byte for byte (see the CIFAR test)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_string(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<I", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_string
    dispatch[bytes] = save_py2_string

    def memoize(self, obj):
        index = len(self.memo) + 1  # cPickle numbers its memo from 1
        self.write(self.put(index))
        self.memo[id(obj)] = index, obj

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()
