"""An OCR solver over the fixed test set: the same CAPTCHAs and noise as the CNN, the same
predictions table (plus `raw_text`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm import tqdm

from captcha_robustness.data.datamodule import CaptchaDataModule
from captcha_robustness.models.module import digit_strings
from captcha_robustness.results.schema import in_column_order
from captcha_robustness.results.stats import position_hits, summarize
from captcha_robustness.solvers.base import OcrSolver, Preprocess, postprocess


def ocr_predictions(solver: OcrSolver, preprocess: Preprocess, keep: str, datamodule: CaptchaDataModule, *,
                    noise_type: str, seed: int) -> pd.DataFrame:
    parts = []
    for batch in tqdm(datamodule.test_dataloader(), desc=solver.name, unit="batch"):
        readings = solver.read([preprocess(image) for image in batch["image"]])
        parts.append(pd.DataFrame({
            "captcha_id": batch["captcha_id"].numpy(),
            "noise_level": batch["noise_level"].double().round(decimals=6).numpy(),
            "label": digit_strings(batch["label"]),
            "raw_text": pd.Series([r.raw_text for r in readings], dtype="string"),
            "confidence": pd.Series([r.confidence for r in readings], dtype="float64"),
            "error": pd.Series([r.error for r in readings], dtype="string"),
            "ssim": batch["ssim"].double().numpy() if "ssim" in batch else np.nan,
        }))
    table = pd.concat(parts, ignore_index=True)
    table["prediction"] = [postprocess(None if pd.isna(t) else t, keep) for t in table["raw_text"]]
    table["correct"] = table["prediction"] == table["label"]
    table["n_correct"] = position_hits(table["label"], table["prediction"]).sum(axis=1).astype("int64")
    table = table.assign(solver=solver.name, model_id=solver.model_id, train_noise=pd.Series(dtype="string"),
                         architecture=solver.name, noise_type=noise_type, seed=seed,
                         layout=datamodule.render_cfg.layout,
                         surrogate=pd.Series([None] * len(table), dtype="string"))
    return in_column_order(table)


def ocr_metrics(table: pd.DataFrame) -> dict[str, float]:
    """The CNN's test metrics, computed from the rows, plus the share of CAPTCHAs answered."""
    stats = summarize(table)
    metrics = {f"test/{k}": round(float(v), 6) for k, v in stats.items() if k.startswith("acc_") and "_ci_" not in k}
    metrics["test/answered"] = round(float(table["error"].isna().mean()), 6)
    return metrics
