"""Training the mini-VLA's head on demonstration datasets (the frozen LM is never trained)."""
