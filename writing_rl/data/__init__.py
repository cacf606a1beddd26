"""Data files: reading user rows, building verl parquet, preference pairs."""
