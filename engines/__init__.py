"""Inference backends behind one protocol: ONNX Runtime (CPU default), TensorRT (NVIDIA GPUs), torch."""
