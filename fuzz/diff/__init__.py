"""Differential testing: one scenario on two buses, every difference clients observe."""
