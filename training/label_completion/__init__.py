"""Completing the validation labels by eye (``datasets/label_completion/PROTOCOL.md``).

``proposals`` lists what any box config or a low-threshold detector puts on each validation photo
(and so which photos are completed), ``sheets`` draws the sheets a labelling pass works on, and
``passes`` turns a pass's answers into its CSV, measures the agreement of two passes and writes
the final completion the case bench reads.
"""
