"""Tests of TwoStageFineTuning with a real MONAI SupervisedTrainer: freezing, optimizers, schedule, resume."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch
from ignite.engine import Engine, Events
from monai.data import DataLoader
from monai.engines import SupervisedTrainer
from monai.handlers import CheckpointLoader
from monai.utils import set_determinism

from medbundle.handlers.two_stage import TwoStageFineTuning
from medbundle.networks import TimmClassifier

STAGE1_LR, BACKBONE_LR, HEAD_LR, ETA_MIN = 1e-4, 5e-6, 3e-5, 1e-7
LOGGER = "medbundle.handlers.two_stage"


@pytest.fixture(autouse=True)
def _one_thread():
    """The tiny model gains nothing from threads, and spinning threads crawl on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _data() -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(8, 1, 32, 32, generator=generator)
    labels = torch.randint(0, 5, (8,), generator=generator)
    return [{"image": image, "label": label} for image, label in zip(images, labels)]


def _network(seed: int = 0) -> TimmClassifier:
    set_determinism(seed=seed)
    return TimmClassifier("resnet10t", num_classes=5, in_chans=1, head="mlp")


def _trainer(net: torch.nn.Module, handler: TwoStageFineTuning, max_epochs: int,
             evaluator: Engine | None = None) -> SupervisedTrainer:  # fmt: skip
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=max_epochs,
        train_data_loader=DataLoader(_data(), batch_size=4),
        network=net,
        optimizer=handler.optimizer,
        loss_function=torch.nn.CrossEntropyLoss(),
    )
    handler.attach(trainer, evaluator)
    return trainer


def _named_lrs(optimizer: torch.optim.Optimizer) -> tuple[float, float]:
    """(backbone, head) learning rates of an optimizer's named groups; 0 for a frozen backbone."""
    lrs = {group["name"]: group["lr"] for group in optimizer.param_groups}
    return lrs.get("backbone", 0.0), lrs["head"]


def _record(trainer: Engine, net: TimmClassifier) -> dict[int, dict]:
    """Per epoch: the stage, learning rates and optimizer the trainer used, and the weights after the epoch."""
    seen: dict[int, dict] = {}

    @trainer.on(Events.EPOCH_COMPLETED)
    def _(engine: Engine) -> None:
        seen[engine.state.epoch] = {
            "stage": 2 if isinstance(engine.optimizer, torch.optim.AdamW) else 1,
            "lrs": _named_lrs(engine.optimizer),
            "group_lrs": sorted({group["lr"] for group in engine.optimizer.param_groups}),
            "optimizer": type(engine.optimizer).__name__,
            "backbone": {k: v.clone() for k, v in net.backbone.state_dict().items()},
            "head": {k: v.clone() for k, v in net.head.state_dict().items()},
        }

    return seen


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _cosine(base: float, step: int, t_max: int = 2) -> float:
    return ETA_MIN + (base - ETA_MIN) * (1 + math.cos(math.pi * step / t_max)) / 2


@pytest.mark.parametrize("freeze", ["requires_grad", "optimizer"])
def test_stage1_trains_the_head_only_and_stage2_the_whole_network(freeze: str, caplog) -> None:
    net = _network()
    initial_backbone = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    initial_head = {k: v.clone() for k, v in net.head.state_dict().items()}
    with caplog.at_level(logging.INFO, logger=LOGGER):
        handler = TwoStageFineTuning(net, stage1_epochs=2, stage2_epochs=2, freeze=freeze)
        trainer = _trainer(net, handler, max_epochs=4)
        seen = _record(trainer, net)
        trainer.run()

    assert _equal(seen[2]["backbone"], initial_backbone)  # weights and BatchNorm statistics bit-identical
    assert not _equal(seen[2]["head"], initial_head)
    assert not _equal(seen[4]["backbone"], initial_backbone)
    assert [seen[e]["optimizer"] for e in (1, 2, 3, 4)] == ["Adam", "Adam", "AdamW", "AdamW"]
    assert trainer.optimizer is handler.optimizer
    assert [seen[e]["stage"] for e in (1, 2, 3, 4)] == [1, 1, 2, 2]
    assert seen[1]["lrs"] == seen[2]["lrs"] == (0.0, STAGE1_LR)
    assert seen[3]["lrs"] == (BACKBONE_LR, HEAD_LR)
    assert seen[4]["lrs"] == pytest.approx((_cosine(BACKBONE_LR, 1), _cosine(HEAD_LR, 1)), rel=1e-9)
    assert seen[4]["group_lrs"] == pytest.approx(sorted(seen[4]["lrs"]), rel=1e-12)  # exactly two distinct lrs

    head, total = sum(p.numel() for p in net.head.parameters()), sum(p.numel() for p in net.parameters())
    assert f"stage 1: freezing the backbone: trainable parameters {head:,} / {total:,}" in caplog.text
    assert (
        f"stage 2: unfreezing the backbone: trainable parameters {total:,} / {total:,} (100.00%); AdamW backbone lr "
        f"5.00e-06 ({total - head:,} params), head lr 3.00e-05 ({head:,} params), weight decay 0.01, cosine to 1e-07 "
        "over 2 epochs"
    ) in caplog.text
    assert "epoch 4, stage 2: lr backbone" in caplog.text


