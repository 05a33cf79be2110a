"""Static sentence embeddings: a message is the mean of its tokens' rows in a table, at unit length.

Two tables, the same code:

- **MiniLM static** (shipped): a distillation of the all-MiniLM-L6-v2 sentence encoder into one 256-d
  row per token of its WordPiece vocabulary, committed in ``weights/`` (``minilm_static.npz``, int8 with a
  scale per row, and the encoder's ``minilm_tokenizer.json``). Built once by
  ``python -m baton.apps.model.export_encoder distill`` (PyTorch at build time only); see
  docs/classifier.md.
- **WordLlama** (the previous model, kept for comparison): the 256-d token vectors of the pinned
  ``wordllama`` wheel, read from its files.

Every file is checked against its SHA-256 before use, so another file can never change a score silently.
Only numpy and ``tokenizers`` run here.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Encoding, Tokenizer

MAX_TOKENS = 256  # longer messages are embedded from their first 256 tokens
MINILM_TABLE = "minilm_static.npz"
MINILM_TOKENIZER = "minilm_tokenizer.json"
WORDLLAMA_WEIGHTS = "weights/l2_supercat_256.safetensors"
WORDLLAMA_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
WORDLLAMA_SHA256 = {
    WORDLLAMA_WEIGHTS: "64b47a2dc493cb8e85944076601189739852d7b64e0e1eedcb1937a251cd9fd5",
    WORDLLAMA_TOKENIZER: "93248f2a9ec36c7b35f700a033d5f36228aae48db61aee31007fa49062cdeb68",
}


class EmbeddingError(RuntimeError):
    """The embedding's files are missing or not the pinned ones."""


# Below this many texts, `encode` one by one instead of `encode_batch`. encode_batch hands its texts to the
# tokenizers library's thread pool and the calling thread waits for a pool thread to run them; for the one
# message a gateway or worker scores at a time that is a thread hand-off per message, and on a busy machine
# the event loop waits until the pool's thread gets a core. The encodings are the same either way.
PARALLEL_MIN = 16


def encode_all(tokenizer: Tokenizer, texts: list[str], add_special_tokens: bool = True) -> list[Encoding]:
    """The tokenizer's encodings of texts: in the calling thread for a few, on its thread pool for many."""
    if len(texts) < PARALLEL_MIN:
        return [tokenizer.encode(text, add_special_tokens=add_special_tokens) for text in texts]
    return tokenizer.encode_batch(list(texts), add_special_tokens=add_special_tokens)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checked(path: Path, expected: str) -> Path:
    if not path.is_file():
        raise EmbeddingError(f"{path}: missing")
    digest = sha256_of(path)
    if digest != expected:
        raise EmbeddingError(f"{path}: sha256 {digest} is not the pinned {expected}")
    return path


def _tokenizer(path: Path) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


@dataclass
class StaticEmbedding:
    name: str
    table: np.ndarray  # (vocabulary, dimension) float32
    tokenizer: Tokenizer

    @classmethod
    def minilm(cls, directory: Path, sha256: dict[str, str]) -> StaticEmbedding:
        """The shipped distillation, from a model folder; `sha256` maps each file name to its digest."""
        with np.load(checked(directory / MINILM_TABLE, sha256[MINILM_TABLE])) as arrays:
            table = arrays["values"].astype(np.float32) * arrays["scale"].astype(np.float32)[:, None]
        tokenizer = _tokenizer(checked(directory / MINILM_TOKENIZER, sha256[MINILM_TOKENIZER]))
        return cls(name="minilm-static", table=table, tokenizer=tokenizer)

    @classmethod
    def wordllama(cls, root: Path | None = None) -> StaticEmbedding:
        """WordLlama l2_supercat 256-d, from the installed wheel."""
        from safetensors.numpy import load_file

        root = root or _wordllama_dir()
        weights = checked(root / WORDLLAMA_WEIGHTS, WORDLLAMA_SHA256[WORDLLAMA_WEIGHTS])
        table = load_file(str(weights))["embedding.weight"].astype(np.float32)
        tokenizer = _tokenizer(checked(root / WORDLLAMA_TOKENIZER, WORDLLAMA_SHA256[WORDLLAMA_TOKENIZER]))
        return cls(name="wordllama-256", table=table, tokenizer=tokenizer)

    @property
    def dimension(self) -> int:
        return int(self.table.shape[1])

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length mean token vectors, one row per text (zeros for a text with no tokens)."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, encoding in enumerate(encode_all(self.tokenizer, texts, add_special_tokens=False)):
            ids = encoding.ids[:MAX_TOKENS]
            if not ids:
                continue
            vector = self.table[ids].mean(axis=0)
            norm = float(np.linalg.norm(vector))
            out[row] = vector / norm if norm else vector
        return out


def _wordllama_dir() -> Path:
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingError("the wordllama package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))
