"""Baton's message classifier at run time: intents, topic and frustration for one customer message.

numpy (and the `tokenizers` and `vaderSentiment` packages) over files that ship in ``weights/``: the linear
model trained by ``baton model train`` and a static distillation of the all-MiniLM-L6-v2 sentence encoder;
for the messages that model is unsure of, the encoder itself with int8 weights, run by onnxruntime from the
files of a pinned package. Every file is checked by SHA-256 at load. No PyTorch, no download. Messages are
scored on the way in and the scores recorded with them, so a model upgrade never changes the scores a
conversation received (see docs/classifier.md).
"""

from baton.classifier.model import Classifier, MessageScores, default_classifier

__all__ = ["Classifier", "MessageScores", "default_classifier"]
