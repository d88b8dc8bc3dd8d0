"""rmstudio: Reward Model Studio, the RLHF reward loop in one local app."""

__version__ = "0.1.0"
