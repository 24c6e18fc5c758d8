"""isic's two stages through the real commands on the demo (slow, ``-m slow``): ``scripts/sweep.py train`` and
``oof`` train the image model on 3 patient-grouped folds, ``medbundle tabular`` stacks the trees on its
out-of-fold score, the ensemble bundle scores the test crops with the fold models and ``medbundle tabular_predict``
writes the submission. The demo's metadata is drawn consistently with its lesions, so the trees with the image
score must beat both the image model and the trees without it, out of fold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from medbundle.demo import write_isic_demo

pytestmark = pytest.mark.slow
pytest.importorskip("lightgbm")
REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "PAGER": "cat"}
TINY = ["--models", "resnet10t", "--pretrained", "False", "--image_size", "[48,48]", "--n_folds", "3",
        "--num_workers", "0", "--val_interval", "1", "--min_epochs", "0", "--data_fraction", "1.0", "--epochs", "3"]  # fmt: skip


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=1800,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    root = tmp_path_factory.mktemp("two_stages")
    data, sweep = root / "data", root / "runs" / "cv"
    write_isic_demo(data, n_patients=150, positive_rate=0.05, n_test=60, size_range=(40, 56), seed=5)
    run("scripts/sweep.py", "train", "--bundle", "bundles/isic", "--folds", "0,1,2", "--runs_dir", str(root / "runs"),
        "--name", "cv", "--dataset_dir", str(data), *TINY)  # fmt: skip
    run("scripts/sweep.py", "oof", "--runs", str(sweep), "--num_workers", "0")
    run("-m", "medbundle", "tabular", "--dataset_dir", str(data), "--oof", str(sweep), "--out", str(root / "tabular"))
    run("-m", "monai.bundle", "run", "--config_file", "bundles/ensemble/configs/inference.yaml", "--task", "isic",
        "--checkpoints", str(sweep), "--dataset_dir", str(data), "--output_dir", str(root / "ensemble"),
        "--num_workers", "0")  # fmt: skip
    submission = run("-m", "medbundle", "tabular_predict", "--model", str(root / "tabular"), "--dataset_dir", str(data),
                     "--image_scores", str(root / "ensemble" / "submission.csv")).strip()  # fmt: skip
    return root, Path(submission)


def test_the_trees_with_the_image_score_beat_the_image_model_and_the_trees_alone(stages):
    root, _ = stages
    entries = json.loads((root / "tabular" / "report.json").read_text())["entries"]
    print("\n" + "\n".join(f"{name}: pAUC {v['pauc']:.4f} AUROC {v['auroc']:.4f}" for name, v in entries.items()))
    for combined in ("tabular+image", "blend"):
        assert entries[combined]["pauc"] > entries["image"]["pauc"], combined
        assert entries[combined]["pauc"] > entries["tabular"]["pauc"], combined


def test_the_submission_scores_every_test_lesion_in_the_test_csv_order(stages):
    root, submission = stages
    written = pd.read_csv(submission, dtype={"isic_id": str})
    test = pd.read_csv(root / "data" / "test-metadata.csv", dtype={"isic_id": str})
    assert written["isic_id"].tolist() == test["isic_id"].tolist()
    assert written["target"].between(0, 1).all()
