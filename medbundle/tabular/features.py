"""The feature matrix of the ISIC 2024 lesion metadata for gradient-boosted trees, the stage under the image model.

Why: every top ISIC 2024 solution stacked the image model's score under GBDTs on the lesion metadata, and most of the
trees' gain came from "ugly duckling" features: how a lesion differs from the same patient's other lesions. This module
turns a metadata frame (``train-metadata.csv``, ``test-metadata.csv`` or the lesions of one visit, with the image
model's score as a column when it is a feature) into one float32 matrix:

- the numeric columns of the test file (:data:`NUMERIC_COLUMNS`), never a train-only one (``target``, ``iddx_*``...);
- the engineered ratios of the public notebooks (:data:`ENGINEERED`, listed by :func:`feature_table_markdown`);
- the image model's score (``image_score``), when given;
- per patient: the lesion count, the mean image score, and each numeric feature's z-score and percentile rank among
  the patient's lesions (``<feature>_patient_z``, ``<feature>_patient_rank``);
- one-hot sex, site, tile type, location and attribution (:data:`CATEGORICAL_COLUMNS`, ``<column>__<value>``) over
  the categories of the training frame.

:func:`fit_features` learns a :class:`FeatureSpec` on the training rows; :func:`make_features` applies it to any frame
and gives the same columns in the same order, with per-patient features computed among the frame's own patients.
Missing cells stay NaN, which the trees handle; so does a ratio over zero. Column names hold only ASCII letters, digits
and underscores, which LightGBM, XGBoost and CatBoost all accept.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from medbundle.demo.isic import TEST_COLUMNS, TRAIN_COLUMNS
from medbundle.tabular.per_patient import patient_means, patient_ranks, patient_zscores

__all__ = [
    "CATEGORICAL_COLUMNS",
    "COMBINED_SITE",
    "ENGINEERED",
    "IMAGE_SCORE",
    "MIN_CATEGORY_COUNT",
    "NUMERIC_COLUMNS",
    "PATIENT_COLUMN",
    "PATIENT_COUNT",
    "Engineered",
    "FeatureSpec",
    "feature_table_markdown",
    "fit_features",
    "make_features",
]

logger = logging.getLogger(__name__)

PATIENT_COLUMN = "patient_id"
MIN_CATEGORY_COUNT = 10  # training rows a category value needs for a one-hot column of its own
CATEGORICAL_COLUMNS = (
    "sex", "anatom_site_general", "tbp_tile_type", "tbp_lv_location", "tbp_lv_location_simple", "attribution",
)  # fmt: skip
# ids; image_type has one value in the whole challenge; copyright_license follows from attribution
_UNUSED_COLUMNS = ("isic_id", PATIENT_COLUMN, "image_type", "copyright_license")
NUMERIC_COLUMNS = tuple(c for c in TEST_COLUMNS if c not in (*_UNUSED_COLUMNS, *CATEGORICAL_COLUMNS))
#: a category of its own: ``anatom_site_general + "_" + tbp_lv_location``, missing when either is
COMBINED_SITE = "combined_anatomical_site"
_CATEGORY_INPUTS = {COMBINED_SITE: ("anatom_site_general", "tbp_lv_location")}
#: the matrix's columns of the image model's score and of the number of the patient's lesions in the frame
IMAGE_SCORE = "image_score"
PATIENT_COUNT = "patient_lesion_count"


@dataclass(frozen=True)
class Engineered:
    """One engineered feature: a :func:`pandas.eval` expression of :data:`NUMERIC_COLUMNS` and earlier entries.

    Args:
        expression: arithmetic, ``abs``, ``sqrt``, ``log1p`` and ``arctan2``; a division by zero gives NaN.
        meaning: one line for the documented list.
    """

    expression: str
    meaning: str


_E = Engineered
#: The engineered features of the public ISIC 2024 notebooks ("ISIC 2024 - Only Tabular Data" and the top solutions
#: that copied it), by name, in matrix order; an entry may use the entries above it.
ENGINEERED: dict[str, Engineered] = {
    "lesion_size_ratio": _E("tbp_lv_minorAxisMM / clin_size_long_diam_mm", "minor axis over longest diameter"),
    "lesion_shape_index": _E("tbp_lv_areaMM2 / tbp_lv_perimeterMM**2", "area over squared perimeter: compactness"),
    "hue_contrast": _E("abs(tbp_lv_H - tbp_lv_Hext)", "hue difference between lesion and surrounding skin"),
    "luminance_contrast": _E("abs(tbp_lv_L - tbp_lv_Lext)", "lightness difference between lesion and skin"),
    "lesion_color_difference": _E(
        "sqrt(tbp_lv_deltaA**2 + tbp_lv_deltaB**2 + tbp_lv_deltaL**2)", "L*a*b* distance between lesion and skin"
    ),
    "border_complexity": _E("tbp_lv_norm_border + tbp_lv_symm_2axis", "border irregularity plus asymmetry"),
    "color_uniformity": _E(
        "tbp_lv_color_std_mean / tbp_lv_radial_color_std_max", "colour spread over its largest radial spread"
    ),
    "position_distance_3d": _E("sqrt(tbp_lv_x**2 + tbp_lv_y**2 + tbp_lv_z**2)", "distance from the body origin"),
    "perimeter_to_area_ratio": _E("tbp_lv_perimeterMM / tbp_lv_areaMM2", "perimeter over area"),
    "area_to_perimeter_ratio": _E("tbp_lv_areaMM2 / tbp_lv_perimeterMM", "area over perimeter"),
    "lesion_visibility_score": _E("tbp_lv_deltaLBnorm + tbp_lv_norm_color", "contrast to skin plus colour variation"),
    "symmetry_border_consistency": _E("tbp_lv_symm_2axis * tbp_lv_norm_border", "asymmetry times border irregularity"),
    "consistency_symmetry_border": _E(
        "tbp_lv_symm_2axis * tbp_lv_norm_border / (tbp_lv_symm_2axis + tbp_lv_norm_border)",
        "half the harmonic mean of asymmetry and border irregularity",
    ),
    "color_consistency": _E("tbp_lv_stdL / tbp_lv_Lext", "lightness spread inside over skin lightness"),
    "consistency_color": _E(
        "tbp_lv_stdL * tbp_lv_Lext / (tbp_lv_stdL + tbp_lv_Lext)", "half the harmonic mean of those two"
    ),
    "size_age_interaction": _E("clin_size_long_diam_mm * age_approx", "size times age"),
    "hue_color_std_interaction": _E("tbp_lv_H * tbp_lv_color_std_mean", "hue times colour spread"),
    "lesion_severity_index": _E(
        "(tbp_lv_norm_border + tbp_lv_norm_color + tbp_lv_eccentricity) / 3",
        "mean of border irregularity, colour variation and eccentricity",
    ),
    "shape_complexity_index": _E("border_complexity + lesion_shape_index", "border complexity plus compactness"),
    "color_contrast_index": _E(
        "tbp_lv_deltaA + tbp_lv_deltaB + tbp_lv_deltaL + tbp_lv_deltaLBnorm", "signed and total colour contrasts"
    ),
    "log_lesion_area": _E("log1p(tbp_lv_areaMM2)", "log(1 + area)"),
    "normalized_lesion_size": _E("clin_size_long_diam_mm / age_approx", "size per year of age"),
    "mean_hue_difference": _E("(tbp_lv_H + tbp_lv_Hext) / 2", "mean hue of lesion and skin (the notebooks' name)"),
    "std_dev_contrast": _E(
        "sqrt((tbp_lv_deltaA**2 + tbp_lv_deltaB**2 + tbp_lv_deltaL**2) / 3)", "root mean square of the L*a*b* deltas"
    ),
    "color_shape_composite_index": _E(
        "(tbp_lv_color_std_mean + tbp_lv_area_perim_ratio + tbp_lv_symm_2axis) / 3",
        "mean of colour spread, border jaggedness and asymmetry",
    ),
    "lesion_orientation_3d": _E("arctan2(tbp_lv_y, tbp_lv_x)", "angle of the position around the body axis"),
    "overall_color_difference": _E("(tbp_lv_deltaA + tbp_lv_deltaB + tbp_lv_deltaL) / 3", "mean signed colour delta"),
    "symmetry_perimeter_interaction": _E("tbp_lv_symm_2axis * tbp_lv_perimeterMM", "asymmetry times perimeter"),
    "comprehensive_lesion_index": _E(
        "(tbp_lv_area_perim_ratio + tbp_lv_eccentricity + tbp_lv_norm_color + tbp_lv_symm_2axis) / 4",
        "mean of jaggedness, eccentricity, colour variation and asymmetry",
    ),
    "color_variance_ratio": _E("tbp_lv_color_std_mean / tbp_lv_stdLExt", "colour spread inside over outside"),
    "border_color_interaction": _E("tbp_lv_norm_border * tbp_lv_norm_color", "border irregularity times colour spread"),
    "border_color_interaction_2": _E(
        "border_color_interaction / (tbp_lv_norm_border + tbp_lv_norm_color)",
        "half the harmonic mean of border irregularity and colour variation",
    ),
    "size_color_contrast_ratio": _E("clin_size_long_diam_mm / tbp_lv_deltaLBnorm", "size over contrast to skin"),
    "age_normalized_nevi_confidence": _E("tbp_lv_nevi_confidence / age_approx", "nevus confidence per year of age"),
    "color_asymmetry_index": _E("tbp_lv_radial_color_std_max * tbp_lv_symm_2axis", "radial colour spread x asymmetry"),
    "volume_approximation_3d": _E("tbp_lv_areaMM2 * position_distance_3d", "area times distance from the body origin"),
    "color_range": _E(
        "abs(tbp_lv_L - tbp_lv_Lext) + abs(tbp_lv_A - tbp_lv_Aext) + abs(tbp_lv_B - tbp_lv_Bext)",
        "L*a*b* city-block distance between lesion and skin",
    ),
    "shape_color_consistency": _E("tbp_lv_eccentricity * tbp_lv_color_std_mean", "eccentricity times colour spread"),
    "border_length_ratio": _E(
        "tbp_lv_perimeterMM / (2 * sqrt(3.141592653589793 * tbp_lv_areaMM2))", "perimeter over a same-area circle's"
    ),
    "age_size_symmetry_index": _E(
        "age_approx * clin_size_long_diam_mm * tbp_lv_symm_2axis", "age times size times asymmetry"
    ),
}
del _E


@dataclass(frozen=True)
class FeatureSpec:
    """What :func:`make_features` needs to rebuild the training matrix's columns on any frame, as plain JSON.

    Shipped beside the tree models, so a deploy package computes the features the trees were trained on.

    Args:
        numeric: the frame's numeric columns, in matrix order.
        engineered: the :data:`ENGINEERED` features, in matrix order.
        categories: per categorical column (and :data:`COMBINED_SITE`), the training frame's values, sorted; a value
            outside them gets all-zero one-hot columns.
        image_score: the frame's column with the image model's score, or None when the score is no feature.
        columns: the matrix's columns, in order.
    """

    numeric: tuple[str, ...]
    engineered: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]
    image_score: str | None
    columns: tuple[str, ...]

    def to_json(self) -> str:
        """The spec as a JSON object (:meth:`from_json` reads it back)."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        """Read :meth:`to_json`'s output."""
        data = json.loads(text)
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) != names:
            keys = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not a FeatureSpec JSON: expected the keys {sorted(names)}, got {keys}")
        return cls(
            numeric=tuple(data["numeric"]),
            engineered=tuple(data["engineered"]),
            categories={column: tuple(values) for column, values in data["categories"].items()},
            image_score=data["image_score"],
            columns=tuple(data["columns"]),
        )


