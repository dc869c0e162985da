"""The edge pipeline of one camera, read top to bottom:

* :mod:`edge.pipeline.build`: :func:`from_config` builds the parts from a device config (the
  link to the server first, then the models and what depends on them, the frames last);
* :mod:`edge.pipeline.runner`: :class:`EdgePipeline` runs them, detector -> tracker -> rules ->
  evidence -> sink, in one file;
* :mod:`edge.pipeline.infer`: the inference workers and the buffer that puts frames back in order;
* :mod:`edge.pipeline.reader`: the thread that decodes and prepares frames ahead;
* :mod:`edge.pipeline.stats`: counters and per-stage timings.

Each module imports only the ones below it (``.importlinter``).

    pipeline = from_config(load_config("deploy/edge.demo.yaml"))
    stats = pipeline.run(max_frames=100)
"""

from edge.pipeline.build import from_config, inference_plan
from edge.pipeline.runner import EdgePipeline
from edge.pipeline.stats import PipelineStats

__all__ = ["EdgePipeline", "PipelineStats", "from_config", "inference_plan"]
