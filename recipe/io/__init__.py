"""Readers and writers for the canonical row shape (DESIGN section 2)."""
