"""OCR solvers: Tesseract for real, and the OCR.space client against a local server that speaks
its protocol (tests/ocrspace_server.py)."""

import os
import shutil
import time

import numpy as np
import pandas as pd
import pytest
import pytesseract
import torch
from PIL import Image, ImageDraw, ImageFont

from captcha_robustness.errors import ConfigError
from captcha_robustness.solvers.base import Preprocess, postprocess
from captcha_robustness.solvers.ocrspace import KEY_VARIABLE, OcrSpaceSolver, RateLimiter, api_key
from captcha_robustness.solvers.tesseract import TesseractSolver
from clitools import run
from ocrspace_server import FakeOcrSpace

KEY = "test-key-5f3a9c1e-never-written"
# .ci/run installs Tesseract and sets REQUIRE_TESSERACT=1, so there these tests never skip.
needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None and not os.environ.get("REQUIRE_TESSERACT"),
                                     reason="tesseract not installed (Debian: apt-get install tesseract-ocr)")


def typeset(text: str) -> Image.Image:
    image = Image.new("L", (420, 130), 255)
    ImageDraw.Draw(image).text((30, 20), text, fill=0, font=ImageFont.load_default(size=72))
    return image


@needs_tesseract
def test_tesseract_reads_typeset_digits():
    readings = TesseractSolver(psm=7).read([typeset("4027"), typeset("9135")])
    assert [r.raw_text for r in readings] == ["4027", "9135"]
    assert all(0.5 < r.confidence <= 1 and r.error is None for r in readings)


@needs_tesseract
def test_tesseract_s_thread_limit_does_not_leak_into_later_processes(monkeypatch):
    # A leaked OMP_THREAD_LIMIT=1 once deadlocked every later training subprocess of the suite.
    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    solver = TesseractSolver(psm=7, workers=2)
    assert solver.read([typeset("58")])[0].raw_text == "58"
    assert "OMP_THREAD_LIMIT" not in os.environ


def test_missing_tesseract_is_one_clear_message(monkeypatch):
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    with pytest.raises(ConfigError, match="^solver=tesseract: the tesseract program was not found; install it"):
        TesseractSolver()


def test_preprocessing_and_postprocessing():
    captcha = torch.zeros(1, 100, 110)
    captcha[0, 40:60, 50:60] = 1.0
    image = Preprocess(height=100, widen=1.5, border=10, binarize=0.5)(captcha)
    assert image.mode == "L" and image.size == (165 + 20, 100 + 20)
    pixels = torch.from_numpy(np.array(image))
    assert pixels.shape == (120, 185)
    assert pixels[0, 0] == 255 and pixels[60, 92] == 0  # dark ink on a light background
    assert set(pixels.unique().tolist()) <= {0, 255}
    assert postprocess("1 2\n3a4٣", "digits") == "1234" and postprocess("1 2\n3a", "raw") == "123a"
    assert postprocess(None, "digits") == ""
    with pytest.raises(ConfigError, match="ocr.widen"):
        Preprocess(widen=0)


