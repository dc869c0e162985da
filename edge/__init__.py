"""The edge runtime: frames in, confirmed GPS-tagged violation events out.

Stages, one verb each (supervision-style)::

    FrameSource.__iter__ -> Detector.detect -> Tracker.update -> RuleEngine.trigger
        -> EvidenceWriter.annotate -> EventSink.emit

Shared shapes live in :mod:`edge.detections` and :mod:`edge.interfaces`.
"""
