"""Training the pairwise GenRM: preference data, its verifiable reward and the SFT/RL data it learns from."""
