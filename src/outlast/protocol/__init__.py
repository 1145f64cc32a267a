"""Responses objects and events: building, sequencing, validating."""
