"""Evidence: the best frame of a track as an annotated JPEG plus a crop, stored by SHA-256."""

from edge.evidence.recorder import EvidenceRecorder
from edge.evidence.render import annotate, crop, downscale, encode_jpeg
from edge.evidence.store import EvidenceStore

__all__ = ["EvidenceRecorder", "EvidenceStore", "annotate", "crop", "downscale", "encode_jpeg"]