def test_stage2_weight_decay_follows_timm_convention() -> None:
    net = _network()
    handler = TwoStageFineTuning(net, stage1=False)
    decayed = {id(p) for g in handler.optimizer.param_groups if g["weight_decay"] == 0.01 for p in g["params"]}
    assert id(net.head.fc1.weight) in decayed and id(net.backbone.conv1[0].weight) in decayed
    assert id(net.head.fc1.bias) not in decayed and id(net.backbone.bn1.weight) not in decayed
    assert {g["name"] for g in handler.optimizer.param_groups} == {"backbone", "head"}


def test_optimizer_freeze_keeps_requires_grad_and_batchnorm_frozen() -> None:
    net = _network()
    handler = TwoStageFineTuning(net, freeze="optimizer", stage2=False)
    assert all(p.requires_grad for p in net.parameters())
    optimized = {id(p) for g in handler.optimizer.param_groups for p in g["params"]}
    assert optimized == {id(p) for p in net.head.parameters()}
    net.train()
    assert not any(m.training for m in net.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize(
    "resume_after, stage1_schedule",
    [(2, "constant"), (4, "constant"), (1, "cosine"), (2, "cosine")],
    ids=["at_the_boundary", "mid_stage2", "mid_cosine_stage1", "at_the_boundary_after_a_cosine_stage1"],
)
def test_resume_continues_like_an_uninterrupted_run(resume_after: int, stage1_schedule: str, tmp_path: Path) -> None:
    settings = {"stage1_epochs": 2, "stage2_epochs": 3, "stage1_schedule": stage1_schedule}
    net = _network()
    full_trainer = _trainer(net, TwoStageFineTuning(net, **settings), max_epochs=5)
    full = _record(full_trainer, net)
    full_trainer.run()

    net = _network()
    handler = TwoStageFineTuning(net, **settings)
    first = _trainer(net, handler, max_epochs=resume_after)
    first.run()
    path = tmp_path / "last.pt"
    checkpoint = {"model": net.state_dict(), "trainer": first.state_dict(), "two_stage": handler.state_dict()}
    torch.save(checkpoint, path)
    assert torch.load(path, weights_only=True)["two_stage"]["stage"] == (1 if resume_after <= 2 else 2)

    net = _network(seed=1)  # different weights: everything must come from the checkpoint
    handler = TwoStageFineTuning(net, **settings)
    trainer = _trainer(net, handler, max_epochs=5)
    # MONAI's loader restores at the trainer's STARTED event, with torch.load(weights_only=True)
    CheckpointLoader(str(path), {"model": net, "trainer": trainer, "two_stage": handler}).attach(trainer)
    resumed = _record(trainer, net)
    trainer.run()

    assert list(resumed) == list(range(resume_after + 1, 6))
    for epoch in resumed:
        assert resumed[epoch]["stage"] == full[epoch]["stage"]
        assert resumed[epoch]["lrs"] == full[epoch]["lrs"]
        assert resumed[epoch]["group_lrs"] == full[epoch]["group_lrs"]
        assert _equal(resumed[epoch]["backbone"], full[epoch]["backbone"])
        assert _equal(resumed[epoch]["head"], full[epoch]["head"])


def _run_lrs(handler: TwoStageFineTuning, max_epochs: int) -> list[tuple[int, float, float]]:
    """(stage, lr_backbone, lr_head) of each epoch, with an engine that does not train."""
    engine = Engine(lambda e, batch: None)
    handler.attach(engine)
    seen = []
    engine.add_event_handler(
        Events.EPOCH_COMPLETED,
        lambda e: seen.append((handler.stage, *handler.learning_rates())),
    )
    engine.run([0], max_epochs=max_epochs)
    assert engine.optimizer is handler.optimizer
    return seen


def test_stage2_only_trains_everything_from_the_start_and_keeps_eta_min_after_the_schedule() -> None:
    net = _network()
    handler = TwoStageFineTuning(net, stage1=False, stage2_epochs=2)
    assert isinstance(handler.optimizer, torch.optim.AdamW) and all(p.requires_grad for p in net.parameters())
    seen = _run_lrs(handler, max_epochs=4)
    assert [s for s, _, _ in seen] == [2, 2, 2, 2]
    assert [h for _, _, h in seen] == pytest.approx([HEAD_LR, _cosine(HEAD_LR, 1), ETA_MIN, ETA_MIN], rel=1e-9)
    backbone = [BACKBONE_LR, _cosine(BACKBONE_LR, 1), ETA_MIN, ETA_MIN]
    assert [b for _, b, _ in seen] == pytest.approx(backbone, rel=1e-9)


def test_stage1_cosine_anneals_the_heads_lr_over_stage1_then_stage2_follows_its_own(caplog) -> None:
    net = _network()
    handler = TwoStageFineTuning(net, stage1_epochs=3, stage2_epochs=2, stage1_schedule="cosine", stage2_warmup_epochs=0)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        seen = _run_lrs(handler, max_epochs=6)
    assert [s for s, _, _ in seen] == [1, 1, 1, 2, 2, 2]
    stage1 = [STAGE1_LR, _cosine(STAGE1_LR, 1, 3), _cosine(STAGE1_LR, 2, 3)]
    assert [h for _, _, h in seen] == pytest.approx([*stage1, HEAD_LR, _cosine(HEAD_LR, 1), ETA_MIN], rel=1e-9)
    assert [b for _, b, _ in seen] == pytest.approx([0, 0, 0, BACKBONE_LR, _cosine(BACKBONE_LR, 1), ETA_MIN], rel=1e-9)
    assert "Adam lr 1.00e-04, cosine to 1e-07 over 3 epochs, no weight decay" in caplog.text

    only = TwoStageFineTuning(_network(), stage1_epochs=2, stage2=False, stage1_schedule="cosine")
    assert [h for _, _, h in _run_lrs(only, max_epochs=4)] == pytest.approx(
        [STAGE1_LR, _cosine(STAGE1_LR, 1), ETA_MIN, ETA_MIN], rel=1e-9
    )


def test_stage1_only_never_unfreezes() -> None:
    net = _network()
    handler = TwoStageFineTuning(net, stage1_epochs=1, stage2=False)
    assert _run_lrs(handler, max_epochs=3) == [(1, 0.0, STAGE1_LR)] * 3
    assert isinstance(handler.optimizer, torch.optim.Adam)
    assert not any(p.requires_grad for p in net.backbone.parameters())
    assert handler.state_dict()["scheduler"] == {}


def test_summary_writer_gets_both_learning_rates_per_epoch() -> None:
    class Writer:
        def __init__(self) -> None:
            self.scalars: list[tuple[str, float, int]] = []

        def add_scalar(self, tag: str, value: float, step: int) -> None:
            self.scalars.append((tag, value, step))

    writer = Writer()
    _run_lrs(TwoStageFineTuning(_network(), stage1_epochs=1, stage2_epochs=2, summary_writer=writer), max_epochs=2)
    assert writer.scalars == [
        ("lr_backbone", 0.0, 1),
        ("lr_head", STAGE1_LR, 1),
        ("lr_backbone", BACKBONE_LR, 2),
        ("lr_head", HEAD_LR, 2),
    ]


def test_load_state_dict_switches_stage_and_the_trainer_optimizer() -> None:
    source = TwoStageFineTuning(_network(), stage1=False, stage2_epochs=4)
    _run_lrs(source, max_epochs=2)  # one scheduler step
    net = _network()
    handler = TwoStageFineTuning(net, stage2_epochs=4)
    engine = Engine(lambda e, batch: None)
    handler.attach(engine)
    assert handler.stage == 1 and not any(p.requires_grad for p in net.backbone.parameters())
    handler.load_state_dict(source.state_dict())
    assert handler.stage == 2 and all(p.requires_grad for p in net.parameters())
    assert engine.optimizer is handler.optimizer and isinstance(engine.optimizer, torch.optim.AdamW)
    assert handler.learning_rates() == pytest.approx(source.learning_rates(), rel=1e-12)
    assert handler.scheduler.last_epoch == 1
    with pytest.raises(ValueError, match="stage 2, which this TwoStageFineTuning does not run"):
        TwoStageFineTuning(net, stage2=False).load_state_dict(source.state_dict())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"stage1": False, "stage2": False}, "enable at least one stage"),
        ({"stage1_epochs": 0}, "stage1_epochs must be >= 1"),
        ({"stage2_epochs": 0}, "stage2_epochs must be >= 1"),
        ({"stage2_head_lr": 0.0}, "stage2_head_lr must be positive"),
        ({"freeze": "bn"}, "unknown freeze mode 'bn'"),
        ({"stage2_warmup_epochs": -1}, "stage2_warmup_epochs must be >= 0"),
        ({"stage1_schedule": "step"}, "unknown stage1_schedule 'step'"),
    ],
)
def test_bad_settings_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TwoStageFineTuning(_network(), **kwargs)


