"""Issue 11 item 11: a learned-policy model file not written with this machine's key is refused
before it is unpickled (a pickle can run code)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from recoverkit import modelkey
from recoverkit.sandbox.policies.learned import SuccessModel


class _Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, int]]:
        return (os.open, (str(self.marker), os.O_CREAT | os.O_WRONLY))


def test_a_malicious_pickle_is_refused_unread(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ValueError, match="integrity tag"):
        SuccessModel.load(path)
    assert not marker.exists()


def test_a_file_tagged_with_another_key_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pkl"
    monkeypatch.setenv(modelkey.KEY_ENV, "the-attackers-key")
    path.write_bytes(modelkey.sign(pickle.dumps(_Payload(marker))))
    monkeypatch.setenv(modelkey.KEY_ENV, "this-machines-key")
    with pytest.raises(ValueError, match="model key"):
        SuccessModel.load(path)
    assert not marker.exists()


def test_a_tampered_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    blob = modelkey.sign(pickle.dumps({"format": "x"}))
    path.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(ValueError, match="model key"):
        SuccessModel.load(path)


def test_the_key_file_is_created_private_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(modelkey.KEY_ENV)
    monkeypatch.setenv(modelkey.KEY_FILE_ENV, str(tmp_path / "keys" / "model.key"))
    first = modelkey.model_key()
    assert len(first) == 64
    assert (tmp_path / "keys" / "model.key").stat().st_mode & 0o777 == 0o600
    assert modelkey.model_key() == first
    data = b"payload"
    assert modelkey.verify(modelkey.sign(data), "m") == data
