"""Labels, training sets over time, tuning, calibration, evaluation and run tracking."""