def feature_table_markdown() -> str:
    """The documented list of engineered features, a Markdown table generated from :data:`ENGINEERED`."""
    rows = [f"| `{name}` | `{e.expression}` | {e.meaning} |" for name, e in ENGINEERED.items()]
    return "\n".join(["| feature | formula | meaning |", "| --- | --- | --- |", *rows])


def fit_features(
    frame: pd.DataFrame, image_score: str | None = None, source: str | None = None,
    min_category_count: int = MIN_CATEGORY_COUNT,
) -> tuple[FeatureSpec, pd.DataFrame]:  # fmt: skip
    """Learn the feature spec on training rows and return it with their feature matrix.

    Args:
        frame: training metadata (``train-metadata.csv``); train-only columns are ignored.
        image_score: the column of `frame` holding the image model's score (out-of-fold on training rows), or None.
        source: the CSV `frame` was read from, named in errors.
        min_category_count: a category value gets a one-hot column only if at least this many training rows have
            it; rarer ones are zeros like a missing value. A column per rare value is noise for the trees, and a
            free-text column would get a column per row (``../shared/data/real_isic``'s ``attribution`` names each
            image's source id: 1,000 columns for 1,000 lesions without this).

    Returns:
        The spec and the float32 matrix, indexed like `frame`; :func:`make_features` gives the same on `frame`.
    """
    if image_score in TRAIN_COLUMNS:
        raise ValueError(
            f"image_score={image_score!r} is an ISIC metadata column; pass the column that holds the image model's "
            "score (e.g. its out-of-fold predictions joined on isic_id)"
        )
    _check_columns(frame, (PATIENT_COLUMN, *NUMERIC_COLUMNS, *CATEGORICAL_COLUMNS), image_score, source)
    texts = _category_texts(frame, (*CATEGORICAL_COLUMNS, COMBINED_SITE))
    categories = {}
    for column, values in texts.items():
        counts = values.value_counts()
        categories[column] = tuple(sorted(counts.index[counts >= min_category_count]))
    engineered = tuple(ENGINEERED)
    columns = _column_names(NUMERIC_COLUMNS, engineered, categories, image_score)
    spec = FeatureSpec(NUMERIC_COLUMNS, engineered, categories, image_score, columns)
    return spec, make_features(frame, spec, source)


