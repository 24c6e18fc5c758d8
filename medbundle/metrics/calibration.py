"""Calibration of predicted probabilities: expected calibration error, reliability bins and temperature scaling.

A clinician reads "P(malignant) = 0.8" as "eight in ten such lesions are malignant"; a network trained to minimise
cross-entropy is usually over-confident, so the report shows how far its probabilities are from the observed rates
(:func:`expected_calibration_error`, :func:`reliability_bins`) and how far one fitted temperature brings them back
(:func:`fit_temperature`, Guo et al., "On Calibration of Modern Neural Networks", ICML 2017). Temperature scaling
divides every logit by the same ``T > 0``, so it never changes a ranking (AUROC) or an argmax (accuracy).

A temperature cannot move a binary model's probabilities *up or down as a whole*. A model trained on a share of the
negatives (isic trains on 10 % of them, and weighs the positives up) predicts malignancy far too often on data with
the real prevalence however its logits are scaled: that is a prior shift, a constant offset of every logit.
:func:`fit_platt` fits the temperature and that offset together, ``sigmoid(z / T + b)`` (Platt scaling, Platt 1999),
still monotonic, so rankings and AUROC are unchanged. Multi-class models keep temperature scaling alone.

What is calibrated:

- binary, ``probabilities`` of shape ``(N,)``: P(positive) against the observed positive rate;
- multi-class, ``(N, K)``: the *top-label* confidence (the largest probability of a row) against the accuracy of the
  argmax class, as in Guo et al.

Binning matches MONAI's :func:`monai.metrics.calibration_binning` with its default ``right=False``: ``n_bins``
equal-width bins of ``[0, 1]``, each bin ``(left, right]`` and the first one also holding 0. That is what
``torch.bucketize(right=False)`` does, and sklearn's ``calibration_curve``; MONAI's docstring says ``[left, right)``,
but its code puts a probability on an inner edge in the lower bin, as here. MONAI's binary ECE is
``CalibrationErrorMetric(num_bins=n_bins)`` on ``y_pred`` and ``y`` of shape ``(1, 1, N)``; our top-label ECE is
the same metric on the confidence and the 0/1 correctness of the argmax. The two differ only by float rounding:
MONAI sums in float32 (its ECE of a few thousand rows moves in the sixth or seventh decimal) and stretches its edges
by float32 eps (``linspace(0, 1 + eps)``), so a probability within about 1e-7 of an edge may fall in the
neighbouring bin. MONAI's mean over the channels of one-hot classes is a class-wise ECE, a different quantity from
the top-label ECE here.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, logsumexp, softmax

from medbundle.metrics.inputs import binary_inputs, multiclass_inputs

__all__ = [
    "apply_temperature",
    "expected_calibration_error",
    "fit_platt",
    "fit_temperature",
    "logits_from_probabilities",
    "reliability_bins",
]


def _is_multiclass(values: np.ndarray) -> bool:
    """``(N, K)`` with ``K >= 2`` is multi-class; ``(N,)`` and ``(N, 1)`` are binary."""
    return values.ndim == 2 and values.shape[1] >= 2


def _confidence_and_outcome(labels: npt.ArrayLike, probabilities: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """What is calibrated: P(positive) and the 0/1 label, or the top-label confidence and the argmax's correctness."""
    p = np.asarray(probabilities, dtype=float)
    if _is_multiclass(p):
        y, p = multiclass_inputs(labels, p)
        confidence, outcome = p.max(axis=1), (p.argmax(axis=1) == y).astype(float)
    else:
        outcome, confidence = binary_inputs(labels, p)
    if confidence.size == 0:
        raise ValueError("calibration needs at least one prediction; the labels and probabilities are empty.")
    outside = (confidence < 0.0) | (confidence > 1.0)
    if outside.any():
        raise ValueError(
            f"probabilities must lie in [0, 1]; found {confidence[outside][:5].tolist()} at positions "
            f"{np.flatnonzero(outside)[:5].tolist()}; pass probabilities, not logits (see apply_temperature)."
        )
    return confidence, outcome


