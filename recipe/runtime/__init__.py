"""Shared model runtime."""