def make_features(frame: pd.DataFrame, spec: FeatureSpec, source: str | None = None) -> pd.DataFrame:
    """The feature matrix of `frame`: the columns of `spec`, in its order, float32, indexed like `frame`.

    Per-patient features compare each lesion with the other lesions of its patient in `frame`, so pass all of a
    patient's lesions together (the whole test CSV, not a batch cut across patients).

    Args:
        frame: lesion metadata with the columns of the test CSV (and ``spec.image_score``); others are ignored.
        spec: from :func:`fit_features`, or :meth:`FeatureSpec.from_json`.
        source: the CSV `frame` was read from, named in errors and warnings.
    """
    unknown = [name for name in spec.engineered if name not in ENGINEERED]
    if unknown or _column_names(spec.numeric, spec.engineered, spec.categories, spec.image_score) != spec.columns:
        detail = f"engineered features it does not know: {unknown}" if unknown else "other column names or order"
        raise ValueError(
            f"the feature spec was written by another version of medbundle ({detail}); "
            "refit it with medbundle.tabular.fit_features"
        )
    inputs = [c for column in spec.categories for c in _CATEGORY_INPUTS.get(column, (column,))]
    _check_columns(frame, (PATIENT_COLUMN, *spec.numeric, *dict.fromkeys(inputs)), spec.image_score, source)
    patients = _patient_codes(frame, source)
    values = {column: _numeric(frame[column], column, source) for column in spec.numeric}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for name in spec.engineered:
            values[name] = np.asarray(pd.eval(ENGINEERED[name].expression, local_dict=values, engine="python"), float)
    if spec.image_score is not None:
        values[IMAGE_SCORE] = _numeric(frame[spec.image_score], spec.image_score, source)
    numeric = np.array(list(values.values()))  # one row per feature
    numeric[~np.isfinite(numeric)] = np.nan
    columns = [*numeric, np.bincount(patients)[patients]]
    if spec.image_score is not None:
        columns.append(patient_means(numeric[-1:], patients)[0, patients])
    columns.extend(patient_zscores(numeric, patients))
    columns.extend(patient_ranks(numeric, patients))
    texts = _category_texts(frame, tuple(spec.categories))
    for name, vocabulary in spec.categories.items():
        columns.extend(_one_hot(texts[name], name, vocabulary, source))
    matrix = np.empty((len(frame), len(columns)), np.float32, order="F")  # a DataFrame's own layout: no copy
    for j, column in enumerate(columns):
        matrix[:, j] = column
    return pd.DataFrame(matrix, index=frame.index, columns=list(spec.columns), copy=False)


