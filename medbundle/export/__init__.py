"""Export for deployment: TorchScript and ONNX with parity checks, ``deploy.json``, packaged bundles, Triton."""

from medbundle.export.bundle_network import (
    BundleNetwork,
    bundle_task,
    load_bundle_network,
)
from medbundle.export.deploy_spec import DEPLOY_FILE, FORMAT_VERSION, deploy_spec
from medbundle.export.exporter import (
    FORMATS,
    export_bundle,
    export_network,
    exported_metadata,
)
from medbundle.export.package import package_bundle
from medbundle.export.parity import DEFAULT_TOLERANCE, ParityError, check_parity
from medbundle.export.preprocessing_spec import describe_preprocessing
from medbundle.export.triton import triton_config, write_triton_model

__all__ = [
    "DEFAULT_TOLERANCE",
    "DEPLOY_FILE",
    "FORMATS",
    "FORMAT_VERSION",
    "BundleNetwork",
    "ParityError",
    "bundle_task",
    "check_parity",
    "deploy_spec",
    "describe_preprocessing",
    "export_bundle",
    "export_network",
    "exported_metadata",
    "load_bundle_network",
    "package_bundle",
    "triton_config",
    "write_triton_model",
]
