"""writing-rl: reinforcement learning for long-form and creative writing on verl."""

__version__ = "0.1.0"