def _column_names(
    numeric: Sequence[str], engineered: Sequence[str], categories: Mapping[str, Sequence[str]], image_score: str | None
) -> tuple[str, ...]:
    """The matrix's columns, in the order :func:`make_features` builds them."""
    features = [*numeric, *engineered, *([IMAGE_SCORE] if image_score is not None else [])]
    patient = [PATIENT_COUNT, *([f"{IMAGE_SCORE}_patient_mean"] if image_score is not None else [])]
    normalised = [f"{name}_patient_z" for name in features] + [f"{name}_patient_rank" for name in features]
    one_hot = [name for column, vocabulary in categories.items() for name in _one_hot_names(column, vocabulary)]
    return (*features, *patient, *normalised, *one_hot)


def _one_hot_names(column: str, vocabulary: Sequence[str]) -> list[str]:
    """``<column>__<value as ASCII letters, digits and underscores>``, numbered where two values read the same.

    The double underscore cannot occur in a column name or a cleaned value, so names of two columns never clash.
    """
    names: list[str] = []
    for value in vocabulary:
        ascii_value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
        base = f"{column}__{re.sub(r'[^0-9A-Za-z]+', '_', ascii_value).strip('_').lower() or 'value'}"
        name, k = base, 2
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names


def _check_columns(frame: pd.DataFrame, required: Sequence[str], image_score: str | None, source: str | None) -> None:
    """Raise one error that names every column the features need and `frame` lacks."""
    missing = [column for column in required if column not in frame.columns]
    score_missing = image_score is not None and image_score not in frame.columns
    if not missing and not score_missing:
        return
    problems = []
    if missing:
        problems.append(
            f"lacks the column(s) {', '.join(map(repr, missing))} of the ISIC 2024 test metadata "
            "(medbundle.demo.isic.TEST_COLUMNS); add them, with empty cells where a value is unknown"
        )
    if score_missing:
        problems.append(f"lacks the image model's score column {image_score!r}; join the image predictions on isic_id")
    raise ValueError(f"{source or 'the metadata frame'} {'; and it '.join(problems)}")