def _bin_sums(
    confidence: np.ndarray, outcome: np.ndarray, n_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bin edges, and per bin the count and the sums of confidence and outcome (MONAI's bins, see the module doc)."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}; 15 is usual (Guo et al. 2017).")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.searchsorted(edges[1:-1], confidence, side="left")
    count = np.bincount(index, minlength=n_bins)
    return (
        edges,
        count,
        np.bincount(index, weights=confidence, minlength=n_bins),
        np.bincount(index, weights=outcome, minlength=n_bins),
    )


def expected_calibration_error(labels: npt.ArrayLike, probabilities: npt.ArrayLike, n_bins: int = 15) -> float:
    """Expected calibration error: the count-weighted mean gap between predicted probability and observed rate per bin.

    Binary ``(N,)`` probabilities are P(positive) against the positive rate; multi-class ``(N, K)`` ones give the
    top-label ECE (largest probability against accuracy of the argmax). Equal to MONAI's
    ``CalibrationErrorMetric(num_bins=n_bins)`` as described in the module docstring.

    Args:
        labels: 0/1 per row (binary) or class index per row (multi-class).
        probabilities: P(positive) per row ``(N,)``, or class probabilities ``(N, K)``.
        n_bins: number of equal-width bins of ``[0, 1]``.

    Returns:
        The ECE in ``[0, 1]``; 0 is perfectly calibrated on these bins.

    Raises:
        ValueError: the inputs are empty, mismatched, not probabilities, or ``n_bins < 1``.
    """
    confidence, outcome = _confidence_and_outcome(labels, probabilities)
    _, count, confidence_sum, outcome_sum = _bin_sums(confidence, outcome, n_bins)
    # count * |mean confidence - mean outcome| is |sum confidence - sum outcome|, and is 0 for an empty bin.
    return float(np.abs(confidence_sum - outcome_sum).sum() / count.sum())


def reliability_bins(labels: npt.ArrayLike, probabilities: npt.ArrayLike, n_bins: int = 15) -> dict[str, list]:
    """The points of a reliability diagram: per bin, mean predicted probability against observed rate.

    What is binned (P(positive) or top-label confidence) and the bins are as in :func:`expected_calibration_error`,
    whose value is ``sum(count * |confidence - frequency|) / sum(count)`` over the non-empty bins.

    Args:
        labels: 0/1 per row (binary) or class index per row (multi-class).
        probabilities: P(positive) per row ``(N,)``, or class probabilities ``(N, K)``.
        n_bins: number of equal-width bins of ``[0, 1]``.

    Returns:
        Plain lists (ready for JSON): ``confidence`` (mean predicted probability per bin), ``frequency`` (observed
        positive rate, or accuracy, per bin), ``count`` (rows per bin; empty bins have count 0 and NaN means) and
        ``edges`` (the ``n_bins + 1`` bin edges).

    Raises:
        ValueError: the inputs are empty, mismatched, not probabilities, or ``n_bins < 1``.
    """
    confidence, outcome = _confidence_and_outcome(labels, probabilities)
    edges, count, confidence_sum, outcome_sum = _bin_sums(confidence, outcome, n_bins)
    with np.errstate(invalid="ignore"):
        mean_confidence, frequency = confidence_sum / count, outcome_sum / count
    return {
        "confidence": mean_confidence.tolist(),
        "frequency": frequency.tolist(),
        "count": count.tolist(),
        "edges": edges.tolist(),
    }


def _logit_inputs(logits: npt.ArrayLike) -> np.ndarray:
    """Logits as float64 ``(N,)`` (binary) or ``(N, K)`` (multi-class), refusing other shapes and NaN/inf."""
    z = np.asarray(logits, dtype=float)
    if z.ndim == 2 and z.shape[1] == 1:
        z = z.reshape(-1)
    if z.ndim not in (1, 2):
        raise ValueError(f"logits must have shape (N,) for a binary model or (N, K) for K classes, got {z.shape}.")
    if not np.isfinite(z).all():
        raise ValueError(
            "logits hold NaN or inf; check the model output, or build them from probabilities with "
            "logits_from_probabilities, which clips 0 and 1."
        )
    return z


def _negative_log_likelihood(z: np.ndarray, y: np.ndarray, temperature: float) -> float:
    """Mean NLL of ``z / temperature``: sigmoid for 1-D binary logits, softmax for ``(N, K)`` ones."""
    scaled = z / temperature
    if scaled.ndim == 1:
        return float(np.logaddexp(0.0, -(2.0 * y - 1.0) * scaled).mean())
    return float((logsumexp(scaled, axis=1) - scaled[np.arange(y.size), y]).mean())


def _warn_at_edge(temperature: float, bounds: tuple[float, float]) -> None:
    """Warn when a fit stopped at a bound of the temperature: the optimum lies beyond it."""
    if any(math.isclose(temperature, edge, rel_tol=1e-3) for edge in bounds):
        warnings.warn(
            f"the fitted temperature {temperature:.4g} sits at the edge of bounds {bounds}: the NLL keeps falling "
            "beyond it (e.g. perfectly separated classes, or one class only); fit on more varied held-out data.",
            RuntimeWarning,
            stacklevel=3,
        )


def fit_temperature(logits: npt.ArrayLike, labels: npt.ArrayLike, bounds: tuple[float, float] = (0.01, 100.0)) -> float:
    """The temperature ``T`` that minimises the NLL of ``logits / T`` (temperature scaling, Guo et al. 2017).

    Fit it on held-out predictions (the validation fold), not on the data the model was trained on. The NLL is
    convex in ``1 / T``, so it has one minimum along ``log T``; a bounded Brent search on ``log T`` finds it
    deterministically. ``T > 1`` softens an over-confident model, ``T < 1`` sharpens an under-confident one.

    Args:
        logits: 1-D logits of a binary model (sigmoid) or ``(N, K)`` logits of a K-class one (softmax). From a
            prediction table of probabilities, use :func:`logits_from_probabilities`.
        labels: 0/1 per row (binary) or class index per row (multi-class).
        bounds: the range searched for ``T``. The optimum reaches a bound only on degenerate data (e.g. classes
            separated perfectly, where the NLL falls towards ``T -> 0``); that bound is returned with a warning.

    Returns:
        The fitted temperature, ``T > 0``; divide logits by it (:func:`apply_temperature`).

    Raises:
        ValueError: the logits or labels are malformed, or ``bounds`` is not ``0 < low < high``.
    """
    z = _logit_inputs(logits)
    low, high = bounds
    if not 0.0 < low < high:
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds}; the default (0.01, 100.0) suits logits.")
    y = multiclass_inputs(labels, z)[0] if z.ndim == 2 else binary_inputs(labels, z)[0]
    result = minimize_scalar(
        lambda log_t: _negative_log_likelihood(z, y, math.exp(log_t)),
        bounds=(math.log(low), math.log(high)),
        method="bounded",
        options={"xatol": 1e-6},
    )
    temperature = math.exp(result.x)
    _warn_at_edge(temperature, bounds)
    return temperature


def fit_platt(
    logits: npt.ArrayLike, labels: npt.ArrayLike, bounds: tuple[float, float] = (0.01, 100.0)
) -> tuple[float, float]:
    """The temperature ``T`` and bias ``b`` minimising the NLL of ``sigmoid(logits / T + b)`` (Platt scaling).

    The binary counterpart of :func:`fit_temperature` that also corrects a prior shift (see the module docstring):
    a logistic regression of the label on the logit with a positive slope ``1 / T``. The NLL is convex in
    ``(1 / T, b)``, so L-BFGS-B from ``(1, 0)`` finds its one minimum deterministically. Fit it on held-out
    predictions at the prevalence the model will meet (the whole validation fold, not a subsample of its negatives).

    Args:
        logits: 1-D logits of a binary model. From probabilities, use :func:`logits_from_probabilities`.
        labels: 0/1 per row; both classes must occur.
        bounds: the range searched for ``T``; a fit at its edge warns, as in :func:`fit_temperature`.

    Returns:
        ``(temperature, bias)``: apply them with ``apply_temperature(logits, temperature, bias)``.

    Raises:
        ValueError: multi-class or malformed logits, labels that are not 0/1 or hold one class only, or bad bounds.
    """
    z = _logit_inputs(logits)
    if z.ndim != 1:
        raise ValueError(f"fit_platt calibrates binary (N,) logits, got {z.shape}; use fit_temperature for K classes.")
    low, high = bounds
    if not 0.0 < low < high:
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds}; the default (0.01, 100.0) suits logits.")
    y = binary_inputs(labels, z)[0]
    if np.unique(y).size < 2:
        raise ValueError("fit_platt needs both classes among the labels; fit on a split holding positives and negatives.")
    sign = 2.0 * y - 1.0

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        slope, bias = params
        margin = sign * (slope * z + bias)
        weight = -sign * expit(-margin) / z.size  # d(mean log(1 + e^-margin)) / d(slope * z + bias)
        return float(np.logaddexp(0.0, -margin).mean()), np.array([(weight * z).sum(), weight.sum()])

    result = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B",
                      bounds=[(1.0 / high, 1.0 / low), (None, None)], options={"ftol": 1e-12, "gtol": 1e-9})  # fmt: skip
    slope, bias = (float(v) for v in result.x)
    temperature = 1.0 / slope
    _warn_at_edge(temperature, bounds)
    return temperature, bias


