"""`solver=ocrspace`: the OCR.space REST API (https://ocr.space/ocrapi), one request per CAPTCHA.

Every CAPTCHA gets an answer or an error saying why not. Requests are spaced to
`max_requests_per_minute` and counted against a daily budget (both on the client side, before
the service refuses); connection errors, timeouts, HTTP 429 and 5xx and the free tier's
rate-limit message are retried with exponential backoff (honouring Retry-After); 401/403 are
not. Answers are cached on disk by image hash and settings, so an interrupted run resumes
without sending those requests again. The API key comes only from the environment
(`OCR_SPACE_API_KEY`) or a `.env` file and is sent only in the `apikey` header.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests
from PIL import Image

from captcha_robustness.errors import ConfigError
from captcha_robustness.files import read_json, write_json
from captcha_robustness.solvers.base import Reading
from captcha_robustness.validate import check_field

KEY_VARIABLE = "OCR_SPACE_API_KEY"
DEFAULT_URL = "https://api.ocr.space/parse/image"


def api_key(env_file: str | Path = ".env") -> str:
    """The key from the environment, else from a `KEY=value` line of `env_file`."""
    key = os.environ.get(KEY_VARIABLE, "").strip()
    path = Path(env_file)
    if not key and path.is_file():
        for line in path.read_text().splitlines():
            name, sep, value = line.strip().removeprefix("export ").partition("=")
            if sep and name.strip() == KEY_VARIABLE:
                key = value.strip().strip("'\"")
    if not key:
        raise ConfigError(f"{KEY_VARIABLE}: not set; export {KEY_VARIABLE}=YOUR_KEY or put that line in "
                          f"{path} (a free key: https://ocr.space/ocrapi)")
    return key


class RateLimiter:
    """Spaces calls at least 60 / per_minute seconds apart."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 60.0 / per_minute
        self.clock, self.sleep = clock, sleep
        self.next_at = -float("inf")

    def wait(self) -> None:
        now = self.clock()
        if now < self.next_at:
            self.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + self.interval


class DailyBudget:
    """Requests sent per UTC day, kept in a JSON file so separate runs share it."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path, self.limit = path, limit

    def _today(self) -> str:
        return datetime.now(timezone.utc).strftime("%Y-%m-%d")

    def spend(self) -> bool:
        """Count one request; False (and nothing counted) when today's budget is used up."""
        counts = read_json(self.path) or {}
        used = int(counts.get(self._today(), 0))
        if used >= self.limit:
            return False
        write_json(self.path, {self._today(): used + 1})
        return True


def _is_rate_limit_message(body: Any) -> bool:
    # The free tier answers over its limit with a bare JSON string such as "You may only
    # perform this action upto maximum 180 number of times within 3600 seconds".
    return isinstance(body, str) and "maximum" in body and "times within" in body


