"""Run tracking: a run reported to experiment trackers (TensorBoard, MLflow, W&B, ...) through
Accelerate's tracker classes, as the run directory records it (``tracking.report_to``).

``TrackingConfig`` (``tracking/config.py``) is light; ``attach_tracking`` and ``RunTracker``
(``tracking/run_tracker.py``) load Accelerate, and so torch, when first used.
"""

from llm_catalyst.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "llm_catalyst.tracking.config": ["TRACKER_NAMES", "TrackingConfig"],
        "llm_catalyst.tracking.run_tracker": ["RunTracker", "attach_tracking", "hyperparameters"],
    },
)
