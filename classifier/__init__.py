"""Baton's message classifier at run time: intents, topic and frustration for one customer message.

Pure numpy over weights that ship in ``weights/`` (trained by ``baton model train``) and a static word
embedding from a pinned package, checked by hash at load. No PyTorch, no download. It runs in an
activity, so the scores a conversation received are recorded in its history and a model upgrade never
changes them (see docs/classifier.md).
"""

from baton.classifier.model import Classifier, MessageScores, default_classifier

__all__ = ["Classifier", "MessageScores", "default_classifier"]
