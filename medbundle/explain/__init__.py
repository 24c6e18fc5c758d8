"""Grad-CAM evidence maps: where a trained network looked, drawn over the image it saw.

:func:`target_layer` picks the feature map to explain per timm family, :func:`gradcam_maps` computes the
maps with MONAI's :class:`~monai.visualize.GradCAM`, :func:`overlay` and :func:`explain_batch` draw them, and
:func:`explain` (``medbundle explain``) runs a bundle's inference preprocessing and checkpoint on image files.
"""

from medbundle.explain.command import explain
from medbundle.explain.gradcam import gradcam_maps
from medbundle.explain.layers import TARGET_LAYERS, target_layer
from medbundle.explain.overlay import explain_batch, overlay

__all__ = ["TARGET_LAYERS", "explain", "explain_batch", "gradcam_maps", "overlay", "target_layer"]
