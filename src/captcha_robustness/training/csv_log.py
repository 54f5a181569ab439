"""Lightning's CSV logger, except that a resumed run keeps the rows logged before it.

Lightning's writer deletes `metrics.csv` when it finds it, so a run resumed from
`checkpoints/last.ckpt` in its own folder lost the history of every epoch before the
interruption. This writer keeps the file and its header; at its first save it drops only the
rows from the step its new rows start at onwards: those the interrupted run logged after its
last checkpoint, which the resumed run logs again."""

from __future__ import annotations

import csv

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.loggers import CSVLogger as LightningCSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter


class HistoryKeepingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:  # Lightning's deletes metrics.csv here
        self._earlier_rows = self._fs.isfile(self.metrics_file_path)
        if self._earlier_rows:
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])

    def save(self) -> None:
        if self._earlier_rows and self.metrics:
            self._drop_rows_from(min(row["step"] for row in self.metrics))
            self._earlier_rows = False
        super().save()

    def _drop_rows_from(self, step: int) -> None:
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            rows = [row for row in csv.DictReader(file) if float(row["step"]) < step]
        with self._fs.open(self.metrics_file_path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(rows)


class CSVLogger(LightningCSVLogger):
    """`metrics.csv` under `save_dir/name/version`, kept across a resume in the same folder."""

    @property
    @rank_zero_experiment
    def experiment(self) -> HistoryKeepingWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = HistoryKeepingWriter(log_dir=self.log_dir)
        return self._experiment
