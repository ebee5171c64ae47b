"""Adapters that let apps written for other servers run on Qactuar (tornado)."""
