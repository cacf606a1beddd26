"""Test doubles that are real services: a scripted OpenAI-compatible judge server on loopback."""
