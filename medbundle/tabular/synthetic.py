"""A synthetic ISIC 2024 training table of any size, for benchmarks and tests of the tabular stage.

Why: the feature build and the tree models are timed on the size of the real ``train-metadata.csv`` (401,059 lesions
of 1,042 patients, ~400 malignant), and rendering that many demo images would take hours. This table resamples the
rows of a small rendered demo (:func:`medbundle.demo.isic.write_isic_demo`, whose metadata is measured on its images)
with noise:

- a patient's benign lesions are noisy copies of the benign lesions of one demo patient, its template, so they look
  alike as a real patient's nevi do;
- malignant lesions are noisy copies of the demo's malignant ones (diagnosis columns included), so the target can be
  learned from the metadata and the malignant lesion stands out among its patient's lesions (the "ugly duckling").

Lesion counts per patient are skewed as in the real data (a few patients with thousands of lesions).
"""

from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd

from medbundle.demo.isic import TRAIN_COLUMNS, write_isic_demo
from medbundle.tabular.features import NUMERIC_COLUMNS

__all__ = ["synthetic_isic_table"]

_PATIENT_COLUMNS = ("age_approx", "sex", "tbp_tile_type", "attribution", "copyright_license")
# measured on each lesion: multiplied by a little log-normal noise in every copy
_MEASURED_COLUMNS = tuple(c for c in NUMERIC_COLUMNS if c not in ("age_approx", "tbp_lv_symm_2axis_angle"))
_NOISE = 0.05
_DEMO_PATIENTS = 40


def synthetic_isic_table(
    n_rows: int = 401_059, n_patients: int = 1_042, n_positive: int = 400, seed: int = 0
) -> pd.DataFrame:
    """A training metadata table in the ISIC 2024 layout (:data:`~medbundle.demo.isic.TRAIN_COLUMNS`).

    Takes about a second plus ~1 s per 100,000 rows on two CPU cores; the same arguments give the same table.

    Args:
        n_rows: lesions (rows).
        n_patients: patients, each with at least one lesion; at most `n_rows`.
        n_positive: malignant lesions (``target`` 1), at random rows; at most `n_rows`.
        seed: random seed, of the demo it resamples too.

    Returns:
        The table, sorted by ``isic_id`` like the real file, with a fresh index.
    """
    if not 1 <= n_patients <= n_rows:
        raise ValueError(f"n_patients must be in [1, n_rows={n_rows}], got {n_patients}")
    if not 0 <= n_positive <= n_rows:
        raise ValueError(f"n_positive must be in [0, n_rows={n_rows}], got {n_positive}")
    with tempfile.TemporaryDirectory() as folder:
        demo = write_isic_demo(
            folder, seed=seed, n_patients=_DEMO_PATIENTS, positive_rate=0.1, n_test=0, size_range=(32, 48)
        )
        source = pd.read_csv(demo["train_csv"])
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0.0, 1.2, n_patients)
    counts = 1 + rng.multinomial(n_rows - n_patients, weights / weights.sum())
    patient = np.repeat(np.arange(n_patients), counts)
    positive = np.zeros(n_rows, bool)
    positive[rng.choice(n_rows, n_positive, replace=False)] = True

    benign = source[source["target"] == 0]
    templates = benign.groupby("patient_id").indices  # demo patient -> positions of its benign rows in `benign`
    template_ids = sorted(templates)
    template = rng.integers(len(template_ids), size=n_patients)
    template_rows = [benign.index[templates[template_ids[t]]].to_numpy() for t in template]
    picked = np.concatenate([rows[rng.integers(len(rows), size=n)] for rows, n in zip(template_rows, counts)])
    malignant = source.index[source["target"] == 1].to_numpy()
    picked[positive] = rng.choice(malignant, int(positive.sum()))

    table = source.loc[picked].reset_index(drop=True)
    heads = source.loc[[rows[0] for rows in template_rows], list(_PATIENT_COLUMNS)].reset_index(drop=True)
    for column in _PATIENT_COLUMNS:
        table[column] = heads[column].to_numpy()[patient]
    table[list(_MEASURED_COLUMNS)] *= np.exp(rng.normal(0.0, _NOISE, (n_rows, len(_MEASURED_COLUMNS))))
    patient_numbers = rng.choice(10**7, n_patients, replace=False)
    table["patient_id"] = pd.Series(patient_numbers[patient]).map("IP_{:07d}".format)
    image_numbers = pd.Series(rng.choice(10**7, n_rows, replace=False))
    table["isic_id"] = image_numbers.map("ISIC_{:07d}".format)
    table["lesion_id"] = image_numbers.map("IL_{:07d}".format).where(table["lesion_id"].notna())
    table["target"] = positive.astype(int)
    return table.sort_values("isic_id", ignore_index=True)[list(TRAIN_COLUMNS)]
