"""The DICOM header every demo writer starts from: deterministic UIDs and dummy, never real, patient fields."""

from __future__ import annotations

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, generate_uid

__all__ = ["DUMMY_PATIENT_NAME", "demo_uid", "presentation_header"]

#: PatientName of every demo file: a value tests can search logs and outputs for, to prove it never leaks.
DUMMY_PATIENT_NAME = "ANON^DEMO"
_UID_PREFIX = "1.2.826.0.1.3680043.8.498."


def demo_uid(namespace: str, seed: int, *parts: object) -> UID:
    """Deterministic UID (hash of namespace, seed and parts), so reruns write identical files."""
    return generate_uid(_UID_PREFIX, entropy_srcs=[namespace, str(seed), *map(str, parts)])


def presentation_header(
    namespace: str,
    seed: int,
    sop_class: UID,
    modality: str,
    image_key: str,
    patient_id: str,
    body_part: str,
    image_type: tuple[str, str] = ("DERIVED", "PRIMARY"),
) -> Dataset:
    """A "For Presentation" image header without pixels: SOP, modality, dummy patient, study/series UIDs.

    Args:
        namespace: the demo writer's name, part of every UID's hash.
        seed: the writer's seed.
        sop_class: SOP Class UID, e.g. ``DigitalXRayImageStorageForPresentation``.
        modality: "MG", "DX", ...
        image_key: a unique key of the image (its id or path), hashed into the instance and series UIDs.
        patient_id: the dataset's patient id (the study UID is per patient).
        body_part: BodyPartExamined, e.g. "BREAST" or "CHEST".
        image_type: ImageType values.
    """
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = list(image_type)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = demo_uid(namespace, seed, image_key)
    ds.Modality = modality
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.Manufacturer = "MEDBUNDLE DEMO"
    ds.PatientName = DUMMY_PATIENT_NAME
    ds.PatientID = str(patient_id)
    ds.BodyPartExamined = body_part
    ds.StudyInstanceUID = demo_uid(namespace, seed, patient_id)
    ds.SeriesInstanceUID = demo_uid(namespace, seed, patient_id, image_key)
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    return ds
