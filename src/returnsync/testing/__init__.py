"""Test support that ships with the package: deterministic simulation (`dst`) and its
BUGGIFY-style fault points (`faults`). Nothing here runs unless a test or the CLI starts it;
`faults.maybe_crash` is a no-op until a simulation arms it.
"""