def _patient_codes(frame: pd.DataFrame, source: str | None) -> np.ndarray:
    """Each row's patient as an integer 0..P-1."""
    codes, _ = pd.factorize(frame[PATIENT_COLUMN])
    if (codes < 0).any():
        rows = frame.index[codes < 0]
        raise ValueError(
            f"{source or 'the metadata frame'}: {len(rows)} row(s) have no {PATIENT_COLUMN} (e.g. row {rows[0]!r}); "
            "the per-patient features need every lesion's patient: fill it in or drop those rows"
        )
    return codes


def _numeric(column: pd.Series, name: str, source: str | None) -> np.ndarray:
    """A column as float64; empty cells are NaN, text that is not a number is an error."""
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(np.float64, na_value=np.nan)
    text = column.astype("string").str.strip()
    text = text.mask(text == "")
    values = pd.to_numeric(text, errors="coerce")
    bad = values.isna() & text.notna()
    if bad.any():
        raise ValueError(
            f"{source or 'the metadata frame'}: column {name!r} holds text that is not a number in {int(bad.sum())} "
            f"row(s) (e.g. {text[bad].iloc[0]!r} in row {column.index[bad.to_numpy()][0]!r}); "
            "fix those cells or leave them empty"
        )
    return values.to_numpy(np.float64, na_value=np.nan)


def _category_texts(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, pd.Series]:
    """The categorical columns (and :data:`COMBINED_SITE`) as stripped strings, NA where empty."""
    texts = {}
    for column in columns:
        if column in _CATEGORY_INPUTS:
            parts = [_text(frame[c]) for c in _CATEGORY_INPUTS[column]]
            texts[column] = parts[0].str.cat(parts[1:], sep="_")
        else:
            texts[column] = _text(frame[column])
    return texts


def _text(column: pd.Series) -> pd.Series:
    """`column` as stripped strings with a fresh index; empty cells are NA."""
    text = column.astype("string").str.strip()
    return text.mask(text == "").reset_index(drop=True)


def _one_hot(text: pd.Series, column: str, vocabulary: Sequence[str], source: str | None) -> list[np.ndarray]:
    """One 0/1 column per value of `vocabulary`; a missing or unseen value gives zeros (an unseen one a warning)."""
    codes = pd.Categorical(text, categories=vocabulary).codes
    unseen = (codes < 0) & text.notna().to_numpy()
    if unseen.any():
        examples = sorted(text[unseen].unique())[:3]
        logger.warning(
            "%s: %d row(s) have a %s that the training frame did not have, or had on too few rows (e.g. %s); their "
            "one-hot %s columns are 0",
            source or "make_features",
            int(unseen.sum()),
            column,
            ", ".join(map(repr, examples)),
            column,
        )
    return [codes == k for k in range(len(vocabulary))]
