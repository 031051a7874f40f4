"""Rate-distortion evaluation (``ui2c eval``): anchors, BD metrics, plots.

Kept out of ``ui2c.runtime`` so the codec runtime does not depend on ffmpeg or
matplotlib; it uses the runtime like any other client.
"""
