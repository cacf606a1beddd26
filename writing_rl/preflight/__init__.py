"""Checks before training starts, on CPU: `training` checks a Writing-RL or BRPO script's config, data, prompt files
and judge; `genrm` the GenRM SFT and RL scripts'; `checks` holds what both print and share."""
