"""Machine translation of inbound messages for the managers: the `Translator` interface.

- `NoTranslator` ("none", the default): nothing is translated.
- `LibreTranslateTranslator` ("libretranslate"): a LibreTranslate-compatible HTTP API
  (`POST <url>/translate` with q, source, target, format and an optional api_key; the reply's
  `translatedText`). LibreTranslate is open source and self-hostable; hosted services speak
  the same protocol.

A translation that fails or times out leaves `translated_content` empty: the message is
stored all the same.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from typing import Protocol

from libs.settings import Settings

log = logging.getLogger("soulkg.messaging.translation")
TIMEOUT_SECONDS = 5.0


class Translator(Protocol):
    async def translate(self, text: str, source: str, target: str) -> str | None:
        """`text` in `target` (ISO 639-1), or None when it could not be translated."""


class NoTranslator:
    async def translate(self, text: str, source: str, target: str) -> str | None:
        return None


class LibreTranslateTranslator:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = TIMEOUT_SECONDS) -> None:
        self._endpoint = url.rstrip("/") + "/translate"
        self._api_key = api_key
        self._timeout = timeout

    def _post(self, body: dict) -> dict:
        request = urllib.request.Request(self._endpoint, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310 - configured URL
            return json.loads(response.read())

    async def translate(self, text: str, source: str, target: str) -> str | None:
        body = {"q": text, "source": source, "target": target, "format": "text"}
        if self._api_key:
            body["api_key"] = self._api_key
        try:
            reply = await asyncio.wait_for(asyncio.to_thread(self._post, body), self._timeout + 1)
        except Exception as exc:  # noqa: BLE001 - a failed translation never fails the message
            log.warning("translation failed: %s", type(exc).__name__)
            return None
        translated = reply.get("translatedText") if isinstance(reply, dict) else None
        return translated if isinstance(translated, str) and translated.strip() else None


def build_translator(settings: Settings) -> Translator:
    if settings.translator == "none":
        return NoTranslator()
    if not settings.translator_url:
        raise SystemExit("SOULKG_TRANSLATOR=libretranslate needs SOULKG_TRANSLATOR_URL")
    key = settings.translator_api_key.get_secret_value() if settings.translator_api_key else None
    return LibreTranslateTranslator(settings.translator_url, key)