def test_disabled_stage_needs_no_epochs_and_plain_networks_are_refused() -> None:
    TwoStageFineTuning(_network(), stage1=False, stage1_epochs=0)
    TwoStageFineTuning(_network(), stage2=False, stage2_epochs=0)
    with pytest.raises(ValueError, match="Linear has no freeze_backbone.*TimmClassifier"):
        TwoStageFineTuning(torch.nn.Linear(2, 2))


def test_wrapped_networks_are_unwrapped_and_ddp_needs_optimizer_freezing(tmp_path: Path) -> None:
    net = _network()
    assert TwoStageFineTuning(torch.nn.DataParallel(net)).network is net
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        ddp = torch.nn.parallel.DistributedDataParallel(net)
        with pytest.raises(ValueError, match="use freeze='optimizer'"):
            TwoStageFineTuning(ddp)
        handler = TwoStageFineTuning(ddp, stage1_epochs=1, stage2_epochs=1, freeze="optimizer")
        initial = {k: v.clone() for k, v in net.backbone.state_dict().items()}
        trainer = _trainer(ddp, handler, max_epochs=2)
        seen = _record(trainer, net)
        trainer.run()
    finally:
        torch.distributed.destroy_process_group()
    assert _equal(seen[1]["backbone"], initial) and not _equal(seen[2]["backbone"], initial)


