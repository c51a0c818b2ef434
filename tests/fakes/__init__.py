"""Fakes standing in for the outside world in tests: provider HTTP APIs."""
