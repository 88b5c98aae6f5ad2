"""FDP: micro-expression recognition via fine-grained dynamic perception (the model, its data and training)."""
