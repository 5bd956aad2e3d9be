"""Capacity: warm placeholders before meetings and on demand, GPU sharing, image pre-pulling."""
