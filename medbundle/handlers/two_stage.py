"""Two-stage fine-tuning: train the head on a frozen backbone, then the whole network with two learning rates."""

from __future__ import annotations

import logging
import re
import warnings
from typing import TYPE_CHECKING, Any

import torch
from ignite.engine import Engine, Events
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

__all__ = ["TwoStageFineTuning"]

FREEZE_MODES = ("requires_grad", "optimizer")
STAGE1_SCHEDULES = ("constant", "cosine")
STAGE2_BATCHNORM = ("frozen", "train")
STAGE2_STARTS = ("last", "best")
logger = logging.getLogger(__name__)


class TwoStageFineTuning:
    """Switch a :class:`~medbundle.networks.TimmClassifier` from head-only training to full fine-tuning.

    The medical fine-tuning recipe: images of a new domain meet an ImageNet backbone, so the randomly initialised
    head is first trained alone (stage 1) and only then is the backbone adapted, slowly (stage 2):

    - stage 1, epochs ``1..stage1_epochs``: backbone frozen (BatchNorm in eval mode, so its running statistics
      stay pretrained), ``Adam(lr=stage1_lr)`` on the head, no weight decay, a constant learning rate or
      (``stage1_schedule="cosine"``) ``CosineAnnealingLR(T_max=stage1_epochs, eta_min)``, one step per epoch;
    - stage 2, the next ``stage2_epochs``: ``AdamW`` with the backbone at ``stage2_backbone_lr`` and the head at
      ``stage2_head_lr``, weight decay ``stage2_weight_decay`` except on biases and normalisation weights, and
      ``CosineAnnealingLR(T_max=stage2_epochs, eta_min)``, one step per stage-2 epoch. Epochs beyond
      ``stage2_epochs`` run at ``eta_min``.

    **The stage boundary keeps what stage 1 learned.** The head of stage 1 learns on the features of a backbone
    whose BatchNorm layers normalise with their pretrained running statistics. Switched to train mode at the
    unfreeze, they would normalise with the statistics of each small batch of the new domain instead, and drift
    their running statistics towards them, so the features change under the head in one step: on real chest
    X-rays (``tf_efficientnet_lite0``, ImageNet weights, stage-2 learning rates 5e-6 / 3e-5) validation accuracy
    fell from 0.775 at the end of stage 1 to 0.61 and 0.49 in the first two stage-2 epochs, while the same run
    with BatchNorm kept in eval mode held 0.775 and its validation loss went on falling (0.69 to 0.59). So by
    default (``stage2_batchnorm="frozen"``) BatchNorm stays in eval mode in stage 2 too: its running statistics
    stay the pretrained ones, its affine weights train with the backbone. LayerNorm and GroupNorm (ConvNeXt, ViTs)
    keep no running statistics; the unfreeze changes nothing they compute. ``"train"`` restores the plain behaviour.

    The first stage is applied in ``__init__``, so :attr:`optimizer` can be given to the trainer. At every
    EPOCH_STARTED the handler enters the stage of the new epoch and points ``engine.optimizer`` at that
    stage's optimizer (MONAI's `SupervisedTrainer` reads it every iteration; AMP's `GradScaler` keeps
    per-optimizer state only within an iteration, so it accepts a new one). The scheduler step that follows a
    stage-2 epoch is taken when the next epoch starts: a checkpoint written at EPOCH_COMPLETED then holds the
    same state whichever handler runs first, and a resumed run continues the uninterrupted run's learning rates.

    Each stage is announced at its first epoch (trainable parameters, optimiser, learning rates); the
    learning rates each epoch trained with (backbone 0 while frozen) are logged when it completes and written
    to ``summary_writer`` as ``lr_backbone`` / ``lr_head`` — not to ``state.metrics``, whose stats handlers
    print four decimals, too few for 5e-6.

    Put this object, instead of the optimizer and scheduler, in the "last" checkpoint's ``save_dict`` and the
    resume ``load_dict``: ``load_state_dict`` re-enters the saved stage and restores its optimizer and
    scheduler. Bundle wiring::

        finetuning:
          _target_: medbundle.handlers.TwoStageFineTuning
          network: "@network"                  # DDP-wrapped in multi_gpu_train.yaml, with freeze: optimizer
          stage1_epochs: "@stage1_epochs"
          stage2_epochs: "@stage2_epochs"
          summary_writer: "@summary_writer"
        optimizer: "$@finetuning.optimizer"    # given to train#trainer; no lr_scheduler
        checkpoint:
          state: {model: "@network", finetuning: "@finetuning", trainer: "@train#trainer", ...}
        training:
          - "$@finetuning.attach(@train#trainer, @validate#evaluator)"
          - ...

    Args:
        network: a `TimmClassifier` (or a module with ``freeze_backbone``, ``unfreeze_backbone`` and a
            ``parameter_groups`` whose groups are named ``"backbone"``/``"head"``), possibly wrapped in
            `DistributedDataParallel` or `DataParallel`.
        stage1_epochs: epochs of stage 1.
        stage1_lr: learning rate of the head in stage 1.
        stage2_backbone_lr: initial learning rate of the backbone in stage 2.
        stage2_head_lr: initial learning rate of the head in stage 2.
        stage2_weight_decay: AdamW weight decay in stage 2.
        stage2_epochs: epochs of stage 2, the cosine schedule's ``T_max``.
        eta_min: learning rate the cosine schedules end at.
        stage1: run stage 1; when False every epoch is a stage-2 epoch.
        stage2: run stage 2; when False every epoch is a stage-1 epoch.
        freeze: how stage 1 keeps the backbone fixed. ``"requires_grad"`` turns its gradients off;
            ``"optimizer"`` leaves ``requires_grad`` alone and gives the optimizer only the head, for
            `DistributedDataParallel`, which fixes the parameters it synchronises when it is built (the
            backbone's gradients are then computed and synchronised but never applied). Either way the
            backbone's BatchNorm stays in eval mode and its weights are unchanged by stage 1.
        summary_writer: TensorBoard writer for ``lr_backbone`` / ``lr_head`` per epoch, if any.
        stage2_batchnorm: ``"frozen"``: the backbone's BatchNorm layers stay in eval mode in stage 2 (see above);
            ``"train"``: they follow the module's mode once the backbone is unfrozen.
        stage2_warmup_epochs: W, ramp the learning rates up linearly over the iterations of the first W stage-2
            epochs of n iterations (warm-up iteration i of W*n trains at i/(W*n) of its epoch's cosine value), so
            the backbone's first updates are small while its gradients still answer a head trained without them;
            0: no warm-up. Only after a stage 1: a network trained from its first epoch has no head to protect.
        stage1_schedule: ``"constant"`` (the seed recipe's) or ``"cosine"``: the head's learning rate follows a
            cosine from ``stage1_lr`` towards ``eta_min`` over the stage-1 epochs (with ``stage2=False``, epochs
            beyond ``stage1_epochs`` run at ``eta_min``), so stage 1 ends settled rather than still taking its
            largest steps; stage 2 starts from that head.
        stage2_start: the head stage 2 starts from. ``"last"``: the head of the last stage-1 epoch, as trained.
            ``"best"``: the head of the stage-1 epoch whose validation scored best by the evaluator's key metric
            (given to :meth:`attach`; a tie goes to the later epoch), so a head that overfits in its last stage-1
            epochs does not hand stage 2 a worse start than stage 1 reached; only the head changes in stage 1, so
            its weights are the whole difference. The choice is logged at the boundary.

    Raises:
        ValueError: when both stages are off, an enabled stage has fewer than 1 epoch, a learning rate is not
            positive, ``freeze`` is unknown, the network cannot freeze its backbone or name its parameter groups,
            or ``freeze="requires_grad"`` is combined with `DistributedDataParallel` and stage 1.
    """

    def __init__(
        self,
        network: nn.Module,
        stage1_epochs: int = 5,
        stage1_lr: float = 1e-4,
        stage2_backbone_lr: float = 5e-6,
        stage2_head_lr: float = 3e-5,
        stage2_weight_decay: float = 0.01,
        stage2_epochs: int = 15,
        eta_min: float = 1e-7,
        stage1: bool = True,
        stage2: bool = True,
        freeze: str = "requires_grad",
        summary_writer: SummaryWriter | None = None,
        stage2_batchnorm: str = "frozen",
        stage2_warmup_epochs: int = 1,
        stage1_schedule: str = "constant",
        stage2_start: str = "last",
    ) -> None:
        if not (stage1 or stage2):
            raise ValueError("stage1 and stage2 are both False: enable at least one stage.")
        if stage1 and stage1_epochs < 1:
            raise ValueError(f"stage1_epochs must be >= 1 when stage1 is enabled, got {stage1_epochs}.")
        if stage2_warmup_epochs < 0:
            raise ValueError(f"stage2_warmup_epochs must be >= 0 (0: no warm-up), got {stage2_warmup_epochs}.")
        if stage2 and stage2_epochs < 1:
            raise ValueError(
                f"stage2_epochs must be >= 1 when stage2 is enabled, got {stage2_epochs}; the bundles set it to "
                "epochs - stage1_epochs: raise --epochs, lower --stage1_epochs, or pass --stage2 False."
            )
        lrs = {"stage1_lr": stage1_lr, "stage2_backbone_lr": stage2_backbone_lr, "stage2_head_lr": stage2_head_lr}
        for name, lr in lrs.items():
            if lr <= 0:
                raise ValueError(f"{name} must be positive, got {lr}.")
        if stage1_schedule not in STAGE1_SCHEDULES:
            raise ValueError(f"unknown stage1_schedule {stage1_schedule!r}; use one of {STAGE1_SCHEDULES}.")
        if stage2_start not in STAGE2_STARTS:
            raise ValueError(f"unknown stage2_start {stage2_start!r}; use one of {STAGE2_STARTS}.")
        if freeze not in FREEZE_MODES:
            raise ValueError(f"unknown freeze mode {freeze!r}; use one of {FREEZE_MODES}.")
        if stage2_batchnorm not in STAGE2_BATCHNORM:
            raise ValueError(f"unknown stage2_batchnorm {stage2_batchnorm!r}; use one of {STAGE2_BATCHNORM}.")
        if freeze == "requires_grad" and stage1 and isinstance(network, nn.parallel.DistributedDataParallel):
            raise ValueError(
                "freeze='requires_grad' cannot be used with DistributedDataParallel, which fixes the parameters it "
                "synchronises when it is built: use freeze='optimizer'."
            )
        wrapped = isinstance(network, (nn.DataParallel, nn.parallel.DistributedDataParallel))
        module = network.module if wrapped else network
        needed = ("freeze_backbone", "unfreeze_backbone", "freeze_batchnorm", "parameter_groups")
        missing = [m for m in needed if not hasattr(module, m)]
        if missing:
            raise ValueError(
                f"network {type(module).__name__} has no {', '.join(missing)}: two-stage fine-tuning needs a "
                "medbundle.networks.TimmClassifier."
            )
        self.network = module
        self.stage1_epochs = stage1_epochs
        self.stage1_lr = stage1_lr
        self.stage2_backbone_lr = stage2_backbone_lr
        self.stage2_head_lr = stage2_head_lr
        self.stage2_weight_decay = stage2_weight_decay
        self.stage2_epochs = stage2_epochs
        self.eta_min = eta_min
        self.stage1 = stage1
        self.stage2 = stage2
        self.freeze = freeze
        self.summary_writer = summary_writer
        self.stage2_batchnorm = stage2_batchnorm
        self.stage2_warmup_epochs = stage2_warmup_epochs
        self.stage1_schedule = stage1_schedule
        self.stage2_start = stage2_start
        self._best_head: dict[str, Any] | None = None  # {"epoch", "metric", "state"} of the best stage-1 head so far
        self._warmup_lrs: list[float] | None = None  # the schedule's learning rates of a warm-up epoch
        self.stage = 0
        self._optimizer: Optimizer | None = None
        self._scheduler: CosineAnnealingLR | None = None
        self._engine: Engine | None = None
        self._logged_stage = 0
        self._enter_stage(1 if stage1 else 2)

    @property
    def optimizer(self) -> Optimizer:
        """The optimizer of the current stage."""
        return self._optimizer

    @property
    def scheduler(self) -> CosineAnnealingLR | None:
        """The cosine schedule of the current stage; None in a stage 1 at a constant learning rate."""
        return self._scheduler

    def stage_of_epoch(self, epoch: int) -> int:
        """The stage (1 or 2) that trainer epoch ``epoch`` (counted from 1) belongs to."""
        if not self.stage2 or (self.stage1 and epoch <= self.stage1_epochs):
            return 1
        return 2

    def learning_rates(self) -> tuple[float, float]:
        """Current learning rates of the backbone (0 while it is frozen) and of the head."""
        lrs: dict[str, float] = {}
        for group in self._optimizer.param_groups:
            lrs.setdefault(group["name"], group["lr"])
        return float(lrs.get("backbone", 0.0)), float(lrs["head"])

    def attach(self, engine: Engine, evaluator: Engine | None = None) -> None:
        """Make ``engine`` train with the current stage's optimizer and switch stages at its epoch boundaries.

        Args:
            engine: the trainer; its ``optimizer`` attribute is replaced at every stage switch.
            evaluator: the validation evaluator (a MONAI `Evaluator` with a key metric) whose scores pick the
                stage-1 head stage 2 starts from; needed with ``stage2_start="best"``.

        Raises:
            ValueError: when ``stage2_start="best"`` with both stages and no evaluator.
        """
        picks_best = self.stage2_start == "best" and self.stage1 and self.stage2
        if picks_best and evaluator is None:
            raise ValueError(
                "stage2_start='best' picks the stage-1 head by validation: attach(trainer, evaluator) with the "
                "validation evaluator, or use stage2_start='last'."
            )
        if picks_best:
            evaluator.add_event_handler(Events.EPOCH_COMPLETED, self.validation_completed)
        self._engine = engine
        engine.optimizer = self._optimizer
        engine.add_event_handler(Events.EPOCH_STARTED, self.epoch_started)
        engine.add_event_handler(Events.ITERATION_STARTED, self.iteration_started)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.epoch_completed)

    def epoch_started(self, engine: Engine) -> None:
        """Enter the epoch's stage, take the scheduler steps of the epochs done, publish the learning rates."""
        epoch = engine.state.epoch
        stage = self.stage_of_epoch(epoch)
        if stage != self.stage:
            if stage == 2 and self.stage2_start == "best":
                self._restore_best_head()
            self._enter_stage(stage)
        if self._scheduler is not None:
            if self.stage == 1:
                done, length = epoch - 1, self.stage1_epochs
            else:
                done, length = epoch - 1 - (self.stage1_epochs if self.stage1 else 0), self.stage2_epochs
            with warnings.catch_warnings():
                # after a resume the restored optimizer has not stepped in this process yet; the schedule is right
                warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()` before"))
                while self._scheduler.last_epoch < min(done, length):
                    self._scheduler.step()
        if self._logged_stage != self.stage:  # at the stage's first epoch, not when a resumed run passes through it
            self._log_stage()
            self._logged_stage = self.stage
        self._warmup_lrs = None
        if self.stage == 2 and self._will_warm_up() and epoch - self.stage1_epochs <= self.stage2_warmup_epochs:
            self._warmup_lrs = [group["lr"] for group in self._optimizer.param_groups]

    def validation_completed(self, evaluator: Engine) -> None:
        """After a stage-1 validation, keep a copy of the head when its key metric is at least the best kept so far.

        Runs at the evaluator's EPOCH_COMPLETED, so the trainer's "last" checkpoint of the epoch holds the copy and
        a resumed run starts stage 2 from the same head. A tie keeps the later, longer-trained head.
        """
        if self.stage != 1 or self._engine is None:
            return
        score = float(evaluator.state.metrics[evaluator.state.key_metric_name])
        best = self._best_head
        if best is not None and score != best["metric"] and not evaluator.metric_cmp_fn(score, best["metric"]):
            return
        head = {k: v.detach().to("cpu", copy=True) for k, v in self.network.head.state_dict().items()}
        self._best_head = {"epoch": int(self._engine.state.epoch), "metric": score, "state": head}

    def _restore_best_head(self) -> None:
        """Load the best stage-1 head into the network before stage 2 builds its optimizer; say which one."""
        last = self.stage1_epochs
        if self._best_head is None:
            logger.warning(
                "stage2_start='best' but no stage-1 epoch was validated: stage 2 starts from the head of epoch %d.", last
            )
            return
        best_epoch, metric = self._best_head["epoch"], self._best_head["metric"]
        if best_epoch == last:
            logger.info("stage 2 starts from the head of stage-1 epoch %d, the best (%.4f).", last, metric)
            return
        self.network.head.load_state_dict(self._best_head["state"])
        logger.info(
            "stage 2 starts from the head of stage-1 epoch %d, the best (%.4f), not from epoch %d's.",
            best_epoch,
            metric,
            last,
        )

    def _will_warm_up(self) -> bool:
        return self.stage2_warmup_epochs > 0 and self.stage1

    def iteration_started(self, engine: Engine) -> None:
        """In the warm-up epochs, scale the learning rates by the share of the warm-up's iterations begun."""
        if self._warmup_lrs is None:
            return
        n = max(1, engine.state.epoch_length or 1)
        done = (engine.state.epoch - self.stage1_epochs - 1) * n + (engine.state.iteration - 1) % n + 1
        for group, lr in zip(self._optimizer.param_groups, self._warmup_lrs):
            group["lr"] = lr * done / (self.stage2_warmup_epochs * n)

    def epoch_completed(self, engine: Engine) -> None:
        """Log the stage and the learning rates the epoch trained with (after a warm-up, the full ones)."""
        epoch = engine.state.epoch
        if self._warmup_lrs is not None:
            for group, lr in zip(self._optimizer.param_groups, self._warmup_lrs):
                group["lr"] = lr
            self._warmup_lrs = None
        lr_backbone, lr_head = self.learning_rates()
        logger.info("epoch %d, stage %d: lr backbone %.2e, head %.2e", epoch, self.stage, lr_backbone, lr_head)
        if self.summary_writer is not None:
            self.summary_writer.add_scalar("lr_backbone", lr_backbone, epoch)
            self.summary_writer.add_scalar("lr_head", lr_head, epoch)

    def state_dict(self) -> dict[str, Any]:
        """The stage, its optimizer and scheduler states (``{}`` without a scheduler) and, with
        ``stage2_start="best"``, the best stage-1 head so far, so a resumed stage 1 still starts stage 2 from it."""
        state = {
            "stage": self.stage,
            "optimizer": self._optimizer.state_dict(),
            "scheduler": self._scheduler.state_dict() if self._scheduler is not None else {},
        }
        if self._best_head is not None:
            state["best_head"] = self._best_head
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Re-enter the saved stage and restore its optimizer and scheduler; the trainer gets that optimizer.

        Raises:
            ValueError: when the saved stage is disabled in this handler.
        """
        stage = int(state_dict["stage"])
        if stage not in (1, 2) or not (self.stage1 if stage == 1 else self.stage2):
            raise ValueError(f"the checkpoint is in stage {stage}, which this TwoStageFineTuning does not run.")
        self._enter_stage(stage)
        self._best_head = state_dict.get("best_head")
        self._optimizer.load_state_dict(state_dict["optimizer"])
        if self._scheduler is not None:
            self._scheduler.load_state_dict(state_dict["scheduler"])
        logger.info("resumed stage %d: lr backbone %.2e, head %.2e", stage, *self.learning_rates())

    def _enter_stage(self, stage: int) -> None:
        """Freeze or unfreeze the backbone and build the stage's optimizer (and scheduler)."""
        net = self.network
        if stage == 1:
            net.freeze_backbone(keep_requires_grad=self.freeze == "optimizer")
            groups = [group for group in net.parameter_groups(self.stage1_lr) if group["name"] == "head"]
            optimizer = torch.optim.Adam(groups, lr=self.stage1_lr)
            scheduler = None
            if self.stage1_schedule == "cosine":
                scheduler = CosineAnnealingLR(optimizer, T_max=self.stage1_epochs, eta_min=self.eta_min)
        else:
            net.unfreeze_backbone()
            net.freeze_batchnorm(self.stage2_batchnorm == "frozen")
            groups = net.parameter_groups(
                self.stage2_head_lr, weight_decay=self.stage2_weight_decay, backbone_lr=self.stage2_backbone_lr
            )
            optimizer = torch.optim.AdamW(groups, lr=self.stage2_head_lr, weight_decay=self.stage2_weight_decay)
            scheduler = CosineAnnealingLR(optimizer, T_max=self.stage2_epochs, eta_min=self.eta_min)
        self.stage, self._optimizer, self._scheduler = stage, optimizer, scheduler
        if self._engine is not None:
            self._engine.optimizer = optimizer

    def _warmup_phrase(self) -> str:
        if not self._will_warm_up():
            return ""
        epochs = self.stage2_warmup_epochs
        return ", warmed up over its first epoch" if epochs == 1 else f", warmed up over its first {epochs} epochs"

    def _log_stage(self) -> None:
        counts = {"backbone": 0, "head": 0}
        for group in self._optimizer.param_groups:
            counts[group["name"]] += sum(p.numel() for p in group["params"])
        trainable, total = sum(counts.values()), sum(p.numel() for p in self.network.parameters())
        summary = f"trainable parameters {trainable:,} / {total:,} ({100 * trainable / total:.2f}%)"
        if self.stage == 1:
            schedule = "constant"
            if self._scheduler is not None:
                schedule = f"cosine to {self.eta_min:g} over {self.stage1_epochs} epochs"
            logger.info(
                "stage 1: freezing the backbone: %s; Adam lr %.2e, %s, no weight decay",
                summary,
                self.stage1_lr,
                schedule,
            )
        else:
            logger.info(
                "stage 2: unfreezing the backbone: %s; AdamW backbone lr %.2e (%s params), head lr %.2e (%s params), "
                "weight decay %g, cosine to %g over %d epochs%s; BatchNorm %s",
                summary,
                self.stage2_backbone_lr,
                f"{counts['backbone']:,}",
                self.stage2_head_lr,
                f"{counts['head']:,}",
                self.stage2_weight_decay,
                self.eta_min,
                self.stage2_epochs,
                self._warmup_phrase(),
                "kept in eval mode (pretrained statistics)" if self.stage2_batchnorm == "frozen" else "in train mode",
            )
