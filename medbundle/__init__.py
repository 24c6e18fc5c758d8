"""medbundle: MONAI bundles and shared components for 2D medical image classification."""
