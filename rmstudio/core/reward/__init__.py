"""Reward models: training data snapshots, losses, the instant head, evaluation and export."""
