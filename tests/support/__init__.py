"""Test helpers: fakes at the seams, real stores, real servers."""