def apply_temperature(logits: npt.ArrayLike, temperature: float, bias: float = 0.0) -> np.ndarray:
    """Probabilities of ``logits / temperature + bias``: sigmoid for 1-D binary logits, softmax for ``(N, K)``.

    Args:
        logits: ``(N,)`` binary or ``(N, K)`` multi-class logits.
        temperature: ``T > 0``, e.g. from :func:`fit_temperature` or :func:`fit_platt`; 1 gives the model's own
            probabilities.
        bias: the offset of :func:`fit_platt` (binary); added to every logit, so softmax ignores it.

    Returns:
        P(positive) ``(N,)`` or class probabilities ``(N, K)`` as float64.

    Raises:
        ValueError: the logits are malformed, ``temperature`` is not a positive finite number or ``bias`` not finite.
    """
    if not (math.isfinite(temperature) and temperature > 0.0):
        raise ValueError(
            f"temperature must be a positive finite number, got {temperature}; fit one with fit_temperature."
        )
    if not math.isfinite(bias):
        raise ValueError(f"bias must be a finite number, got {bias}; fit one with fit_platt.")
    scaled = _logit_inputs(logits) / temperature + bias
    return expit(scaled) if scaled.ndim == 1 else softmax(scaled, axis=1)


def logits_from_probabilities(probabilities: npt.ArrayLike, eps: float = 1e-7) -> np.ndarray:
    """Logits that give back ``probabilities``, so a report can fit a temperature from a prediction CSV alone.

    Binary ``(N,)`` probabilities become ``log(p / (1 - p))``; multi-class ``(N, K)`` ones become ``log p``, which
    differs from the model's logits by a per-row constant that softmax ignores. Probabilities are clipped to
    ``[eps, 1 - eps]`` (binary) or ``[eps, 1]`` first, so a saved 0 or 1 gives a large finite logit, not inf.

    Args:
        probabilities: P(positive) per row ``(N,)``, or class probabilities ``(N, K)``.
        eps: clipping margin; 1e-7 matches :func:`medbundle.metrics.log_loss`.

    Returns:
        float64 logits of the same shape (``(N, 1)`` input gives ``(N,)``).

    Raises:
        ValueError: a probability is NaN or outside ``[0, 1]``.
    """
    p = np.asarray(probabilities, dtype=float)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p.reshape(-1)
    bad = ~((p >= 0.0) & (p <= 1.0))
    if bad.any():
        raise ValueError(
            f"probabilities must lie in [0, 1], found {p[bad][:5].tolist()}; these look like logits already "
            "(use them directly) or a corrupted prediction column."
        )
    if _is_multiclass(p):
        return np.log(np.clip(p, eps, 1.0))
    p = np.clip(p, eps, 1.0 - eps)
    return np.log(p) - np.log1p(-p)
