"""Encryption at rest of the event store: eventsourcing's own AES-GCM cipher
(`eventsourcing.cryptography.AESCipher`, installed with CIPHER_TOPIC / CIPHER_KEY), with
errors that say what to do instead of "Invalid cipher tag".

Enabled by TICKETFLOW_CIPHER_KEY (ticketflow.settings.cipher_env). Every stored event,
snapshot, receipt and policy copy is encrypted; the hash chain is computed over the
plaintext envelope, so `ticketflow verify` works the same. A store is encrypted from its
first event or not at all: `check_store_key` refuses a wrong or missing key at start-up.
"""

from __future__ import annotations

import json

from eventsourcing.application import Application
from eventsourcing.cryptography import AESCipher
from eventsourcing.utils import Environment

from ticketflow.settings import CIPHER_KEY_ENV, GENERATE_KEY, SettingsError


class CipherKeyError(SettingsError):
    """The event store's key is missing or not the one it was written with."""


class StoreCipher(AESCipher):
    def __init__(self, environment: Environment) -> None:
        try:
            super().__init__(environment)
        except (OSError, ValueError):
            raise CipherKeyError(f"{CIPHER_KEY_ENV} is not a base64 AES key of 16, 24 or 32"
                                 f" bytes; generate one with: {GENERATE_KEY}") from None

    def decrypt(self, ciphertext: bytes) -> bytes:
        try:
            return super().decrypt(ciphertext)
        except ValueError:
            raise CipherKeyError(
                f"stored data cannot be decrypted with {CIPHER_KEY_ENV}: it is not the key"
                " this store was written with, or the row was changed. Set the store's key"
                " (run `ticketflow verify` to find changed rows)."
            ) from None


def check_store_key(app: Application) -> None:
    """Read the store's first record with the configured key (or none): a wrong key, a
    missing key for an encrypted store, or a key for a plaintext store fails here, once,
    with what to do, instead of deep inside the first query."""
    first = app.recorder.select_notifications(1, 1)
    if not first:
        return
    state = first[0].state
    cipher = app.mapper.cipher
    if cipher is None:
        if not _plaintext(state):
            raise CipherKeyError(f"this event store is encrypted: set {CIPHER_KEY_ENV} to its"
                                 " key")
        return
    try:
        cipher.decrypt(state)
    except CipherKeyError:
        if _plaintext(state):
            raise CipherKeyError(
                f"{CIPHER_KEY_ENV} is set, but this event store was written without"
                " encryption; unset it (a store is encrypted from its first event or not at"
                " all, see docs/security.md)") from None
        raise


def _plaintext(state: bytes) -> bool:
    try:
        return isinstance(json.loads(state), dict)
    except ValueError:
        return False
