"""The Qt layer: widgets bound to core objects; long work runs in workers on QThreads."""
