"""The fleet: staged over-the-air rollouts of signed models and configurations, and what each box runs.

=================  ===========================================================================
module             job
=================  ===========================================================================
``rollouts``       stage a rollout (devices, group or percent; waves), move it on, halt, resume
``replies``        store a box's command reply and what it means for its rollout target
``precision``      the live share confirmed per model version (the review stats' query)
``overview``       per box: versions, last seen, health and the rollout it is part of
=================  ===========================================================================

Rollouts move on inside the ingest worker (:meth:`server.ingest.worker.IngestWorker`), which
holds the server's broker login: it publishes the commands of the next wave, halts a rollout
when a box fails or stays silent too long, or when live precision drops.
"""
