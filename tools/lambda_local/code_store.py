"""Function and layer zips, kept by their CodeSha256 (base64 of the SHA-256, as Lambda reports it).

moto keeps the code it is sent but cannot hand it back (its `Code.Location` is not a URL anyone serves), so the proxy
records every zip on its way to moto; an invoke then finds the version's code by the CodeSha256 moto reports for it.
Each zip is unpacked once, into a folder named by its hash, written under a temporary name and renamed into place.
"""
from __future__ import annotations

import base64
import hashlib
import os
import shutil
import stat
import threading
import zipfile
from pathlib import Path


class CodeNotFound(Exception):
    pass


def code_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _hex(sha_b64: str) -> str:
    return base64.b64decode(sha_b64).hex()


class CodeStore:
    def __init__(self, root: Path):
        self.root = root
        (root / "zips").mkdir(parents=True, exist_ok=True)
        (root / "code").mkdir(parents=True, exist_ok=True)
        (root / "opt").mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def put(self, data: bytes) -> str:
        sha = code_sha256(data)
        path = self.root / "zips" / f"{_hex(sha)}.zip"
        if not path.exists():
            tmp = path.with_suffix(f".part-{os.getpid()}-{threading.get_ident()}")
            tmp.write_bytes(data)
            tmp.replace(path)
        return sha

    def has(self, sha: str) -> bool:
        return (self.root / "zips" / f"{_hex(sha)}.zip").exists()

    def unpacked(self, sha: str) -> Path:
        """The folder holding the zip's files (the task root of a function, or one layer)."""
        dest = self.root / "code" / _hex(sha)
        with self._lock:
            if not dest.is_dir():
                self._unzip_into([sha], dest)
        return dest

    def layers(self, shas: list[str]) -> Path:
        """/opt as Lambda builds it: the layers unpacked in order, a later layer's file replacing an earlier one's."""
        key = hashlib.sha256("\n".join(shas).encode()).hexdigest()[:32]
        dest = self.root / "opt" / key
        with self._lock:
            if not dest.is_dir():
                self._unzip_into(shas, dest)
        return dest

    def _unzip_into(self, shas: list[str], dest: Path) -> None:
        tmp = dest.with_name(f".tmp-{dest.name}")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        for sha in shas:
            zip_path = self.root / "zips" / f"{_hex(sha)}.zip"
            if not zip_path.exists():
                raise CodeNotFound(sha)
            with zipfile.ZipFile(zip_path) as zf:
                for info in zf.infolist():
                    target = tmp / info.filename
                    if not target.resolve().is_relative_to(tmp.resolve()):
                        raise CodeNotFound(f"{sha}: entry {info.filename!r} leaves the folder")
                    zf.extract(info, tmp)
                    mode = (info.external_attr >> 16) & 0o777
                    if mode and not info.is_dir():
                        os.chmod(target, mode | stat.S_IRUSR)
        tmp.rename(dest)