def _enter_stage2(handler: TwoStageFineTuning) -> None:
    engine = Engine(lambda engine, batch: None)
    handler.attach(engine)
    engine.state.epoch = handler.stage1_epochs + 1
    handler.epoch_started(engine)


@pytest.mark.parametrize(
    "name", ["resnet10t", "convnext_atto", "test_efficientnet_gn"], ids=["batchnorm", "layernorm", "groupnorm"]
)
def test_entering_stage2_changes_nothing_the_network_computes(name: str) -> None:
    """What the stage-1 head learned on is what it gets at the first stage-2 step: BatchNorm keeps normalising with
    its running statistics (which stay put), LayerNorm and GroupNorm have none to lose."""
    torch.manual_seed(0)
    net = TimmClassifier(name, num_classes=3, pretrained=False, head="linear", drop_rate=0.0)
    images = 3 * torch.randn(4, 3, 64, 64) + 1  # far from the running statistics' initial 0 / 1
    handler = TwoStageFineTuning(net, stage1_epochs=1, stage2_epochs=1)
    stats = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    net.train()
    with torch.no_grad():
        stage1 = net(images)
    _enter_stage2(handler)
    net.train()
    with torch.no_grad():
        stage2 = net(images)
    torch.testing.assert_close(stage2, stage1)
    assert _equal({k: v for k, v in net.state_dict().items() if "running" in k}, stats)
    assert all(p.requires_grad for p in net.parameters())


