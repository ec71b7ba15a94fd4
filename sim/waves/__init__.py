"""Waveforms: reading a co-simulation's trace and showing it decoded."""
