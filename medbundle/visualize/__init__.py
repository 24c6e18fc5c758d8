"""Pictures for people: evaluation plots for TensorBoard and previews of preprocessed data, drawn with OpenCV."""

from medbundle.visualize.montage import montage
from medbundle.visualize.plots import confusion_matrix_image, roc_curve_image, roc_curves_image
from medbundle.visualize.preview import preview_bundle

__all__ = ["confusion_matrix_image", "montage", "preview_bundle", "roc_curve_image", "roc_curves_image"]
