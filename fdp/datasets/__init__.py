"""The four micro-expression datasets as their distributions ship, their class settings, folds and clip sampling."""
