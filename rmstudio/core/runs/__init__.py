"""Runs of long work (generation, training) remembered in the project."""
