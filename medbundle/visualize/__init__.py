"""Small images of evaluation results for TensorBoard, drawn with OpenCV (no plotting stack needed)."""

from medbundle.visualize.plots import confusion_matrix_image, roc_curve_image, roc_curves_image

__all__ = ["confusion_matrix_image", "roc_curve_image", "roc_curves_image"]
