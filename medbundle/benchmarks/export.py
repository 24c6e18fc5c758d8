"""Inference runtimes on the CPU: eager PyTorch against TorchScript and ONNX Runtime from `medbundle.export`."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from medbundle.benchmarks.common import BUNDLES, best_seconds, bundle_parser
from medbundle.benchmarks.report import Report


def export_checkpoint(bundle: str, demo: bool, image_size: list[int] | None, path: Path) -> dict:
    """Write a randomly initialised checkpoint of the bundle's default (or demo.yaml) network, as training writes it;
    its stored settings.

    The settings are the bundle's own ``stored_config`` from train.yaml (plus demo.yaml), the network is
    ``network_def`` of inference.yaml built from them, so export and inference run exactly as for a trained model.
    """
    from monai.bundle import ConfigParser

    overrides = {"pretrained": False, **({"image_size": list(image_size)} if image_size else {})}
    settings = bundle_parser(bundle, demo=demo, **overrides).get_parsed_content("stored_config").values
    inference = ConfigParser()
    inference.read_config(str(BUNDLES / bundle / "configs" / "inference.yaml"))
    inference.update({"stored": settings})
    network = inference.get_parsed_content("network_def")
    thresholds = {"roc_threshold": 0.5, "pf1_threshold": 0.5, "auroc": 0.5, "best_auroc": 0.5}
    torch.save({"model": network.state_dict(), "config": settings, "thresholds": thresholds}, path)
    return settings


def _eager_runner(network: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return network(x)

    return run


def images_per_s(run: Callable[[torch.Tensor], object], batch: torch.Tensor, repeats: int) -> float:
    """Images/s of `run` on `batch`: 2 warm-up calls (TorchScript optimises on its first calls), best of `repeats`."""
    run(batch)
    run(batch)
    return len(batch) / best_seconds(lambda: run(batch), repeats)


def export(
    bundles: tuple[str, ...] = ("rsna", "chest_xray", "isic"),
    models: tuple[str, ...] = ("default", "demo"),
    batch_sizes: tuple[int, ...] = (1, 8),
    repeats: int = 5,
    threads: int | None = None,
    image_size: tuple[int, int] | None = None,
) -> Report:
    """Inference images/s on the CPU: eager PyTorch vs TorchScript vs ONNX Runtime, from `medbundle.export`.

        python scripts/benchmark.py export
        python scripts/benchmark.py export --bundles "[isic]" --models "[demo]" --image_size "[32,32]"

    Per bundle and model, a randomly initialised checkpoint (no pretrained weights) is exported by
    `medbundle.export.export_bundle` (parity-checked), then each runtime is timed on random batches of the
    model's input: 2 warm-up calls, then the best of `repeats`. Both runtimes get the same intra-op threads.

    Args:
        bundles: bundle folders under bundles/.
        models: "default" (train.yaml's backbone and image size) and/or "demo" (demo.yaml's: resnet10t, small).
        batch_sizes: batch sizes to time.
        repeats: timed calls per runtime and batch size.
        threads: intra-op threads of torch and ONNX Runtime; default torch's (the CPU cores).
        image_size: replace every model's image size, e.g. for a quick check.
    """
    from medbundle.export import export_bundle, load_bundle_network
    from medbundle.export.parity import runners

    bundles = (bundles,) if isinstance(bundles, str) else tuple(bundles)
    models = (models,) if isinstance(models, str) else tuple(models)
    batch_sizes = (batch_sizes,) if isinstance(batch_sizes, int) else tuple(batch_sizes)
    if threads:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    rows = []
    with tempfile.TemporaryDirectory(prefix="medbundle_bench_export_") as work:
        for bundle in bundles:
            for model in models:
                folder = Path(work) / f"{bundle}_{model}"
                folder.mkdir()
                checkpoint = folder / "model.pt"
                settings = export_checkpoint(bundle, model == "demo", image_size, checkpoint)
                result = export_bundle(BUNDLES / bundle, checkpoint, out=folder / "export")
                network = load_bundle_network(BUNDLES / bundle, checkpoint).network
                difference = max(v for kinds in result["parity"]["max_abs_diff"].values()
                                 for sizes in kinds.values() for v in sizes.values())
                shape = result["deploy"]["input"]["shape"][1:]
                batches = [torch.rand(batch_size, *shape) for batch_size in batch_sizes]
                rates: dict[str, list[float]] = {}
                # one runtime at a time, onnxruntime's session made last: its idle threads spin for a while after
                # each run and would take the cores from torch's threads
                for name in ("eager", "ts", "onnx"):
                    run = _eager_runner(network) if name == "eager" else runners({name: result["files"][name]}, threads)[name]
                    rates[name] = [images_per_s(run, batch, repeats) for batch in batches]
                    del run
                for i, batch_size in enumerate(batch_sizes):
                    eager, ts, ort = (rates[name][i] for name in ("eager", "ts", "onnx"))
                    rows.append({
                        "bundle": bundle, "model": model, "backbone": settings["backbone"],
                        "input": "x".join(str(s) for s in shape), "batch": batch_size, "eager": eager,
                        "torchscript": ts, "onnxruntime": ort, "ts_over_eager": ts / eager,
                        "ort_over_eager": ort / eager, "max_abs_logit_diff": f"{difference:.1e}",
                    })
    return Report(
        name="export",
        title=(f"CPU inference images/s, torch and onnxruntime with {threads} intra-op threads, best of {repeats} "
               "after 2 warm-up calls; the plain reference is eager PyTorch in inference_mode"),
        columns=[("bundle", "bundle"), ("model", "model"), ("backbone", "backbone"), ("input", "input"),
                 ("batch", "batch"), ("eager", "eager"), ("torchscript", "TorchScript"), ("onnxruntime", "onnxruntime"),
                 ("ts_over_eager", "ts/eager"), ("ort_over_eager", "ort/eager"),
                 ("max_abs_logit_diff", "max abs logit diff")],
        rows=rows,
        settings={"bundles": list(bundles), "models": list(models), "batch_sizes": list(batch_sizes),
                  "repeats": repeats, "threads": threads, "image_size": image_size},
    )
