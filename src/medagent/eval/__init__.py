"""Evaluation harnesses: MedCalc-Bench and the others that measure medagent against labels."""
