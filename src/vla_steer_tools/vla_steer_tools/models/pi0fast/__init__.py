"""pi0-FAST (LeRobot `pi0_fast` layout): PaliGemma generating FAST action tokens.

config.py (config.json, variants, weight names), prompt.py (prompt, state bins, FAST id range),
fast_tokenizer.py (FAST files, DCT decode), normalize.py (LeRobot's normalisation),
policy.py (the Policy and `load_pi0fast`).
"""
