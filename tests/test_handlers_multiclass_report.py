from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import FakeWriter
from monai.data import DataLoader
from monai.engines import SupervisedEvaluator
from monai.transforms import Activationsd

from medbundle.handlers import MulticlassReportHandler, metric_slug
from medbundle.metrics import ovr_auroc, per_class_sensitivity_specificity

NAMES = ["Viral Pneumonia", "Corona Virus Disease", "Normal"]


class Identity(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def evaluator(logits, labels, handler, patients=None):
    data = []
    for i, (row, label) in enumerate(zip(logits, labels)):
        item = {"image": torch.tensor(row, dtype=torch.float32).view(-1, 1, 1), "label": torch.tensor(label)}
        if patients is not None:
            item["patient_id"] = patients[i]
        data.append(item)
    return SupervisedEvaluator(
        device=torch.device("cpu"), val_data_loader=DataLoader(data, batch_size=3), network=Identity(),
        postprocessing=Activationsd(keys="pred", softmax=True), val_handlers=[handler],
    )


def test_per_class_scores_reach_the_metrics_and_tensorboard():
    rng = np.random.default_rng(1)
    labels = [0, 1, 2, 0, 1, 2, 0, 1, 2]
    logits = rng.normal(size=(9, 3)) + 1.5 * np.eye(3)[labels]
    writer = FakeWriter()
    engine = evaluator(logits, labels, MulticlassReportHandler(NAMES, summary_writer=writer))
    engine.run()
    probabilities = torch.softmax(torch.tensor(logits, dtype=torch.float32), 1).numpy()
    aurocs = ovr_auroc(labels, probabilities)
    sensitivity, specificity = per_class_sensitivity_specificity(labels, probabilities)
    for i, name in enumerate(NAMES):
        slug = metric_slug(name)
        assert engine.state.metrics[f"val_auroc_{slug}"] == pytest.approx(aurocs[i])
        assert engine.state.metrics[f"val_sensitivity_{slug}"] == pytest.approx(sensitivity[i])
        assert engine.state.metrics[f"val_specificity_{slug}"] == pytest.approx(specificity[i])
    assert set(writer.images) == {"val_roc_curves", "val_confusion_matrix"}
    assert all(image.shape[0] == 3 and image.dtype == np.uint8 for image, _ in writer.images.values())


def test_grouping_scores_the_mean_probabilities_of_each_patient():
    logits = np.log(np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.2, 0.2, 0.6]]))
    handler = MulticlassReportHandler(NAMES, group_key="patient_id")
    engine = evaluator(logits, [0, 0, 2, 2], handler, patients=["a", "a", "b", "b"])
    engine.run()
    # per patient: a -> (0.4, 0.4, 0.2) argmax class 0, b -> class 2: both right
    assert engine.state.metrics["val_sensitivity_viral_pneumonia"] == 1.0
    assert engine.state.metrics["val_sensitivity_normal"] == 1.0


def test_wrong_class_count_and_binary_models_are_named():
    with pytest.raises(ValueError, match="outputs 3 classes but class_names has 2"):
        evaluator(np.zeros((3, 3)), [0, 1, 2], MulticlassReportHandler(NAMES[:2])).run()
    binary = MulticlassReportHandler(NAMES)
    data = [{"image": torch.zeros(1, 1, 1), "label": torch.tensor([1.0])} for _ in range(2)]
    engine = SupervisedEvaluator(device=torch.device("cpu"), val_data_loader=DataLoader(data, batch_size=2),
                                 network=Identity(), postprocessing=Activationsd(keys="pred", sigmoid=True),
                                 val_handlers=[binary])
    with pytest.raises(ValueError, match="ROCThresholdHandler for a binary model"):
        engine.run()


def test_metric_slug_makes_metric_name_suffixes():
    assert metric_slug("Corona Virus Disease") == "corona_virus_disease"
    assert metric_slug(" COVID-19 (PCR) ") == "covid_19_pcr"


def test_an_evaluation_of_another_split_names_its_metrics_and_log_for_it(caplog):
    handler = MulticlassReportHandler(NAMES, prefix="test_", split="test")
    with caplog.at_level("INFO", logger="medbundle.handlers.multiclass_report"):
        engine = evaluator(np.eye(3), [0, 1, 2], handler)
        engine.run()
    assert engine.state.metrics["test_auroc_normal"] == 1.0
    assert "per-class test scores" in caplog.text
