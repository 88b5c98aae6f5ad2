"""Per-user neutral baselines for the spotter, and INT8 calibration of the ONNX graphs."""