def test_stage2_batchnorm_train_switches_to_batch_statistics() -> None:
    torch.manual_seed(0)
    net = TimmClassifier("resnet10t", num_classes=3, pretrained=False, head="linear", drop_rate=0.0)
    images = 3 * torch.randn(4, 3, 64, 64) + 1
    handler = TwoStageFineTuning(net, stage1_epochs=1, stage2_epochs=1, stage2_batchnorm="train")
    net.train()
    with torch.no_grad():
        stage1 = net(images)
    _enter_stage2(handler)
    net.train()
    assert all(m.training for m in net.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with torch.no_grad():
        assert not torch.allclose(net(images), stage1, atol=1e-3)
    with pytest.raises(ValueError, match="stage2_batchnorm"):
        TwoStageFineTuning(net, stage2_batchnorm="eval")


@pytest.mark.parametrize("warmup_epochs", [0, 1, 2])
def test_stage2_warmup_ramps_every_iteration_over_its_epochs_then_follows_the_schedule(warmup_epochs: int,
                                                                                       caplog) -> None:
    """2 iterations per epoch, stage 1 for one epoch, 3 stage-2 epochs: iteration i of the 2*W warm-up iterations
    trains at i/(2W) of its epoch's cosine learning rates; the epoch's log and TensorBoard get the full ones."""
    net = _network()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        handler = TwoStageFineTuning(net, stage1_epochs=1, stage2_epochs=3, stage2_warmup_epochs=warmup_epochs)
        trainer = _trainer(net, handler, max_epochs=4)
        used: list[tuple[int, tuple[float, float]]] = []
        trainer.add_event_handler(Events.ITERATION_STARTED,
                                  lambda engine: used.append((engine.state.epoch, _named_lrs(engine.optimizer))))  # fmt: skip
        seen = _record(trainer, net)
        trainer.run()

    scheduled = {2: 0, 3: 1, 4: 2}  # trainer epoch: cosine steps done
    expected = [(1, (0.0, STAGE1_LR))] * 2
    for epoch, step in scheduled.items():
        for i in (1, 2):
            done = (epoch - 2) * 2 + i
            share = done / (2 * warmup_epochs) if done <= 2 * warmup_epochs else 1.0
            expected.append((epoch, (share * _cosine(BACKBONE_LR, step, 3), share * _cosine(HEAD_LR, step, 3))))
    assert [epoch for epoch, _ in used] == [epoch for epoch, _ in expected]
    for (_, got), (_, want) in zip(used, expected):
        assert got == pytest.approx(want, rel=1e-9)
    for epoch, step in scheduled.items():  # after each epoch the optimizer holds the schedule's full rates again
        assert seen[epoch]["lrs"] == pytest.approx((_cosine(BACKBONE_LR, step, 3), _cosine(HEAD_LR, step, 3)), rel=1e-9)
    phrase = {0: "over 3 epochs; BatchNorm", 1: "warmed up over its first epoch;",
              2: "warmed up over its first 2 epochs;"}[warmup_epochs]  # fmt: skip
    assert phrase in caplog.text


def _scored_trainer(net: TimmClassifier, handler: TwoStageFineTuning, max_epochs: int,
                    scores: list[float]) -> SupervisedTrainer:  # fmt: skip
    """A trainer validated after every epoch by a stand-in for MONAI's evaluator (its key metric, its
    ``metric_cmp_fn``) whose key metric scores ``scores[epoch - 1]``, higher being better."""
    evaluator = Engine(lambda engine, batch: None)
    evaluator.metric_cmp_fn = lambda current, best: current > best
    evaluator.add_event_handler(Events.EPOCH_COMPLETED,
                                lambda e: e.state.metrics.update(score=scores[trainer.state.epoch - 1]))  # fmt: skip
    evaluator.add_event_handler(Events.STARTED, lambda e: setattr(e.state, "key_metric_name", "score"))
    trainer = _trainer(net, handler, max_epochs, evaluator)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: evaluator.run([0], max_epochs=1))
    return trainer


def _heads_at_epoch_start(trainer: Engine, net: TimmClassifier) -> dict[int, dict]:
    """The head each epoch starts training with (recorded after the handler's EPOCH_STARTED)."""
    seen: dict[int, dict] = {}
    trainer.add_event_handler(Events.EPOCH_STARTED,
                              lambda e: seen.update({e.state.epoch: {k: v.clone() for k, v in net.head.state_dict().items()}}))  # fmt: skip
    return seen


@pytest.mark.parametrize("scores, best_epoch", [([0.9, 0.6, 0.7], 1), ([0.5, 0.9, 0.7], 2), ([0.5, 0.6, 0.9], 3),
                                                ([0.9, 0.9, 0.5], 2), ([0.5, 0.9, 0.9], 3)],
                         ids=["first", "middle", "last", "tie_goes_to_the_later", "tie_with_the_last"])  # fmt: skip
