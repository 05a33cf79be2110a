"""A static sentence embedding: the mean of WordLlama's 256-dimension token vectors.

The vectors and tokenizer ship in the `wordllama` wheel (MIT), pinned in pyproject; only its files are
read here (with `tokenizers` and `safetensors`), after checking their SHA-256, so a different wheel can
never change a score silently.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

WEIGHTS = "weights/l2_supercat_256.safetensors"
TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
SHA256 = {
    WEIGHTS: "64b47a2dc493cb8e85944076601189739852d7b64e0e1eedcb1937a251cd9fd5",
    TOKENIZER: "93248f2a9ec36c7b35f700a033d5f36228aae48db61aee31007fa49062cdeb68",
}
MAX_TOKENS = 256  # longer messages are embedded from their first 256 tokens


class EmbeddingError(RuntimeError):
    """The embedding's files are missing or not the pinned ones."""


def package_dir() -> Path:
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingError("the wordllama package is not installed (pip install the pinned version)")
    return Path(next(iter(spec.submodule_search_locations)))


def _checked(path: Path, expected: str) -> Path:
    if not path.is_file():
        raise EmbeddingError(f"{path}: missing")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise EmbeddingError(f"{path}: sha256 {digest} is not the pinned {expected}")
    return path


@dataclass
class StaticEmbedding:
    table: np.ndarray  # (vocabulary, dimension) float32
    tokenizer: Tokenizer

    @classmethod
    def load(cls, root: Path | None = None) -> StaticEmbedding:
        root = root or package_dir()
        table = load_file(str(_checked(root / WEIGHTS, SHA256[WEIGHTS])))["embedding.weight"].astype(np.float32)
        tokenizer = Tokenizer.from_file(str(_checked(root / TOKENIZER, SHA256[TOKENIZER])))
        tokenizer.no_padding()
        tokenizer.no_truncation()
        return cls(table=table, tokenizer=tokenizer)

    @property
    def dimension(self) -> int:
        return int(self.table.shape[1])

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length mean token vectors, one row per text (zeros for a text with no tokens)."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, encoding in enumerate(self.tokenizer.encode_batch(texts, add_special_tokens=False)):
            ids = encoding.ids[:MAX_TOKENS]
            if not ids:
                continue
            vector = self.table[ids].mean(axis=0)
            norm = float(np.linalg.norm(vector))
            out[row] = vector / norm if norm else vector
        return out
