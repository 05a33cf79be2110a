"""Payload encryption: AES-256-GCM under named keys, for every client of Temporal (worker, gateway, CLI, Replayer).

Each encrypted payload carries the id of its key in its metadata (`encryption-key-id`) and the encoding
`binary/encrypted`, the layout Temporal's samples use, so a codec server or another SDK can read it. The first
key of the keyring encrypts; every key decrypts, so a key is rotated by putting a new one first and keeping the
old ones until no history needs them. Payloads without the encrypted encoding pass through decode unchanged:
histories recorded before encryption was turned on still replay.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from baton.settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")


class CodecKeyError(ValueError):
    """The keys are misconfigured, or a payload names a key this keyring does not hold."""


class PayloadTamperedError(ValueError):
    """An encrypted payload (or its key id) was changed after it was encrypted, or the key is wrong."""


@dataclass(frozen=True)
class CodecKey:
    key_id: str
    secret: bytes

    def __repr__(self) -> str:  # never print the secret
        return f"CodecKey({self.key_id!r})"


def generate_key(key_id: str) -> CodecKey:
    """A new random key."""
    return CodecKey(_checked_id(key_id, "key id"), os.urandom(KEY_BYTES))


def format_key(key: CodecKey) -> str:
    """`id:base64key`, the form BATON_CODEC_KEYS and the key file hold."""
    return f"{key.key_id}:{base64.b64encode(key.secret).decode()}"


def _checked_id(key_id: str, where: str) -> str:
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise CodecKeyError(f"{where}: key id {key_id!r} must be 1-64 characters of A-Z a-z 0-9 . _ -")
    return key_id


def parse_keys(text: str, source: str = "BATON_CODEC_KEYS") -> list[CodecKey]:
    """Keys from `id:base64key` entries separated by commas or new lines (`#` starts a comment); first encrypts.

    Errors name `source` and the entry's position, never the secret."""
    keys: list[CodecKey] = []
    entries = [e.strip() for line in text.splitlines() for e in line.split("#", 1)[0].split(",")]
    for position, entry in enumerate((e for e in entries if e), start=1):
        where = f"{source}, entry {position}"
        key_id, sep, encoded = entry.partition(":")
        if not sep:
            raise CodecKeyError(f"{where}: expected id:base64key")
        key_id = _checked_id(key_id.strip(), where)
        try:
            secret = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise CodecKeyError(f"{where} (key {key_id!r}): the key is not valid base64") from None
        if len(secret) != KEY_BYTES:
            raise CodecKeyError(f"{where} (key {key_id!r}): the key must be {KEY_BYTES} bytes, got {len(secret)}")
        if any(k.key_id == key_id for k in keys):
            raise CodecKeyError(f"{where}: key id {key_id!r} appears twice")
        keys.append(CodecKey(key_id, secret))
    return keys


def keys_from_settings(settings: Settings) -> list[CodecKey]:
    """The configured keyring (BATON_CODEC_KEYS or BATON_CODEC_KEY_FILE); empty when neither is set.

    Raises CodecKeyError when both are set, the file is unreadable or empty, or encryption is required
    (BATON_CODEC_REQUIRED) and no key is configured."""
    if settings.codec_keys is not None and settings.codec_key_file is not None:
        raise CodecKeyError("set BATON_CODEC_KEYS or BATON_CODEC_KEY_FILE, not both")
    keys: list[CodecKey] = []
    if settings.codec_keys is not None:
        keys = parse_keys(settings.codec_keys.get_secret_value(), "BATON_CODEC_KEYS")
        if not keys:
            raise CodecKeyError("BATON_CODEC_KEYS holds no key")
    elif settings.codec_key_file is not None:
        path = settings.codec_key_file
        try:
            text = path.read_text()
        except OSError as err:
            raise CodecKeyError(f"BATON_CODEC_KEY_FILE: cannot read {path}: {err.strerror or err}") from err
        keys = parse_keys(text, f"BATON_CODEC_KEY_FILE {path}")
        if not keys:
            raise CodecKeyError(f"BATON_CODEC_KEY_FILE {path} holds no key")
    if not keys and settings.codec_required:
        raise CodecKeyError("BATON_CODEC_REQUIRED is set but no key is configured (BATON_CODEC_KEYS or _KEY_FILE)")
    return keys


def write_key_file(path: Path, keys: Sequence[CodecKey]) -> None:
    """A key file readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write("# Baton payload keys, id:base64key; the first encrypts, all decrypt.\n")
        out.writelines(format_key(key) + "\n" for key in keys)


class EncryptionCodec(PayloadCodec):
    """AES-GCM with a random 96-bit nonce per payload; the key id is authenticated as associated data, so a
    payload relabelled with another key's id fails like a changed ciphertext."""

    def __init__(self, keys: Sequence[CodecKey]) -> None:
        super().__init__()
        if not keys:
            raise CodecKeyError("an encryption codec needs at least one key")
        self._current = keys[0]
        self._ciphers = {key.key_id: AESGCM(key.secret) for key in keys}

    @property
    def current_key_id(self) -> str:
        return self._current.key_id

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self._current.key_id.encode()
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._current.key_id].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # recorded without encryption (or never encoded by a codec): nothing to undo
        raw_id = payload.metadata.get(KEY_ID_METADATA, b"")
        key_id = raw_id.decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecKeyError(
                f"payload encrypted with key {key_id!r}, which is not configured (known: {', '.join(self._ciphers)})"
            )
        if len(payload.data) <= NONCE_BYTES:
            raise PayloadTamperedError(f"payload under key {key_id!r} is too short to be encrypted")
        try:
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], raw_id)
        except InvalidTag:
            raise PayloadTamperedError(f"payload under key {key_id!r} failed authentication") from None
        return Payload.FromString(plain)


def codec_from_settings(settings: Settings) -> EncryptionCodec | None:
    """The codec for the configured keys, or None when no key is configured (payloads stay plain)."""
    keys = keys_from_settings(settings)
    return EncryptionCodec(keys) if keys else None


def add_key_to_file(path: Path, key_id: str) -> CodecKey:
    """Rotate: a new key first in the key file (created when missing), the old ones kept after it to decrypt."""
    existing = parse_keys(path.read_text(), f"key file {path}") if path.exists() else []
    if any(k.key_id == key_id for k in existing):
        raise CodecKeyError(f"key file {path} already holds key id {key_id!r}; choose another id")
    key = generate_key(key_id)
    write_key_file(path, [key, *existing])
    return key