def test_stage2_start_best_starts_stage2_from_the_best_validated_stage1_head(scores, best_epoch, caplog) -> None:
    net = _network()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        handler = TwoStageFineTuning(net, stage1_epochs=3, stage2_epochs=2, stage2_start="best")
        trainer = _scored_trainer(net, handler, 5, [*scores, 0.1, 0.1])
        after = _record(trainer, net)
        starts = _heads_at_epoch_start(trainer, net)
        trainer.run()

    assert best_epoch == 3 or not _equal(after[best_epoch]["head"], after[3]["head"])
    assert _equal(starts[4], after[best_epoch]["head"])  # stage 2 trains from the best stage-1 head
    assert _equal(after[3]["backbone"], after[1]["backbone"])  # stage 1 changed only the head
    if best_epoch == 3:
        assert "stage 2 starts from the head of stage-1 epoch 3, the best (0.9000)." in caplog.text
    else:
        assert f"stage 2 starts from the head of stage-1 epoch {best_epoch}, the best (0.9000), not from epoch 3's" \
            in caplog.text  # fmt: skip


def test_stage2_start_last_keeps_the_trained_head_and_needs_no_evaluator(caplog) -> None:
    net = _network()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        handler = TwoStageFineTuning(net, stage1_epochs=2, stage2_epochs=1)
        trainer = _scored_trainer(net, handler, 3, [0.9, 0.1, 0.1])
        after = _record(trainer, net)
        starts = _heads_at_epoch_start(trainer, net)
        trainer.run()
    assert _equal(starts[3], after[2]["head"]) and not _equal(starts[3], after[1]["head"])
    assert "stage 2 starts from" not in caplog.text
    TwoStageFineTuning(_network(), stage2_start="last").attach(Engine(lambda e, b: None))


@pytest.mark.parametrize("resume_after", [1, 2, 3, 4], ids=["before_the_best", "at_the_best", "at_the_boundary",
                                                            "in_stage2"])  # fmt: skip
def test_stage2_start_best_survives_a_resume(resume_after: int, tmp_path: Path) -> None:
    """Best stage-1 epoch 2 of 3: a run killed after any epoch resumes with the same weights as an uninterrupted
    run, the best head so far travelling in the handler's state."""
    settings = {"stage1_epochs": 3, "stage2_epochs": 2, "stage2_start": "best"}
    scores = [0.5, 0.9, 0.6, 0.7, 0.8]
    net = _network()
    full_trainer = _scored_trainer(net, TwoStageFineTuning(net, **settings), 5, scores)
    full = _record(full_trainer, net)
    full_trainer.run()

    net = _network()
    handler = TwoStageFineTuning(net, **settings)
    first = _scored_trainer(net, handler, resume_after, scores)
    first.run()
    path = tmp_path / "last.pt"
    torch.save({"model": net.state_dict(), "trainer": first.state_dict(), "two_stage": handler.state_dict()}, path)
    kept = torch.load(path, weights_only=True)["two_stage"]["best_head"]
    assert kept["epoch"] == {1: 1, 2: 2, 3: 2, 4: 2}[resume_after] and kept["metric"] == max(scores[:min(resume_after, 3)])

    net = _network(seed=1)
    handler = TwoStageFineTuning(net, **settings)
    trainer = _scored_trainer(net, handler, 5, scores)
    CheckpointLoader(str(path), {"model": net, "trainer": trainer, "two_stage": handler}).attach(trainer)
    resumed = _record(trainer, net)
    trainer.run()

    assert list(resumed) == list(range(resume_after + 1, 6))
    for epoch in resumed:
        assert _equal(resumed[epoch]["head"], full[epoch]["head"])
        assert _equal(resumed[epoch]["backbone"], full[epoch]["backbone"])


def test_stage2_start_best_needs_an_evaluator_and_says_when_nothing_was_validated(caplog) -> None:
    net = _network()
    handler = TwoStageFineTuning(net, stage1_epochs=1, stage2_epochs=1, stage2_start="best")
    with pytest.raises(ValueError, match=r"attach\(trainer, evaluator\)"):
        handler.attach(Engine(lambda e, b: None))
    with pytest.raises(ValueError, match="unknown stage2_start 'first'"):
        TwoStageFineTuning(net, stage2_start="first")
    TwoStageFineTuning(net, stage2=False, stage2_start="best").attach(Engine(lambda e, b: None))  # no stage 2: fine

    trainer = Engine(lambda e, b: None)
    handler.attach(trainer, Engine(lambda e, b: None))  # an evaluator that never runs: no stage-1 epoch validated
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        trainer.run([0], max_epochs=2)
    assert "no stage-1 epoch was validated: stage 2 starts from the head of epoch 1" in caplog.text
