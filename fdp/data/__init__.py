"""Datasets as their distributions ship, the synthetic micro-expression generator, and clip sampling."""
