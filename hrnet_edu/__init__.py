"""hrnet-edu: HRNet for top-down human pose estimation, written to be read."""

__version__ = "0.1.0"
