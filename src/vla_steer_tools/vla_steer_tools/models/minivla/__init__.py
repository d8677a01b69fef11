"""mini-VLA: a frozen SmolLM2-135M reads the instruction; a small trained net sees and acts."""
