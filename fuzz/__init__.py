"""busrig: a robustness and abuse fuzzing rig for message buses."""

__version__ = "0.1.0"
