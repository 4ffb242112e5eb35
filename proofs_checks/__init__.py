"""Verification of the lemmas of Boursier & Flammarion (activation-cone geometry, constants)."""

from .arrangement import (
    Arrangement,
    Face,
    cover_count,
    enumerate_faces,
    face_generators,
    zaslavsky_count,
)
from .assumptions import AssumptionResult, check_all
from .constants import Constants, Undefined, compute_constants, max_cosine
from .extremal import CriticalPoint, G, extremal_vectors
from .faces import FaceData, Geometry, geometry

__all__ = [
    "Arrangement",
    "Face",
    "cover_count",
    "enumerate_faces",
    "face_generators",
    "zaslavsky_count",
    "AssumptionResult",
    "check_all",
    "Constants",
    "Undefined",
    "compute_constants",
    "max_cosine",
    "CriticalPoint",
    "G",
    "extremal_vectors",
    "FaceData",
    "Geometry",
    "geometry",
]
