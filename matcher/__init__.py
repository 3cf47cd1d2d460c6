"""Matcher workers: decoding, features, the per-channel descriptor index, verification."""
