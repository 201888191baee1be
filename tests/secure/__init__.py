"""Tests of medagent.secure."""
