"""The language of a client's message: py3langid (a naive Bayes model over byte n-grams,
trained on 97 languages) restricted to the languages we serve (domain.SUPPORTED_LANGUAGES),
with normalised probabilities so that its confidence means something.

On a small tour-chat sample it named 48 of 49 messages right. What it cannot do is tell a
two-word "Рахмат" (Kyrgyz, Kazakh and Uzbek alike) or an "ok": domain.message_language then
keeps the conversation's language instead of trusting a guess. The model loads once per
process (about half a second); a detection takes tens of microseconds.
"""

from __future__ import annotations

from functools import cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from services.messaging.domain import SUPPORTED_LANGUAGES, Detection


@cache
def _identifier() -> LanguageIdentifier:
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(SUPPORTED_LANGUAGES))
    return identifier


def load() -> None:
    """Load the model now (at startup) rather than on the first message."""
    _identifier()


def detect(text: str) -> Detection:
    language, confidence = _identifier().classify(text)
    return Detection(language, confidence)