def test_rate_limiter_spaces_requests():
    now, slept = [0.0], []

    def sleep(s):
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(per_minute=30, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        limiter.wait()
    assert slept == [2.0, 2.0]


def test_the_key_comes_from_the_environment_or_dotenv(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    with pytest.raises(ConfigError, match=f"^{KEY_VARIABLE}: not set"):
        api_key(tmp_path / ".env")
    (tmp_path / ".env").write_text(f"OTHER=1\nexport {KEY_VARIABLE}='from-dotenv'\n")
    assert api_key(tmp_path / ".env") == "from-dotenv"
    monkeypatch.setenv(KEY_VARIABLE, "from-env")
    assert api_key(tmp_path / ".env") == "from-env"


@pytest.fixture
def server():
    with FakeOcrSpace() as fake:
        yield fake


@pytest.fixture
def client(server, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, KEY)

    def make(**kwargs):
        settings = dict(url=server.url, timeout_s=0.5, max_requests_per_minute=6000, max_retries=2,
                        backoff_s=0.01, cache_dir=str(tmp_path / "cache"))
        return OcrSpaceSolver(**{**settings, **kwargs})

    return make


def image(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (20, 40), dtype=np.uint8), mode="L")


def test_a_request_speaks_the_protocol(server, client):
    reading = client(engine=2).read_one(image(0))
    assert reading.raw_text == "12 34\r\n" and reading.error is None
    request = server.requests[0]
    assert request["path"] == "/parse/image" and request["apikey"] == KEY
    fields = request["fields"]
    assert fields["file"].startswith(b"\x89PNG")
    assert {k: fields[k] for k in ("language", "OCREngine", "isOverlayRequired", "scale")} == {
        "language": b"eng", "OCREngine": b"2", "isOverlayRequired": b"false", "scale": b"true"}


@pytest.mark.parametrize("script, error, requests", [
    (["429", "ok"], None, 2),
    (["500", "ok"], None, 2),
    (["500", "500", "500"], "HTTP 500 (gave up after 3 attempts)", 3),
    (["timeout", "ok"], None, 2),
    (["timeout"] * 3, "timeout (gave up after 3 attempts)", 3),
    (["rate_limit_string", "ok"], None, 2),
    (["rate_limit_string"] * 3, "rate limited by the service (gave up after 3 attempts)", 3),
    (["malformed", "ok"], None, 2),  # a malformed success is retried like a 5xx ...
    (["no_results", "ok"], None, 2),
    (["malformed"] * 3, "malformed response (HTTP 200, not JSON) (gave up after 3 attempts)", 3),  # ... within budget
    (["no_results"] * 3, "malformed response (no ParsedResults[0].ParsedText) (gave up after 3 attempts)", 3),
    (["processing_error"], "processing error (OCRExitCode 3): Unable to recognize the file type", 1),
    (["403"], f"refused: HTTP 403 (check {KEY_VARIABLE})", 1),
])
def test_every_answer_becomes_the_right_row(server, client, script, error, requests):
    server.script = list(script)
    start = time.perf_counter()
    reading = client().read_one(image(1))
    if error is None:
        assert reading.raw_text == "12 34\r\n" and reading.error is None
    else:
        assert reading.raw_text is None and reading.error.startswith(error)
    assert len(server.requests) == requests
    if script[0] == "429":
        assert time.perf_counter() - start >= 1.0  # Retry-After: 1 honoured


def test_answers_are_cached_and_the_daily_budget_holds(server, client):
    solver = client(daily_budget=2)
    assert solver.read_one(image(2)).error is None
    assert client(daily_budget=2).read_one(image(2)).raw_text == "12 34\r\n"  # a new run: from the cache
    assert len(server.requests) == 1
    assert solver.read_one(image(3)).error is None
    over = solver.read_one(image(4))
    assert over.raw_text is None and over.error.startswith("daily budget used up (2 requests")
    assert len(server.requests) == 2


@pytest.mark.slow
@needs_tesseract
def test_captcha_eval_with_tesseract(tmp_path):
    result = run(tmp_path, "evaluate", "solver=tesseract", "data.test_size=6", "noise=salt_and_pepper",
                 "noise.level=0.1", "hydra.run.dir=tess")
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_parquet(tmp_path / "tess" / "predictions.parquet")
    assert len(table) == 6 and (table["solver"] == "tesseract").all()
    assert table["model_id"].str.startswith("tesseract-").all() and table["error"].isna().all()
    assert table["prediction"].str.fullmatch(r"\d*").all() and "raw_text" in table
    assert (table["noise_type"] == "salt_and_pepper").all() and (table["noise_level"] == 0.1).all()


@pytest.mark.slow
def test_captcha_eval_with_ocrspace_never_writes_the_key(server, tmp_path):
    server.script = ["ok", "processing_error", "ok", "429", "ok", "ok"]
    without_key = {k: v for k, v in os.environ.items() if k != KEY_VARIABLE}
    args = ["solver=ocrspace", f"solver.url={server.url}", "data.test_size=5", "solver.max_retries=1",
            "solver.backoff_s=0.01", "solver.max_requests_per_minute=6000", f"solver.cache_dir={tmp_path / 'cache'}",
            "hydra.run.dir=ocr"]
    result = run(tmp_path, "evaluate", *args, env={**without_key, KEY_VARIABLE: KEY})
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_parquet(tmp_path / "ocr" / "predictions.parquet")
    assert len(table) == 5 and (table["solver"] == "ocrspace").all()
    assert table["error"].notna().sum() == 1 and table["error"].dropna().iloc[0].startswith("processing error")
    assert (table.loc[table["error"].isna(), "prediction"] == "1234").all()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in result.stdout + result.stderr
    assert "no answer for 1 of 5 CAPTCHAs (most common reason, 1 times: processing error" in result.stdout

    server.script = ["processing_error"] * 3  # every request refused: no accuracy to report
    kept = [a for a in args if not a.startswith(("data.test_size", "solver.cache_dir", "hydra.run.dir"))]
    none = run(tmp_path, "evaluate", *kept, f"solver.cache_dir={tmp_path / 'cache2'}", "data.test_size=3",
               "hydra.run.dir=none", env={**without_key, KEY_VARIABLE: KEY})
    assert none.returncode == 2
    errors = [line for line in none.stderr.splitlines() if line.startswith("error:")]  # (after tqdm's progress bar)
    assert errors == [none.stderr.strip().splitlines()[-1]]
    assert errors[0].startswith("error: solver=ocrspace: none of the 3 CAPTCHAs was answered")
    assert pd.read_parquet(tmp_path / "none" / "predictions.parquet")["error"].notna().all()  # kept, and honest

    missing = run(tmp_path, "evaluate", "solver=ocrspace", "data.test_size=2", "hydra.run.dir=nokey", env=without_key)
    assert missing.returncode == 2 and missing.stderr.strip().startswith(f"error: {KEY_VARIABLE}: not set")