class _Retry(Exception):
    def __init__(self, reason: str, wait_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.wait_s = reason, wait_s


class OcrSpaceSolver:
    name = "ocrspace"

    def __init__(self, url: str = DEFAULT_URL, language: str = "eng", engine: int = 2, scale: bool = True,
                 timeout_s: float = 30, max_requests_per_minute: float = 10, daily_budget: int = 400,
                 max_retries: int = 4, backoff_s: float = 2.0, max_backoff_s: float = 120,
                 cache_dir: str = "~/.cache/captcha-robustness/ocrspace", env_file: str = ".env") -> None:
        if engine not in (1, 2, 3):
            raise ConfigError(f"solver.engine: must be 1, 2 or 3 (got {engine!r})")
        if not max_requests_per_minute or max_requests_per_minute <= 0:
            raise ConfigError(f"solver.max_requests_per_minute: must be > 0 (got {max_requests_per_minute!r})")
        check_field("solver.max_retries", max_retries)
        self._key = api_key(env_file)
        self.url, self.timeout_s = url, timeout_s
        self.form = {"language": language, "OCREngine": str(engine), "isOverlayRequired": "false",
                     "scale": "true" if scale else "false"}
        self.max_retries, self.backoff_s, self.max_backoff_s = max_retries, backoff_s, max_backoff_s
        self.cache = Path(cache_dir).expanduser()
        (self.cache / "answers").mkdir(parents=True, exist_ok=True)
        self.limiter = RateLimiter(max_requests_per_minute)
        self.budget = DailyBudget(self.cache / "requests_per_day.json", daily_budget)
        self.session = requests.Session()
        self.model_id = f"ocrspace engine{engine}"
        self.sent = 0  # requests sent by this solver (retries included)

    def read(self, images: Sequence[Image.Image]) -> list[Reading]:
        return [self.read_one(image) for image in images]

    def read_one(self, image: Image.Image) -> Reading:
        png = io.BytesIO()
        image.save(png, format="PNG")
        png_bytes = png.getvalue()
        cache_file = self.cache / "answers" / f"{self._cache_key(png_bytes)}.json"
        cached = read_json(cache_file)
        if cached is not None:
            return Reading(cached["raw_text"])
        reading = self._request(png_bytes)
        if reading.error is None:
            write_json(cache_file, {"raw_text": reading.raw_text})
        return reading

    def _cache_key(self, png_bytes: bytes) -> str:
        settings = json.dumps({"url": self.url, **self.form}, sort_keys=True).encode()
        return hashlib.sha256(settings + b"\0" + png_bytes).hexdigest()

    def _request(self, png_bytes: bytes) -> Reading:
        reason = ""
        for attempt in range(self.max_retries + 1):
            self.limiter.wait()
            if not self.budget.spend():
                return Reading(None, error=f"daily budget used up ({self.budget.limit} requests; solver.daily_budget)")
            self.sent += 1
            try:
                return self._post(png_bytes)
            except _Retry as retry:
                reason = retry.reason
                if attempt < self.max_retries:
                    backoff = min(self.backoff_s * 2 ** attempt, self.max_backoff_s)
                    time.sleep(max(backoff, retry.wait_s or 0.0))
        return Reading(None, error=f"{reason} (gave up after {self.max_retries + 1} attempts)")

    def _post(self, png_bytes: bytes) -> Reading:
        """One request: a Reading, or _Retry for what is worth trying again."""
        try:
            response = self.session.post(self.url, data=self.form, headers={"apikey": self._key},
                                         files={"file": ("captcha.png", png_bytes, "image/png")},
                                         timeout=self.timeout_s)
        except requests.Timeout:
            raise _Retry("timeout") from None
        except requests.ConnectionError:
            raise _Retry("connection error") from None
        status = response.status_code
        if status in (401, 403):
            return Reading(None, error=f"refused: HTTP {status} (check {KEY_VARIABLE})")
        if status == 429 or status >= 500:
            raise _Retry(f"HTTP {status}", _retry_after(response))
        # A malformed success (not JSON, or JSON without the parsed text) is what proxies and
        # overloaded servers send for a moment: retried like a 5xx, within the same budget.
        try:
            body = response.json()
        except ValueError:
            if status >= 400:
                return Reading(None, error=f"HTTP {status}, not JSON")
            raise _Retry(f"malformed response (HTTP {status}, not JSON)") from None
        if _is_rate_limit_message(body):
            raise _Retry("rate limited by the service", _retry_after(response))
        if status >= 400:
            return Reading(None, error=f"HTTP {status}: {_message(body) if isinstance(body, dict) else str(body)[:100]}")
        if not isinstance(body, dict):
            raise _Retry(f"malformed response (HTTP {status}): {str(body)[:100]}")
        if body.get("IsErroredOnProcessing") or body.get("OCRExitCode") not in (1, 2):
            return Reading(None, error=f"processing error (OCRExitCode {body.get('OCRExitCode')}): {_message(body)}")
        try:
            return Reading(str(body["ParsedResults"][0]["ParsedText"]))
        except (KeyError, IndexError, TypeError):
            raise _Retry("malformed response (no ParsedResults[0].ParsedText)") from None


def _retry_after(response: requests.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def _message(body: dict) -> str:
    message = body.get("ErrorMessage") or body.get("ErrorDetails") or ""
    return "; ".join(map(str, message)) if isinstance(message, list) else str(message)
